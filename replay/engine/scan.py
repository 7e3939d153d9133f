"""Scanning a thread's events forwards or backwards: the loops behind every long movement.

This module owns two searches, both written as tight loops over decoded chunks:

- `seek_frame`: the next (or previous) event of one frame, or of one of its callers (a guard for
  frames that end without a leave event). When a chunk ends inside a callee that is not a
  generator, the callee's whole remaining subtree is skipped using the calls table (a
  non-generator call occupies its thread from its CALL to its last step), so `next` over a call
  of a million steps reads two chunks, not a thousand.
- `find_breakpoint`: the first (or last) breakpoint hit in a thread from a position, skipping
  chunks whose summary cannot match and evaluating conditions only at candidate events, in the
  hitting frame's locals rebuilt from the chunk's checkpoint.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from replay.engine.breakpoints import Breakpoint
from replay.engine.model import ThreadState
from replay.engine.stream import Pos, ThreadStream
from replay.events import CALL

if TYPE_CHECKING:
    from replay.engine.engine import Engine


def seek_frame(
    engine: Engine,
    stream: ThreadStream,
    start: Pos,
    target: int,
    guards: Collection[int],
    *,
    forward: bool,
    kinds: Collection[int] | None = None,
) -> Pos | None:
    """The nearest event after (forward) or before `start` of frame `target` (of one of `kinds`
    if given) or of any frame in `guards`."""
    k, i = start
    n = len(stream)
    events = stream.events(k)
    lo = i + 1 if forward else i - 1
    while True:
        if forward:
            for j in range(lo, len(events)):
                call_id = events[j][3]
                if call_id == target:
                    if kinds is None or events[j][0] in kinds:
                        return (k, j)
                elif call_id in guards:
                    return (k, j)
            jump = _skip_subtree(engine, stream, k, events[-1], target, forward=True)
        else:
            for j in range(lo, -1, -1):
                call_id = events[j][3]
                if call_id == target:
                    if kinds is None or events[j][0] in kinds:
                        return (k, j)
                elif call_id in guards:
                    return (k, j)
            jump = _skip_subtree(engine, stream, k, events[0], target, forward=False)
        if jump is not None:
            k, i = jump
            events = stream.events(k)
            lo = i + 1 if forward else i - 1
            continue
        k = k + 1 if forward else k - 1
        if not 0 <= k < n:
            return None
        events = stream.events(k)
        lo = 0 if forward else len(events) - 1


def _skip_subtree(
    engine: Engine, stream: ThreadStream, k: int, edge: tuple, target: int, *, forward: bool
) -> Pos | None:
    """Where to resume a seek for `target` after chunk k ended in one of its callees.

    The callee D of `target` whose subtree holds the chunk's edge event is not a generator, so
    every event of this thread from D's CALL to D's last step is D's or its callees': jump to
    D's last step (forward) or D's CALL (backward). None when that does not pay or is unsafe.
    """
    call_id, step = edge[3], edge[1]
    if call_id == target:
        return None
    target_row = engine.call_row(target)
    row = engine.call_row(call_id)
    if target_row is None or row is None:
        return None
    # Walk the recorded parents up to the child of `target` (depth = target's depth + 1).
    while row is not None and row.depth > target_row.depth + 1:
        row = engine.call_row(row.parent_id) if row.parent_id else None
    if (
        row is None
        or row.parent_id != target
        or row.generator
        or row.thread_id != stream.thread_id
        or row.last_step is None
        or not row.first_step <= step <= row.last_step
    ):
        return None
    if forward:
        if row.last_step <= stream.lasts[k]:
            return None
        return stream.find(row.last_step)
    if row.first_step >= stream.firsts[k]:
        return None
    return stream.find(row.first_step)


# -- breakpoints ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    thread: int
    pos: Pos
    step: int
    breakpoint: Breakpoint


class ChunkContext:
    """Code ids and locals inside one chunk, computed only as far as a scan asks."""

    def __init__(self, engine: Engine, stream: ThreadStream, k: int, events: list[tuple]) -> None:
        self.engine = engine
        self.stream = stream
        self.k = k
        self.events = events
        self._codes: dict[int, int] | None = None
        self._state: ThreadState | None = None
        self._applied = 0

    def code_of(self, call_id: int) -> int:
        codes = self._codes
        if codes is None:
            state = self.engine.index(self.stream.thread_id).checkpoint(self.k)
            codes = {f.call_id: f.code_id for f in state.frames.values()}
            codes.update((e[3], e[5][0]) for e in self.events if e[0] == CALL)
            self._codes = codes
        code = codes.get(call_id)
        if code is None:
            row = self.engine.call_row(call_id)
            code = codes[call_id] = row.function_id if row is not None else 0
        return code

    def env(self, i: int) -> dict[str, Any]:
        """The locals of event i's frame at event i (call with increasing i)."""
        if self._state is None or i < self._applied:
            self._state = self.engine.index(self.stream.thread_id).checkpoint(self.k)
            self._applied = 0
        state = self._state
        events = self.events
        resolve = self.engine.resolve
        for j in range(self._applied, i):
            state.apply(events[j], resolve)
        self._applied = i
        event = events[i]
        if event[0] == CALL:
            return dict(event[6] or ())
        frame = state.frames.get(event[3])
        base = frame.locals if frame is not None else {}
        changes, deleted = event[6], event[7]
        if not changes and not deleted:
            return base
        values = dict(base)
        if changes:
            values.update(changes)
        for name in deleted or ():
            values.pop(name, None)
        return values


def find_breakpoint(
    engine: Engine,
    stream: ThreadStream,
    start: Pos,
    breakpoints: Iterable[Breakpoint],
    *,
    forward: bool,
    inclusive: bool = False,
    limit_step: int | None = None,
) -> Hit | None:
    """The nearest hit after (forward) or before `start` in this thread, within `limit_step`."""
    bps = list(breakpoints)
    if not bps:
        return None
    index = engine.index(stream.thread_id)
    k, i = start
    n = len(stream)
    first = True
    while 0 <= k < n:
        if limit_step is not None and (
            stream.firsts[k] > limit_step if forward else stream.lasts[k] < limit_step
        ):
            return None
        summary = index.summary(k)
        candidates = [bp for bp in bps if bp.may_match(summary)]
        if candidates:
            events = stream.events(k)
            if forward:
                lo, hi = (i if inclusive else i + 1) if first else 0, len(events)
            else:
                lo, hi = 0, (i + 1 if inclusive else i) if first else len(events)
            hit = _hit_in_chunk(engine, stream, k, events, lo, hi, candidates, forward, limit_step)
            if hit is not None:
                return hit
        first = False
        k = k + 1 if forward else k - 1
    return None


def _hit_in_chunk(
    engine: Engine,
    stream: ThreadStream,
    k: int,
    events: list[tuple],
    lo: int,
    hi: int,
    bps: list[Breakpoint],
    forward: bool,
    limit_step: int | None,
) -> Hit | None:
    ctx = ChunkContext(engine, stream, k, events)
    previous = stream.events(k - 1)[-1] if k > 0 and lo == 0 else None
    found: list[tuple[int, int, Breakpoint]] = []
    for bp in bps:
        hits = bp.candidates(events, lo, hi, ctx.code_of, previous)
        found.extend((i, bp.number, bp) for i in hits)
    if not found:
        return None
    found.sort(key=lambda item: (item[0], item[1]))
    best: Hit | None = None
    for i, _number, bp in found:
        step = events[i][1]
        if limit_step is not None and (step > limit_step if forward else step < limit_step):
            continue
        if bp.condition is not None and not bp.condition.test(ctx.env(i)):
            continue
        hit = Hit(stream.thread_id, (k, i), step, bp)
        if forward:
            return hit
        best = hit  # backward: the last hit of the chunk
    return best
