"""A brute-force reading of a recording, to check the engine against.

Every step is decoded in order through `replay.reader.RecordingReader.steps()` and kept in
memory; stacks and locals are rebuilt by replaying each thread's changes from its first event.
Nothing here shares code with replay.engine: the movements, breakpoints and histories below are
the definitions of docs/engine.md written the obvious (slow) way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from replay.engine.identity import current_objects
from replay.reader import RecordingReader, Step, open_recording
from replay.values import plain

ENTRY = ("call", "resume", "throw")
LEAVE = ("return", "unwind", "yield")
UNBOUND = "<unbound>"


@dataclass
class RefBreakpoint:
    """What the engine gets as text (`spec`, `condition`), and its meaning as Python."""

    spec: str
    matches: Callable[[Step, Step | None], bool]
    """(event, the thread's previous event) -> hit, before the condition."""
    condition: str | None = None
    test: Callable[[dict[str, Any]], bool] | None = None
    """Over the frame's locals as plain values; a missing name means no hit."""


class Reference:
    """Every event of a recording, per thread, with the stacks replayed."""

    def __init__(self, store_path: str) -> None:
        with open_recording(store_path) as reader:
            self.meta = reader.meta
            self.steps: list[Step] = list(reader.steps())
            self.reader_files = dict(reader.files)
            self.exceptions = reader.store.exceptions(reader.recording_id)
        self.threads: dict[int, list[Step]] = {}
        for step in self.steps:
            self.threads.setdefault(step.thread, []).append(step)
        self.where: dict[int, tuple[int, int]] = {}
        """global step -> (thread, index in the thread's list)."""
        for thread, events in self.threads.items():
            for i, event in enumerate(events):
                self.where[event.step] = (thread, i)
        self.stacks: dict[int, list[tuple[int, ...]]] = {
            thread: self._stacks(events) for thread, events in self.threads.items()
        }

    @staticmethod
    def _stacks(events: list[Step]) -> list[tuple[int, ...]]:
        """The stack (call ids, bottom first) at each event of one thread."""
        stack: list[int] = []
        out = []
        for event in events:
            if event.kind in ENTRY:
                stack.append(event.call)
            assert stack and stack[-1] == event.call, f"unclean stream at step {event.step}"
            out.append(tuple(stack))
            if event.kind in LEAVE:
                stack.pop()
        return out

    # -- state -----------------------------------------------------------------------------

    def state(self, thread: int, i: int) -> list[tuple[int, str, int, dict[str, Any]]]:
        """(call, function, line, locals) of each frame at event i, innermost first."""
        events = self.threads[thread]
        frames: dict[int, dict[str, Any]] = {}
        lines: dict[int, int] = {}
        steps: dict[int, int] = {}
        names: dict[int, str] = {}
        for j in range(i + 1):
            event = events[j]
            if event.kind == "call":
                frames[event.call] = {}
            values = frames.setdefault(event.call, {})
            values.update(event.changes)
            for name in event.deleted:
                values.pop(name, None)
            lines[event.call] = event.line
            steps[event.call] = event.step
            names[event.call] = event.function
            if j < i and event.kind in ("return", "unwind"):
                del frames[event.call]
        stack = list(reversed(self.stacks[thread][i]))
        # The engine shows an object several live frames hold as the one that ran last recorded
        # it (replay/engine/identity.py; the fidelity tests check that rule against the program).
        depth = self.meta["config"]["max_depth"]
        others = [(steps[c], frames[c]) for c in frames if c not in stack]
        values = current_objects([(steps[c], frames[c]) for c in stack], depth, others)
        return [(c, names[c], lines[c], dict(v)) for c, v in zip(stack, values, strict=True)]

    def steps_by(self, step: int) -> Step:
        thread, i = self.where[step]
        return self.threads[thread][i]

    def frame_locals(self, thread: int, i: int) -> dict[str, Any]:
        return self.state(thread, i)[0][3]

    # -- movements (each returns the new index in the thread, or None) ----------------------

    def step(self, thread: int, i: int, forward: bool) -> int | None:
        j = i + 1 if forward else i - 1
        return j if 0 <= j < len(self.threads[thread]) else None

    def next(self, thread: int, i: int, forward: bool) -> int | None:
        events = self.threads[thread]
        if events[i].kind in (LEAVE if forward else ENTRY):
            return self.step(thread, i, forward)
        stack = self.stacks[thread][i]
        return self._seek(thread, i, stack[-1], set(stack[:-1]), forward, None)

    def finish(self, thread: int, i: int, forward: bool) -> int | str | None:
        """The new index, None at the end, or 'error' for the outermost frame."""
        events = self.threads[thread]
        level = 1 if events[i].kind in (LEAVE if forward else ENTRY) else 0
        stack = self.stacks[thread][i]
        if level >= len(stack):
            return "error"
        target = stack[-1 - level]
        guards = set(stack[: len(stack) - 1 - level])
        return self._seek(thread, i, target, guards, forward, LEAVE if forward else ENTRY)

    def _seek(
        self,
        thread: int,
        i: int,
        target: int,
        guards: set[int],
        forward: bool,
        kinds: tuple[str, ...] | None,
    ) -> int | None:
        events = self.threads[thread]
        indexes = range(i + 1, len(events)) if forward else range(i - 1, -1, -1)
        for j in indexes:
            event = events[j]
            if event.call == target and (kinds is None or event.kind in kinds):
                return j
            if event.call in guards:
                return j
        return None

    # -- breakpoints ---------------------------------------------------------------------

    def hits(self, bps: list[RefBreakpoint]) -> list[int]:
        """Global steps where any breakpoint hits, in order (one replay pass per thread)."""
        out = []
        for events in self.threads.values():
            frames: dict[int, dict[str, Any]] = {}
            for i, event in enumerate(events):
                values = frames.setdefault(event.call, {})
                if event.kind == "call":
                    values.clear()
                values.update(event.changes)
                for name in event.deleted:
                    values.pop(name, None)
                before = events[i - 1] if i else None
                for bp in bps:
                    if not bp.matches(event, before):
                        continue
                    if bp.test is not None and not _safe(
                        bp.test, {name: plain(v) for name, v in values.items()}
                    ):
                        continue
                    out.append(event.step)
                    break
        return sorted(out)

    def plain_locals(self, thread: int, i: int) -> dict[str, Any]:
        return {name: plain(v) for name, v in self.frame_locals(thread, i).items()}

    # -- history -------------------------------------------------------------------------

    def history(self, call: int, name: str) -> list[tuple[int, int, Any, Any]]:
        """(step, line that made it, old, new) for every change of `name` in `call`."""
        out = []
        old: Any = UNBOUND
        prev_line = 0
        for event in self.steps:
            if event.call != call:
                continue
            if event.kind == "call":
                prev_line = event.line
            if name in event.changes:
                new = event.changes[name]
            elif name in event.deleted:
                new = UNBOUND
            else:
                prev_line = event.line
                continue
            out.append((event.step, prev_line, old, new))
            old = new
            prev_line = event.line
        return out


def _safe(test: Callable[[dict[str, Any]], bool], values: dict[str, Any]) -> bool:
    try:
        return bool(test(values))
    except (KeyError, IndexError, TypeError, AttributeError):
        return False


def open_reader(store_path: str) -> RecordingReader:
    return open_recording(store_path)
