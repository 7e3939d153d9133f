"""The Engine: one recording opened for time travel, with a Cursor per thread.

This module owns the public API and the movement semantics (the table in docs/engine.md):

    with Engine.open("replay.db") as engine:          # the latest recording
        engine.breakpoints.add("app.py:42", "order.total == 0")
        stop = engine.continue_()                      # to the first hit, in any thread
        for frame in engine.stack():                   # innermost first
            print(frame.function, frame.line, frame.locals)
        engine.reverse_next()
        print(engine.history("total"), engine.origin("total"))

A Cursor stands at one event ("step") of one thread; the engine's current cursor is the one
the movement methods move. Steps, nexts and finishes stay in the cursor's thread; continue and
reverse-continue look for breakpoints in every thread and switch to the thread that hits first;
`goto(N)` switches to the thread that ran step N. Selecting another thread puts its cursor at
that thread's latest event at or before the current step (the thread "as it was then").

Nothing here loads the whole recording: positions are (chunk, event) pairs, chunks are decoded
on demand into a small LRU cache, stacks and locals come from the index's checkpoints plus at
most one chunk of replay, and call facts come from the store's calls table.

Gaps (GAP events: events missing, replay.gaps) are steps like any other: `step` lands on them;
`next`, `finish` and their reverses stop at one where the current frame's own events may be
missing (not at a gap inside a callee they step over whole); `goto` into missing steps says
which gap swallowed them; every frame of a stack names the latest gap it lived through
(`Frame.gap`). `gaps()` lists them, decoding the chunks once, only for a recording that may
have some (`replay.gaps.may_have_gaps`).
"""

from __future__ import annotations

import bisect
import itertools
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from replay.engine import history as _history
from replay.engine.breakpoints import Breakpoints
from replay.engine.cursor import CallRow, Cursor
from replay.engine.errors import EngineError
from replay.engine.expr import Expression
from replay.engine.index import BlobFile, ThreadIndex, save_indexes
from replay.engine.model import ENTRY_KINDS, ThreadState
from replay.engine.scan import find_breakpoint, seek_frame
from replay.engine.stream import ChunkCache, Pos, ThreadStream, gc_paused, quiet_gc
from replay.engine.views import Change, Frame, Match, Outcome, Stop
from replay.events import GAP, LEAVE_KINDS, RETURN, UNWIND
from replay.gaps import Gap, gaps_in, inside_plain_callee, may_have_gaps
from replay.reader import RecordingCatalog, resolve_recording
from replay.storage import Store

_CALL_CACHE = 50_000


class Engine(RecordingCatalog):
    """Random-access time travel over one recording."""

    def __init__(
        self,
        store: Store,
        recording_id: int,
        *,
        owns_store: bool = False,
        cache_chunks: int = 48,
        persist_index: bool = True,
        stored_index: bool = True,
    ) -> None:
        super().__init__(store, recording_id)
        self.thread_rows = {row["thread_id"]: row for row in store.threads(recording_id)}
        self._owns_store = owns_store
        self.cache = ChunkCache(store, cache_chunks, self.read_chunk)
        self.blobs = BlobFile()
        self.notes: list[str] = []
        """Things the engine could not do but worked around (e.g. persisting its index)."""
        per_thread: dict[int, list[Any]] = {}
        for info in store.chunk_index(recording_id):
            per_thread.setdefault(info.thread_id, []).append(info)
        if not per_thread:
            raise EngineError(f"recording {recording_id} has no recorded steps")
        self._streams = {t: ThreadStream(t, c, self.cache) for t, c in sorted(per_thread.items())}
        self._indexes: dict[int, ThreadIndex] = {}
        for thread_id, stream in self._streams.items():
            index = ThreadIndex(stream, self.resolve, self.blobs, store, recording_id)
            if stored_index:
                index.load()
            self._indexes[thread_id] = index
        self._persist = persist_index and stored_index
        self._persisted = all(index.from_store for index in self._indexes.values())
        self._calls: OrderedDict[int, CallRow | None] = OrderedDict()
        self.breakpoints = Breakpoints(self.files, self.functions)
        self._origins: list[dict[str, Any]] | None = None
        self._gaps: list[Gap] | None = None
        self._gap_steps: dict[int, list[int]] = {}
        self._thread_gaps: dict[int, list[Gap]] = {}
        first_thread = min(self._streams, key=lambda t: self._streams[t].first_step)
        self.cursors: dict[int, Cursor] = {}
        self.thread_id = first_thread
        self.cursors[first_thread] = Cursor(self, first_thread, (0, 0))

    @classmethod
    def open(
        cls, store_path: str | os.PathLike[str], rec: str | int | None = None, **options: Any
    ) -> Engine:
        """Open a store read-only and the recording `rec` in it (default: the latest).

        `options`: `cache_chunks` (decoded chunks kept, default 48, a chunk of more than 4,096
        events counting as several), `persist_index` (save the index in the store once built,
        default True), `stored_index` (use an index saved in the store, default True; False
        ignores it and saves nothing)."""
        store = Store.open(store_path, mode="r")
        try:
            return cls(store, resolve_recording(store, rec), owns_store=True, **options)
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        self.blobs.close()
        self.cache.clear()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lookups -------------------------------------------------------------------------

    @property
    def thread_ids(self) -> list[int]:
        return list(self._streams)

    def stream(self, thread_id: int) -> ThreadStream:
        try:
            return self._streams[thread_id]
        except KeyError:
            known = ", ".join(map(str, self._streams))
            raise EngineError(
                f"no thread {thread_id} in the recording (threads: {known})"
            ) from None

    def index(self, thread_id: int) -> ThreadIndex:
        return self._indexes[thread_id]

    def call_row(self, call_id: int) -> CallRow | None:
        """A call's facts (cached; the calls table stays in the store)."""
        calls = self._calls
        if call_id in calls:
            calls.move_to_end(call_id)
            return calls[call_id]
        raw = self.store.call(self.recording_id, call_id) if call_id else None
        row = None
        if raw is not None:
            row = CallRow(
                raw["call_id"],
                raw["parent_id"] or 0,
                raw["function_id"],
                raw["thread_id"],
                raw["depth"],
                raw["first_step"],
                raw["last_step"],
                bool(raw["exception"]),
                bool(raw["generator"]),
            )
        calls[call_id] = row
        if len(calls) > _CALL_CACHE:
            calls.popitem(last=False)
        return row

    def resolve(self, call_id: int) -> tuple[int, int]:
        """(code id, parent call id) of a call whose CALL event a replay did not see."""
        row = self.call_row(call_id)
        return (row.function_id, row.parent_id) if row is not None else (0, 0)

    # -- gaps ----------------------------------------------------------------------------

    def gaps(self) -> list[Gap]:
        """Every GAP of the recording (where events are missing, and why), in step order.

        Found once per engine by decoding the chunks that may hold one (all of them, unless
        the index says which), and only when the recording may have gaps at all."""
        if self._gaps is None:
            found: list[Gap] = []
            if may_have_gaps(self.meta):
                with gc_paused:
                    for thread_id, stream in self._streams.items():
                        summaries = self._indexes[thread_id].summaries
                        for k, info in enumerate(stream.chunks):
                            summary = summaries[k] if k < len(summaries) else None
                            if summary is not None and GAP not in summary.kinds:
                                continue
                            found.extend(gaps_in(thread_id, self.read_chunk(info.id)))
            found.sort(key=lambda gap: gap.step)
            self._gaps = found
            for gap in found:
                self._gap_steps.setdefault(gap.thread, []).append(gap.step)
                self._thread_gaps.setdefault(gap.thread, []).append(gap)
        return self._gaps

    def gap_steps(self, thread_id: int) -> list[int]:
        """The steps of the thread's GAP events, ascending (usually empty)."""
        self.gaps()
        return self._gap_steps.get(thread_id, [])

    def gap_at(self, thread_id: int, step: int) -> Gap | None:
        """The thread's latest gap at or before `step`."""
        steps = self.gap_steps(thread_id)
        i = bisect.bisect_right(steps, step)
        return self._thread_gaps[thread_id][i - 1] if i else None

    def frame_gap(self, thread_id: int, call_id: int, step: int, until: int | None) -> Gap | None:
        """The latest gap of the thread during which the frame may have run, up to `step`.

        Gaps inside a plain callee whose end was recorded do not count (replay.gaps); nor do
        gaps after `until`: the first step of the frame's callee on the stack when that callee
        is a plain call (the frame has not run since), else None. None: no such gap."""
        steps = self.gap_steps(thread_id)
        if not steps:
            return None
        row = self.call_row(call_id)
        first = row.first_step if row is not None else 0
        last = min(step, until) if until is not None else step
        gaps = self._thread_gaps[thread_id]
        for i in range(bisect.bisect_right(steps, last) - 1, -1, -1):
            gap = gaps[i]
            if gap.step <= first:
                return None
            if not inside_plain_callee(gap.call_id, gap.step, call_id, self.call_row):
                return gap
        return None

    @property
    def indexed(self) -> bool:
        """True when every thread's index is complete (read from the store, or built)."""
        return all(index.complete for index in self._indexes.values())

    @property
    def chunk_count(self) -> int:
        return sum(len(stream) for stream in self._streams.values())

    @property
    def first_step(self) -> int:
        return min(s.first_step for s in self._streams.values())

    @property
    def last_step(self) -> int:
        return max(s.last_step for s in self._streams.values())

    # -- state ---------------------------------------------------------------------------

    @quiet_gc
    def state_at(self, thread_id: int, pos: Pos) -> ThreadState:
        """The thread's state at the event at `pos`: a checkpoint plus at most INNER_EVENTS
        events of replay."""
        k, i = pos
        state, start = self._indexes[thread_id].checkpoint_before(k, i)
        events = self._streams[thread_id].events(k)
        apply = state.apply
        resolve = self.resolve
        for j in range(start, i):
            apply(events[j], resolve)
        apply(events[i], resolve, pop=False)
        self._maybe_persist()
        return state

    @property
    def cursor(self) -> Cursor:
        """The current thread's cursor."""
        return self.cursors[self.thread_id]

    @quiet_gc
    def stack(self) -> list[Frame]:
        return self.cursor.stack()

    def frame(self, level: int = 0) -> Frame:
        return self.cursor.frame(level)

    def locals(self, level: int = 0) -> dict[str, Any]:
        return self.cursor.frame(level).locals

    @quiet_gc
    def call_outcome(self, level: int = 0) -> Outcome | None:
        """How frame `level`'s call ends: its return value or exception, read at its last step
        (None if the recording ends first). At a generator's YIELD, `cursor.outcome` has the
        yielded value; this is its final end."""
        row = self.call_row(self.cursor.frame(level).call_id)
        if row is None or row.last_step is None:
            return None
        stream = self.stream(row.thread_id)
        pos = stream.find(row.last_step)
        if pos is None:
            return None
        event = stream.event(pos)
        if event[0] == RETURN:
            return Outcome("return", event[5])
        if event[0] == UNWIND:
            return Outcome("unwind", event[5][2], event[5][0], event[5][1])
        return None

    @quiet_gc
    def evaluate(self, expression: str, level: int = 0) -> Any:
        """An expression over frame `level`'s recorded locals (see replay.engine.expr)."""
        return Expression(expression).evaluate(self.cursor.frame(level).locals)

    @quiet_gc
    def history(self, name: str, level: int = 0, *, limit: int | None = None) -> list[Change]:
        """Every change of `name` in frame `level`'s call over the call's whole life (the first
        `limit` ones if given). For a variable changing millions of times, `iter_history`
        streams them instead of holding them all."""
        changes = list(itertools.islice(self.iter_history(name, level), limit))
        if not changes and name not in self.cursor.frame(level).locals:
            frame = self.cursor.frame(level)
            raise EngineError(f"{name!r} is never bound in {frame.function}()")
        return changes

    def iter_history(self, name: str, level: int = 0) -> Iterator[Change]:
        """`history`, one change at a time (the GC is paused only between changes' reads)."""
        frame = self.cursor.frame(level)
        changes = _history.iter_history(self, frame.call_id, name, self.thread_id)
        while True:
            with gc_paused:
                change = next(changes, None)
            if change is None:
                return
            yield change

    @quiet_gc
    def origin(self, name: str, level: int = 0) -> Change:
        """The step that gave `name` its current value in frame `level` (the last binding)."""
        frame = self.cursor.frame(level)
        change = _history.origin(self, frame.call_id, name, self.cursor.step, self.thread_id)
        if change is None or (name not in frame.locals and change.step == self.cursor.step):
            raise EngineError(f"{name!r} is not bound in {frame.function}() at this step")
        return change

    @quiet_gc
    def search(
        self, condition: str, *, call_id: int | None = None, limit: int = 100
    ) -> list[Match]:
        """Steps where a variable changed so that `condition` held (in a call subtree if given)."""
        return _history.search(self, condition, call_id=call_id, limit=limit)

    # -- threads -------------------------------------------------------------------------

    @quiet_gc
    def select_thread(self, thread_id: int) -> Cursor:
        """Make `thread_id` current, standing where it was at the current step."""
        stream = self.stream(thread_id)
        if thread_id != self.thread_id:
            now = self.cursor.step
            pos = stream.at_or_before(now) or stream.first()
            cursor = self.cursors.get(thread_id)
            if cursor is None:
                cursor = self.cursors[thread_id] = Cursor(self, thread_id, pos)
            else:
                cursor.move(pos)
            self.thread_id = thread_id
        return self.cursor

    def _stand(self, thread_id: int, pos: Pos, reason: str, **extra: Any) -> Stop:
        if thread_id != self.thread_id:
            cursor = self.cursors.get(thread_id)
            if cursor is None:
                cursor = self.cursors[thread_id] = Cursor(self, thread_id, pos)
            self.thread_id = thread_id
        self.cursor.move(pos)
        self._maybe_persist()
        return Stop(self.cursor.step, thread_id, reason, **extra)

    # -- movements -----------------------------------------------------------------------

    @quiet_gc
    def step(self) -> Stop:
        """To the thread's next event, entering calls."""
        cursor = self.cursor
        pos = cursor.stream.next(cursor.pos)
        if pos is None:
            return self._end("end", "the end of the thread's recording")
        return self._stand(cursor.thread_id, pos, "step")

    @quiet_gc
    def reverse_step(self) -> Stop:
        """To the thread's previous event."""
        cursor = self.cursor
        pos = cursor.stream.prev(cursor.pos)
        if pos is None:
            return self._end("start", "the start of the thread's recording")
        return self._stand(cursor.thread_id, pos, "step")

    @quiet_gc
    def next(self) -> Stop:
        """To the frame's next event, over calls; from a return/yield/unwind, like step."""
        cursor = self.cursor
        if cursor.event[0] in LEAVE_KINDS:
            return self.step()
        return self._seek(forward=True, kinds=None, level=0)

    @quiet_gc
    def reverse_next(self) -> Stop:
        """To the frame's previous event, over calls; from a call/resume, like reverse-step."""
        cursor = self.cursor
        if cursor.event[0] in ENTRY_KINDS:
            return self.reverse_step()
        return self._seek(forward=False, kinds=None, level=0)

    @quiet_gc
    def finish(self) -> Stop:
        """To the step where the current call returns, yields or unwinds (its leave event).

        Standing on that step already, to the caller's leave step."""
        level = 1 if self.cursor.event[0] in LEAVE_KINDS else 0
        return self._seek(forward=True, kinds=LEAVE_KINDS, level=level)

    @quiet_gc
    def reverse_finish(self) -> Stop:
        """To the step where the current call started (its CALL, or a generator's latest
        RESUME/THROW). Standing on that step already, to the caller's start."""
        level = 1 if self.cursor.event[0] in ENTRY_KINDS else 0
        return self._seek(forward=False, kinds=ENTRY_KINDS, level=level)

    def _seek(self, *, forward: bool, kinds: frozenset[int] | None, level: int) -> Stop:
        cursor = self.cursor
        stack = cursor.state().stack
        if level >= len(stack):
            verb = "finish" if forward else "reverse-finish"
            raise EngineError(f"{verb}: the outermost frame has no caller in the recording")
        target = stack[-1 - level]
        guards = set(stack[: len(stack) - 1 - level])
        row = self.call_row(target)
        pos: Pos | None = None
        if kinds is not None and row is not None and not row.generator:
            # A plain call runs from its CALL to its last step without pause: go straight there.
            step = row.last_step if forward else row.first_step
            if step is not None and (step > cursor.step if forward else step < cursor.step):
                pos = cursor.stream.find(step)
        if pos is None:
            pos = seek_frame(
                self, cursor.stream, cursor.pos, target, guards, forward=forward, kinds=kinds
            )
        if pos is None:
            end = "end" if forward else "start"
            return self._end(end, f"the {end} of the thread's recording")
        if cursor.stream.event(pos)[0] == GAP:
            return self._stand(
                cursor.thread_id, pos, "gap", message="stopped at a gap: events are missing here"
            )
        return self._stand(cursor.thread_id, pos, "step")

    def _end(self, reason: str, message: str) -> Stop:
        cursor = self.cursor
        pos = cursor.stream.last() if reason == "end" else cursor.stream.first()
        return self._stand(cursor.thread_id, pos, reason, message=message)

    @quiet_gc
    def continue_(self) -> Stop:
        """To the next breakpoint hit in any thread; else to the end of the current thread."""
        return self._continue(forward=True)

    @quiet_gc
    def reverse_continue(self) -> Stop:
        """To the previous breakpoint hit in any thread; else to the start of the thread."""
        return self._continue(forward=False)

    def _continue(self, *, forward: bool) -> Stop:
        bps = self.breakpoints.active()
        cursor = self.cursor
        best = None
        if bps:
            best = find_breakpoint(self, cursor.stream, cursor.pos, bps, forward=forward)
            now = cursor.step
            for thread_id, stream in self._streams.items():
                if thread_id == cursor.thread_id:
                    continue
                start = stream.at_or_after(now + 1) if forward else stream.at_or_before(now - 1)
                if start is None:
                    continue
                limit = best.step if best is not None else None
                hit = find_breakpoint(
                    self, stream, start, bps, forward=forward, inclusive=True, limit_step=limit
                )
                if hit is not None and (
                    best is None or (hit.step < best.step if forward else hit.step > best.step)
                ):
                    best = hit
        if best is None:
            return self._end("end" if forward else "start", "no breakpoint hit")
        return self._stand(best.thread, best.pos, "breakpoint", breakpoint=best.breakpoint)

    # -- jumps ---------------------------------------------------------------------------

    @quiet_gc
    def goto(self, step: int) -> Stop:
        """To global step `step` (or the first recorded step after it), in its thread."""
        if not self.first_step <= step <= self.last_step:
            raise EngineError(
                f"step {step} is outside the recording (steps {self.first_step}..{self.last_step})"
            )
        for thread_id, stream in self._streams.items():
            pos = stream.find(step)
            if pos is not None:
                return self._stand(thread_id, pos, "goto")
        # The step was not recorded (dropped events): the first recorded one after it.
        best: tuple[int, int, Pos] | None = None
        for thread_id, stream in self._streams.items():
            pos = stream.at_or_after(step)
            if pos is not None:
                found = stream.event(pos)[1]
                if best is None or found < best[0]:
                    best = (found, thread_id, pos)
        assert best is not None
        message = f"step {step} was not recorded"
        lost = [gap for gap in self.gaps() if gap.step <= step]
        if lost:
            gap = lost[-1]
            message += f": lost in the gap at step {gap.step} (thread {gap.thread}), {gap.text}"
        return self._stand(best[1], best[2], "goto", message=message)

    @quiet_gc
    def goto_call(self, call_id: int, *, end: bool = False) -> Stop:
        """To the first step (CALL) of a call, or with end=True its last step."""
        row = self.call_row(call_id)
        if row is None:
            raise EngineError(f"no call {call_id} in the recording")
        stream = self.stream(row.thread_id)
        step = row.last_step if end else row.first_step
        pos = stream.find(step) if step is not None else stream.last()
        if pos is None:
            pos = stream.at_or_before(step or 0) or stream.first()
        return self._stand(row.thread_id, pos, "goto")

    def exceptions(self) -> list[dict[str, Any]]:
        """Exceptions raised (their first RAISE, not the frames they propagate through)."""
        if self._origins is None:
            rows = self.store.exceptions(self.recording_id, kinds=["raise", "unwind", "handled"])
            last: dict[int, dict[str, Any]] = {}
            origins = []
            for row in rows:
                before = last.get(row["thread_id"])
                last[row["thread_id"]] = row
                if row["kind"] != "raise":
                    continue
                if (
                    before is not None
                    and before["kind"] == "unwind"
                    and before["type"] == row["type"]
                    and before["message"] == row["message"]
                ):
                    continue  # the same exception propagating into the caller
                origins.append(row)
            self._origins = origins
        return self._origins

    @quiet_gc
    def goto_exception(self, number: int | None = None) -> Stop:
        """To where exception `number` (1-based) was raised; None: the uncaught exception."""
        origins = self.exceptions()
        if number is not None:
            if not 1 <= number <= len(origins):
                raise EngineError(
                    f"no exception {number}: the recording has {len(origins)} raised exception(s)"
                )
            row = origins[number - 1]
        else:
            row = self._uncaught_origin(origins)
        stream = self.stream(row["thread_id"])
        pos = stream.find(row["step"])
        if pos is None:
            raise EngineError(f"step {row['step']} of the exception is not in the recording")
        message = f"{row['type']}: {row['message']}" if row.get("message") else row["type"]
        return self._stand(row["thread_id"], pos, "exception", message=message)

    def _uncaught_origin(self, origins: list[dict[str, Any]]) -> dict[str, Any]:
        step, thread = self._uncaught_step()
        if step is None:
            raise EngineError(
                "the program ended without an uncaught exception; "
                f"{len(origins)} exception(s) were raised (see `exception N`)"
            )
        candidates = [
            row
            for row in origins
            if row["step"] <= step and (thread is None or row["thread_id"] == thread)
        ]
        if not candidates:
            raise EngineError("the uncaught exception was raised outside the recorded code")
        return candidates[-1]

    def _uncaught_step(self) -> tuple[int | None, int | None]:
        """Step and thread where the uncaught exception left the outermost recorded frame."""
        step = self.meta.get("exception_step")
        if step is not None:
            for thread_id, stream in self._streams.items():
                if stream.find(step) is not None:
                    return step, thread_id
            return step, None
        # Not in the recording's row (a recording cut short): a thread whose last event is
        # the UNWIND of its outermost frame ended with an uncaught exception. Main first.
        for thread_id in sorted(self._streams, key=lambda t: (t != 1, t)):
            event = self._streams[thread_id].event(self._streams[thread_id].last())
            if event[0] == UNWIND:
                row = self.call_row(event[3])
                if row is None or not row.parent_id:
                    return event[1], thread_id
        return None, None

    # -- the index -----------------------------------------------------------------------

    @quiet_gc
    def build_index(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Build every thread's index now (else it is built as far as needed, when needed)."""
        total = sum(len(s) for s in self._streams.values())
        done = 0
        for index in self._indexes.values():
            base = done
            if progress is not None:
                index.on_progress = lambda ready, _n, base=base: progress(base + ready, total)
            index.build_all()
            index.on_progress = None
            done += len(index.stream)
        self._maybe_persist()

    def _maybe_persist(self) -> None:
        if self._persisted or not self._persist:
            return
        if not self.indexed:
            return
        self._persisted = True
        if self.meta.get("status") == "running":
            self.notes.append("the index is kept in memory: the recording is still running")
            return
        error = save_indexes(self.store.path, self.recording_id, self._indexes.values())
        if error is not None:
            self.notes.append(f"the index could not be saved in the store: {error}")
