"""Scanning a thread's events forwards or backwards: the loops behind every long movement.

This module owns two searches, both written as tight loops over decoded chunks:

- `seek_frame`: the next (or previous) event of one frame, or of one of its callers (a guard for
  frames that end without a leave event), or a GAP where the frame's own events may be missing.
  When a chunk ends inside a callee that is not a generator, the callee's whole remaining
  subtree is skipped using the calls table (a non-generator call occupies its thread from its
  CALL to its last step), so `next` over a call of a million steps reads two chunks, not a
  thousand. For the same reason a GAP inside such a callee (one whose end was recorded) hides
  nothing of the frame and does not stop the seek.
- `find_breakpoint`: the first (or last) breakpoint hit in a thread from a position, skipping
  chunks whose summary cannot match and evaluating conditions only at candidate events, in the
  hitting frame's locals rebuilt from the chunk's checkpoint.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from replay.engine.breakpoints import Breakpoint
from replay.engine.index import ChunkSummary, ThreadIndex
from replay.engine.stream import Pos, ThreadStream
from replay.events import CALL, F_STEP
from replay.gaps import inside_plain_callee

if TYPE_CHECKING:
    from replay.engine.engine import Engine

_step_of = itemgetter(F_STEP)


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
    if given) or of any frame in `guards`, or the nearest GAP where the frame's events may be
    missing (see `_gap_hides_frame`)."""
    k, i = start
    n = len(stream)
    events = stream.events(k)
    lo = i + 1 if forward else i - 1
    gap_steps = engine.gap_steps(stream.thread_id)
    while True:
        gap = (
            _first_gap_stop(
                engine, events, lo, target, guards, gap_steps=gap_steps, forward=forward
            )
            if gap_steps
            else None
        )
        if forward:
            for j in range(lo, len(events) if gap is None else gap):
                call_id = events[j][3]
                if call_id == target:
                    if kinds is None or events[j][0] in kinds:
                        return (k, j)
                elif call_id in guards:
                    return (k, j)
            if gap is not None:
                return (k, gap)
            jump = _skip_subtree(engine, stream, k, events[-1], target, forward=True)
        else:
            for j in range(lo, -1 if gap is None else gap, -1):
                call_id = events[j][3]
                if call_id == target:
                    if kinds is None or events[j][0] in kinds:
                        return (k, j)
                elif call_id in guards:
                    return (k, j)
            if gap is not None:
                return (k, gap)
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


def _first_gap_stop(
    engine: Engine,
    events: list[tuple],
    lo: int,
    target: int,
    guards: Collection[int],
    *,
    gap_steps: list[int],
    forward: bool,
) -> int | None:
    """The index of the first GAP from `lo` (in the scan's direction) that stops a seek."""
    if not 0 <= lo < len(events):
        return None
    if forward:
        low, high = events[lo][F_STEP], events[-1][F_STEP]
    else:
        low, high = events[0][F_STEP], events[lo][F_STEP]
    steps = gap_steps[bisect.bisect_left(gap_steps, low) : bisect.bisect_right(gap_steps, high)]
    for step in steps if forward else reversed(steps):
        j = bisect.bisect_left(events, step, key=_step_of)
        if (
            j < len(events)
            and events[j][F_STEP] == step
            and _gap_hides_frame(engine, events[j], target, guards)
        ):
            return j
    return None


def _gap_hides_frame(engine: Engine, gap: tuple, target: int, guards: Collection[int]) -> bool:
    """Whether events of `target` (or of a frame below it) may be missing at this GAP.

    Not when the gap lies inside a plain callee of `target` whose end was recorded (see
    `replay.gaps.inside_plain_callee`); in every other case (the gap in `target` or below, a
    frame with no row, a generator) it may: the seek stops there.
    """
    call_id = gap[3]
    if call_id in guards:
        return True
    return not inside_plain_callee(call_id, gap[F_STEP], target, engine.call_row)


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
    """Code ids and locals inside one chunk, computed only as far as a scan asks.

    Locals are tracked only for the frames in `calls` (those of the candidate events), so a
    condition on a hot line of one function costs one dict lookup per event of the others.
    """

    def __init__(
        self,
        engine: Engine,
        stream: ThreadStream,
        k: int,
        events: list[tuple],
    ) -> None:
        self.engine = engine
        self.stream = stream
        self.k = k
        self.events = events
        self.calls: frozenset[int] = frozenset()
        """The frames whose locals `env` is asked for."""
        self._codes: dict[int, int] | None = None
        self._tracked: dict[int, dict[str, Any]] | None = None
        self._applied = 0
        self._mine: list[int] = []
        self._next = 0

    def code_of(self, call_id: int) -> int:
        codes = self._codes
        if codes is None:
            # Calls started in this chunk say their code; older ones are in the calls table.
            codes = self._codes = {e[3]: e[5][0] for e in self.events if e[0] == CALL}
        code = codes.get(call_id)
        if code is None:
            row = self.engine.call_row(call_id)
            code = codes[call_id] = row.function_id if row is not None else 0
        return code

    def env(self, i: int) -> dict[str, Any]:
        """The locals of event i's frame at event i (call with increasing i)."""
        events = self.events
        event = events[i]
        if event[0] == CALL:
            return dict(event[6] or ())
        wanted = self.calls
        tracked = self._tracked
        if tracked is None or i < self._applied:
            state = self.engine.index(self.stream.thread_id).checkpoint(self.k)
            tracked = self._tracked = {
                call_id: frame.locals
                for call_id, frame in state.frames.items()
                if call_id in wanted
            }
            self._applied = 0
            # The events of the tracked frames, found once by a comprehension (C speed).
            self._mine = [j for j, e in enumerate(events) if e[3] in wanted]
            self._next = 0
        mine = self._mine
        n = self._next
        while n < len(mine) and mine[n] < i:
            other = events[mine[n]]
            n += 1
            if other[0] == CALL:
                tracked[other[3]] = dict(other[6] or ())
                continue
            values = tracked.get(other[3])
            if values is not None:
                if other[6]:
                    values.update(other[6])
                for name in other[7] or ():
                    values.pop(name, None)
        self._next = n
        self._applied = i
        base = tracked.get(event[3])
        if base is None:  # a frame the chunk's replay did not see start (recorder gap)
            frame = self.engine.state_at(self.stream.thread_id, (self.k, i)).frames.get(event[3])
            return dict(frame.locals) if frame is not None else {}
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
        if candidates and not _excluded_by_digest(index, k, summary, candidates):
            events = stream.events(k)
            if forward:
                lo, hi = (i if inclusive else i + 1) if first else 0, len(events)
            else:
                lo, hi = 0, (i + 1 if inclusive else i) if first else len(events)
            hit = _hit_in_chunk(
                engine,
                stream,
                k,
                events,
                lo=lo,
                hi=hi,
                bps=candidates,
                forward=forward,
                limit_step=limit_step,
            )
            if hit is not None:
                return hit
        first = False
        k = k + 1 if forward else k - 1
    return None


def _excluded_by_digest(
    index: ThreadIndex, k: int, summary: ChunkSummary, bps: list[Breakpoint]
) -> bool:
    """True when no conditional line breakpoint can hit in chunk k, known without decoding it.

    When every frame that runs a breakpoint's line in the chunk was already live at its start,
    its locals at any of its events are the checkpoint's, or those after one of its changes in
    the chunk's digest. If the condition holds for none of these, that frame cannot hit.
    """
    if k == 0 or any(bp.kind != "line" or bp.condition is None for bp in bps):
        return False
    state = None
    digest = None
    for bp in bps:
        codes = bp.hitting_codes(summary)
        if not codes.isdisjoint(summary.called):
            return False  # a frame starting in the chunk may hit: read the chunk
        if state is None:
            state = index.checkpoint(k)
            digest = index.digest(k)
        assert digest is not None and bp.condition is not None
        live = [f for f in state.frames.values() if f.code_id in codes]
        if {f.code_id for f in live} != codes:
            return False  # a frame the checkpoint does not know runs the line (a recorder gap)
        test = bp.condition.test
        for frame in live:
            values = dict(frame.locals)
            if test(values):
                return False
            for _step, _line, changes, deleted in digest.get(frame.call_id, ()):
                if changes:
                    values.update(changes)
                for name in deleted or ():
                    values.pop(name, None)
                if test(values):
                    return False
    return True


def _hit_in_chunk(
    engine: Engine,
    stream: ThreadStream,
    k: int,
    events: list[tuple],
    *,
    lo: int,
    hi: int,
    bps: list[Breakpoint],
    forward: bool,
    limit_step: int | None,
) -> Hit | None:
    ctx = ChunkContext(engine, stream, k, events)
    previous = None
    if k > 0 and lo == 0 and any(bp.kind == "exception" for bp in bps):
        previous = stream.events(k - 1)[-1]  # tells a propagating exception from a new one
    found: list[tuple[int, int, Breakpoint]] = []
    for bp in bps:
        hits = bp.candidates(events, lo, hi, ctx.code_of, previous)
        found.extend((i, bp.number, bp) for i in hits)
    if not found:
        return None
    ctx.calls = frozenset(events[i][3] for i, _number, bp in found if bp.condition is not None)
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
