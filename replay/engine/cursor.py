"""A Cursor: one thread's position (an event of it), and the state there, computed on demand.

This module owns "where am I": the event under the cursor, its frame's function and file, the
stack with every frame's recorded locals (and the latest gap each frame lived through), what a
leave step returns, and at a GAP step which events are missing and why. Moving is the
Engine's job (engine.py); a Cursor only follows a move, incrementally when it is one event
forward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from replay.engine.errors import EngineError
from replay.engine.identity import current_objects
from replay.engine.model import ThreadState
from replay.engine.stream import Pos, quiet_gc
from replay.engine.views import Frame, Outcome
from replay.events import EXTERNAL, GAP, KIND_NAMES, LEAVE_KINDS, RETURN, UNWIND, YIELD
from replay.gaps import Gap, gap_of

if TYPE_CHECKING:
    from replay.engine.engine import Engine


class CallRow(NamedTuple):
    """The facts of one call from the store's calls table."""

    call_id: int
    parent_id: int
    function_id: int
    thread_id: int
    depth: int
    first_step: int
    last_step: int | None
    exception: bool
    generator: bool


class Cursor:
    """A position in one thread: an event of it, and (computed on demand) the state there."""

    def __init__(self, engine: Engine, thread_id: int, pos: Pos) -> None:
        self.engine = engine
        self.thread_id = thread_id
        self.stream = engine.stream(thread_id)
        self.pos = pos
        self._state: ThreadState | None = None

    # -- where ---------------------------------------------------------------------------

    @property
    def event(self) -> tuple:
        return self.stream.event(self.pos)

    @property
    def step(self) -> int:
        return int(self.event[1])

    @property
    def kind(self) -> str:
        return KIND_NAMES.get(self.event[0], str(self.event[0]))

    @property
    def call_id(self) -> int:
        return int(self.event[3])

    @property
    def line(self) -> int:
        return int(self.event[4])

    @property
    def code_id(self) -> int:
        frame = self._state.frames.get(self.call_id) if self._state is not None else None
        if frame is not None:
            return frame.code_id
        row = self.engine.call_row(self.call_id)
        return row.function_id if row is not None else 0

    @property
    def function(self) -> str:
        return self.engine.function_name(self.code_id)

    @property
    def file(self) -> str:
        return self.engine.function_file(self.code_id)

    def move(self, pos: Pos) -> None:
        """Stand at `pos`; the state follows incrementally when moving one event forward."""
        if pos == self.pos:
            return
        state = self._state
        if state is not None and self.stream.next(self.pos) == pos:
            event = self.event
            if event[0] in LEAVE_KINDS:
                state.leave(event[0], event[3])
            self.pos = pos
            state.apply(self.event, self.engine.resolve, pop=False)
            return
        self.pos = pos
        self._state = None

    # -- state ---------------------------------------------------------------------------

    def state(self) -> ThreadState:
        """The thread's state at this event (treat as read-only)."""
        if self._state is None:
            self._state = self.engine.state_at(self.thread_id, self.pos)
        return self._state

    @quiet_gc
    def stack(self) -> list[Frame]:
        """The call stack at this step, innermost frame first."""
        state = self.state()
        engine = self.engine
        step = self.step
        gaps = bool(engine.gap_steps(self.thread_id))
        lives = [state.frames[call_id] for call_id in reversed(state.stack)]
        # An object several live frames hold shows as the one that ran last recorded it.
        on_stack = set(state.stack)
        values = current_objects(
            [(live.step, live.locals) for live in lives],
            engine.capture_depth,
            [(f.step, f.locals) for c, f in state.frames.items() if c not in on_stack],
        )
        frames = []
        until: int | None = None
        for live, local_values in zip(lives, values, strict=True):
            call_id = live.call_id
            frames.append(
                Frame(
                    call_id=call_id,
                    function=engine.function_name(live.code_id),
                    file=engine.function_file(live.code_id),
                    line=live.line,
                    locals=dict(local_values),
                    args=dict(live.args),
                    code_id=live.code_id,
                    gap=engine.frame_gap(self.thread_id, call_id, step, until) if gaps else None,
                )
            )
            if gaps:  # the caller was not running once a plain call of it had started
                row = engine.call_row(call_id)
                until = row.first_step if row is not None and not row.generator else None
        return frames

    def frame(self, level: int = 0) -> Frame:
        """Frame `level` of the stack (0: the innermost)."""
        stack = self.stack()
        if not 0 <= level < len(stack):
            raise EngineError(f"no frame {level}: the stack has {len(stack)} frame(s)")
        return stack[level]

    @property
    def outcome(self) -> Outcome | None:
        """The value returned or yielded, or the exception leaving, at a leave step."""
        event = self.event
        kind, payload = event[0], event[5]
        if kind == RETURN:
            return Outcome("return", payload)
        if kind == YIELD:
            return Outcome("yield", payload)
        if kind == UNWIND:
            return Outcome("unwind", payload[2], payload[0], payload[1])
        return None

    @property
    def gap(self) -> Gap | None:
        """At a GAP step: where events start missing, and why."""
        event = self.event
        return gap_of(self.thread_id, event) if event[0] == GAP else None

    @property
    def external(self) -> tuple[str, bool, Any, Any] | None:
        """At an EXTERNAL step: (callee, observed, value venc, exc) of the completed call."""
        event = self.event
        return tuple(event[5]) if event[0] == EXTERNAL else None  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<Cursor thread={self.thread_id} step={self.step} {self.kind}>"
