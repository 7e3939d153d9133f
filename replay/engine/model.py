"""The state of one thread as its events replay: the dynamic call stack and every live frame.

This module owns the one rule the whole engine rests on (docs/internals.md): applying a call's
`changes`/`deleted` from its CALL event through event N gives the frame's locals at event N.
Everything that needs state (the index build, "state at a step", conditional breakpoints, the
tests' cross-checks) replays events through `ThreadState.apply`, so they cannot disagree.

"At an event" means: while that event's line runs. The frame that emits an entry event (CALL,
RESUME, THROW) is pushed first; the frame that emits a leave event (RETURN, UNWIND, YIELD) is
still on the stack at that event and popped after it. A generator frame that yields stays in
`frames` (suspended, off the stack) with its locals, so a later RESUME continues from them.

A GAP event (events missing, docs/internals.md) is an event of the frame that was running where
the events start missing: applied like any other event of a known frame, but a GAP of a frame
the replay does not know adopts nothing (it may be a frame that never got a row: its CALL was
dropped too). After a gap the stack resynchronises as after any missing event (see `apply`).
"""

from __future__ import annotations

import marshal
from collections.abc import Callable
from typing import Any

from replay.events import CALL, GAP, LEAVE_KINDS, RESUME, THROW, YIELD

ENTRY_KINDS = frozenset({CALL, RESUME, THROW})
"""Kinds with which a frame starts (or restarts) running on the thread."""

Resolver = Callable[[int], tuple[int, int]]
"""call_id -> (code_id, parent_call_id) for frames whose CALL event was not seen."""


class LiveFrame:
    """A frame that has started and not ended: on the stack, or a suspended generator."""

    __slots__ = ("args", "call_id", "code_id", "line", "locals", "parent_id", "step")

    def __init__(
        self,
        call_id: int,
        code_id: int,
        parent_id: int,
        *,
        line: int = 0,
        step: int = 0,
        args: dict[str, Any] | None = None,
        local_values: dict[str, Any] | None = None,
    ) -> None:
        self.call_id = call_id
        self.code_id = code_id
        self.parent_id = parent_id
        """The caller recorded at its CALL (a generator's later resumers may differ)."""
        self.line = line
        """Line of the frame's latest event."""
        self.step = step
        """Step of the frame's latest event (0: none seen yet)."""
        self.args = args if args is not None else {}
        """Locals bound at its CALL event: the arguments."""
        self.locals = local_values if local_values is not None else {}

    def copy(self) -> LiveFrame:
        return LiveFrame(
            self.call_id,
            self.code_id,
            self.parent_id,
            line=self.line,
            step=self.step,
            args=self.args,
            local_values=dict(self.locals),
        )

    def __repr__(self) -> str:
        return f"<LiveFrame call={self.call_id} code={self.code_id} line={self.line}>"


class ThreadState:
    """The call stack of one thread (bottom first) and its live frames, at one event."""

    __slots__ = ("frames", "stack")

    def __init__(
        self, stack: list[int] | None = None, frames: dict[int, LiveFrame] | None = None
    ) -> None:
        self.stack: list[int] = stack if stack is not None else []
        self.frames: dict[int, LiveFrame] = frames if frames is not None else {}

    def copy(self) -> ThreadState:
        return ThreadState(list(self.stack), {c: f.copy() for c, f in self.frames.items()})

    # -- replay --------------------------------------------------------------------------

    def apply(self, event: tuple, resolve: Resolver, *, pop: bool = True) -> LiveFrame:
        """Replay one event; with pop=False a leave event's frame stays on the stack.

        Returns the event's frame. Streams with missing events (a GAP, a recorder fault) are
        resynchronised the way the recorder itself does: an event of a frame below the top
        drops the frames above it, and so does a CALL whose caller is below the top; an event
        of an unknown frame adopts it (except a GAP's, see the module docstring).
        """
        kind, step, _ts, call_id, line, payload, changes, deleted = event
        frames = self.frames
        stack = self.stack
        if kind == CALL:
            parent = payload[1]
            if stack and parent and stack[-1] != parent and parent in stack:
                # Frames above the caller ended without a leave event we saw (a gap).
                while stack[-1] != parent:
                    frames.pop(stack.pop(), None)
            frame = LiveFrame(call_id, payload[0], parent, line=line, args=dict(changes or ()))
            frames[call_id] = frame
            stack.append(call_id)
        else:
            frame = frames.get(call_id)  # type: ignore[assignment]
            if frame is None:
                code_id, parent_id = resolve(call_id)
                if kind == GAP:  # a gap in a frame not seen: nothing to put on the stack
                    return LiveFrame(call_id, code_id, parent_id, line=line)
                frame = frames[call_id] = LiveFrame(call_id, code_id, parent_id)
                stack.append(call_id)
            elif not stack or stack[-1] != call_id:
                self._bring_to_top(call_id, kind)
        if changes:
            frame.locals.update(changes)
        if deleted:
            values = frame.locals
            for name in deleted:
                values.pop(name, None)
        if line or kind != GAP:  # a gap whose line is not known keeps the frame's line
            frame.line = line
        frame.step = step
        if pop and kind in LEAVE_KINDS:
            self.leave(kind, call_id)
        return frame

    def leave(self, kind: int, call_id: int) -> None:
        """The second half of a leave event: pop its frame (a yielding one stays suspended)."""
        stack = self.stack
        if stack and stack[-1] == call_id:
            stack.pop()
        if kind != YIELD:
            self.frames.pop(call_id, None)

    def _bring_to_top(self, call_id: int, kind: int) -> None:
        stack = self.stack
        if call_id in stack:
            # Frames above it ended without a leave event we saw: they are gone.
            while stack[-1] != call_id:
                self.frames.pop(stack.pop(), None)
        else:
            # A suspended frame running again (RESUME/THROW), or resumed without an event.
            stack.append(call_id)
        del kind  # every kind is handled alike; kept for the reader of the call site

    # -- snapshots -----------------------------------------------------------------------

    def dumps(self) -> bytes:
        """marshal bytes of this state (the engine's checkpoint format, see index.py)."""
        frames = tuple(
            (f.call_id, f.code_id, f.parent_id, f.line, f.step, f.args, f.locals)
            for f in self.frames.values()
        )
        return marshal.dumps((tuple(self.stack), frames), 4)

    @classmethod
    def loads(cls, data: bytes) -> ThreadState:
        stack, frames = marshal.loads(data)
        return cls(
            list(stack),
            {
                call_id: LiveFrame(
                    call_id,
                    code_id,
                    parent_id,
                    line=line,
                    step=step,
                    args=args,
                    local_values=dict(values),
                )
                for call_id, code_id, parent_id, line, step, args, values in frames
            },
        )


def is_entry(kind: int) -> bool:
    return kind in ENTRY_KINDS


__all__ = ["ENTRY_KINDS", "LEAVE_KINDS", "RESUME", "THROW", "LiveFrame", "ThreadState"]
