"""The writer thread: moves event lists from the traced threads into the store, off the hot path.

Every FLUSH_INTERVAL seconds (and when asked) it takes the lists the traced threads handed off,
plus whatever each thread has buffered since, derives the index rows (calls, exceptions,
functions, files, threads) from the events, encodes each list as one zstd chunk and writes all
of it in one transaction. So a process killed with SIGKILL loses at most about one interval.
Between ticks, a hand-off that leaves state.WAKE_WRITER_LISTS lists waiting wakes it, and it then
writes the oldest lists by whole groups of BEHIND_LISTS (`_full_groups`), before the traced
thread reaches the memory bound and has to wait for it.

Taking a thread's partial list without a lock: the writer copies `events[:n]` and then deletes
`events[:n]`, two operations that are each atomic under the GIL and touch only the first n items.
Events the thread appends meanwhile stay in the list, and if the thread hands the list off at the
same moment, the writer later finds only the newer events in it: nothing is lost or doubled.
Chunks are ordered by their first step (a chunk's `seq` IS its first step), because a list handed
off just after a tick can be older than a partial list taken at that tick; the queue is read again
after the partial lists, so such a list is written in the same transaction, before the newer one.

The backlog policy (`--on-backlog`) is installed here as `state.on_backlog`, which the traced
thread calls when more than MAX_PENDING_BATCHES lists wait for the writer:

- `block` (`wait_for_writer`): the traced thread wakes the writer and waits until the queue is
  back within the bound (up to 10 s at a time; after that it goes on and the queue grows).
- `drop` (`DropBacklog`): the traced thread never waits. While the writer is busy writing, the
  newest lists past the bound are taken off the queue and dropped; per thread, one run of
  consecutive dropped lists becomes one GAP event (reason "backlog") at the first dropped step,
  plus the CALL events of frames that started in the run and still run at its end (so the
  frames after the gap have their calls rows, arguments and parents). The number of dropped
  events goes to `recordings.events_dropped`, in the transaction that writes the GAP. Memory
  stays bounded: the queue, plus per thread at most MAX_KEPT_CALLS kept CALL events.

REPLAY_INJECT_WRITER_DELAY (tests only) makes the writer sleep per chunk, so that it falls behind.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from itertools import compress
from operator import itemgetter
from typing import Any

from replay.config import injected_writer_delay
from replay.events import (
    CALL,
    EXCEPTION_KINDS,
    EXTERNAL,
    GAP,
    HANDLED,
    LINE,
    RAISE,
    RESUME,
    RETURN,
    THROW,
    UNWIND,
    YIELD,
)
from replay.recorder.state import BATCH_EVENTS, RecordingState
from replay.storage import ChunkWrite, RecordingWriter
from replay.storage.codec import (
    CALL_FIELDS,
    CALL_RECORD,
    EVENTS_LEVEL,
    FAST_EVENTS_LEVEL,
    CallRecords,
    EventChunks,
    compress_blob,
)

FLUSH_INTERVAL = 0.5
BEHIND_LISTS = 4
"""Handed-off lists found waiting at one write from which the writer counts as behind the
program, and compresses that write's chunks at `codec.FAST_EVENTS_LEVEL` rather than
`EVENTS_LEVEL`: a program producing events faster than the writer stores them waits for it at
the backlog bound (MAX_PENDING_BATCHES, 8), so there the writer's speed is the program's. A
program with pauses (a service between requests, a test run) keeps the smaller chunks."""

MERGED_CHUNK_EVENTS = 4 * BATCH_EVENTS
"""The most events in one chunk. When the writer is behind (BEHIND_LISTS), a thread's full
lists waiting together are joined into chunks of up to this many events: stores 5-26% smaller
(zstd's window and marshal's shared values reach four times as many events) and fewer rows and
compressor calls per write; the engine decodes up to four times as much per jump into such a
chunk. A program with pauses keeps chunks of one list."""

CallRow = list[Any]
"""A call's row in `codec.CALL_FIELDS` order, updated in place while the call runs."""
# Positions in a CallRow.
_DEPTH, _LAST_STEP, _EXCEPTION, _GENERATOR = (
    CALL_FIELDS.index(name) for name in ("depth", "last_step", "exception", "generator")
)

_EXCEPTION_KIND_NAMES = {RAISE: "raise", HANDLED: "handled", UNWIND: "unwind", THROW: "throw"}
_INDEXED_KINDS = bytes(kind not in (LINE, EXTERNAL, GAP, YIELD, RESUME) for kind in range(256))
"""`bytes.translate` table: 1 for the event kinds `IndexBuilder.scan` looks at one by one (most
events are LINE and EXTERNAL steps, which no index row needs)."""
_SWITCH_KINDS = bytes(kind in (YIELD, RESUME) for kind in range(256))
"""1 for YIELD and RESUME: all a call's row needs of them is the last one (generator code has
one in three events of this kind)."""
_kind_of = itemgetter(0)
_SCANNED_KINDS = bytes(kind for kind in range(256) if kind not in (LINE, EXTERNAL, GAP))
"""The kinds `IndexBuilder.scan` reads: a C core's event buffer gives it only these events."""

try:  # the scan loop in C (replay/recorder/_scan.c): same rows, built by pip install if it can
    from replay.recorder import _scan
except ImportError:  # pragma: no cover - no compiler at install time
    _scan = None
# _scan.c numbers the kinds and row fields as replay.events and codec.CALL_FIELDS do today.
if (CALL, RETURN, RAISE, HANDLED, UNWIND, YIELD, RESUME, THROW) != (0, 2, 3, 4, 5, 6, 7, 8) or (
    _DEPTH,
    _LAST_STEP,
    _EXCEPTION,
    _GENERATOR,
    len(CALL_FIELDS),
) != (4, 6, 7, 8, 9):  # pragma: no cover - a renumbering must update _scan.c first
    _scan = None
C_SCAN = _scan is not None
"""Whether the writer derives index rows with the C loop (`replay --version` says)."""
RECORDS = C_SCAN and CALL_RECORD.size == 64
"""Whether the C loop hands the calls that begin and end in a batch as packed records
(`CallRecords`, whose CALL_RECORD layout _scan.c writes) rather than rows."""


class IndexBuilder:
    """Derives the index rows of a recording from its events, one batch at a time.

    A call is reported in one of two ways (see `Store.add_batch`): a call that starts and ends
    within one write (`begin_write` to the next) is *ended*, a complete row written once into
    a compressed call block; any other is *touched*, a row upserted now and again later. Most
    calls are short, so most go to blocks (1-2 bytes each instead of about 70 as a row).

    A call's row is a list in `codec.CALL_FIELDS` order while the call runs (`CallRow`): the
    writer thread shares the GIL with the traced program, and a list is cheaper to build and
    update than a 9-key dict, holds the call's depth (no separate map of depths), and becomes
    the tuple `Store.add_batch` takes for an ended call with one C call.
    """

    def __init__(self) -> None:
        self.open_calls: dict[int, CallRow] = {}
        """call_id -> row of the calls running (their depth is the row's)."""
        self.fresh: set[int] = set()
        """Calls whose CALL event is in the current write."""
        self.thread_rows: dict[int, dict[str, Any]] = {}
        self.last_step = 0
        self.last_unwind: dict[int, tuple[int, int, int]] = {}
        """thread_id -> (step, call_id, line) of its latest UNWIND (an uncaught exception's
        outermost frame)."""

    def begin_write(self) -> None:
        """Start a new write: calls started before it can no longer be reported as ended."""
        self.fresh.clear()

    def scan(
        self, thread_id: int, events: list[tuple], records: bytearray | None = None
    ) -> tuple[list[CallRow], list[tuple], list[dict[str, Any]]]:
        """Calls touched, calls ended and exceptions raised in one thread's batch.

        With `records` (and the C loop, on a C core's buffer), the calls that begin and end in
        the batch, most of them, are appended to it as `codec.CALL_RECORD` records and not
        returned as ended rows: no row, dict entry or tuple is made for them.

        Calls are full rows in `codec.CALL_FIELDS` order: touched ones are the live lists
        (a later batch of the same write may change them again: the writer turns them into
        dicts once the write's batches are scanned), ended ones are tuples (for
        `Store.add_batch`'s `ended_calls`). An ended call may have been touched by an earlier
        batch of the same write (the writer then drops that row).
        """
        touched: dict[int, CallRow] = {}
        ended: list[CallRow] = []
        # The C loop reads a C core's event buffer in place, record by record.
        found = (
            None
            if _scan is None
            else _scan.scan_calls(
                events, thread_id, self.open_calls, self.fresh, touched, ended, records
            )
        )
        if found is None:
            # A buffer makes tuples of the events rows need only, without their changes (no
            # row reads them).
            scanned = events if type(events) is list else events.select(_SCANNED_KINDS, False)
            found = self._scan_events(scanned, thread_id, touched, ended)
        switches, raised = found
        exceptions = [self._exception(thread_id, event) for event in raised]
        self._switched(switches, touched, ended)
        if events:
            self._note_thread(thread_id, events[0][1], events[-1][1])
        return list(touched.values()), list(map(tuple, ended)), exceptions

    def _scan_events(
        self,
        events: list[tuple],
        thread_id: int,
        touched: dict[int, CallRow],
        ended: list[CallRow],
    ) -> tuple[dict[int, int], list[tuple]]:
        """`scan`'s loop in Python (`_scan.scan_calls` in C): files the rows of the calls the
        events start, end or switch; returns call id -> step of its last YIELD or RESUME, and
        the RAISE, HANDLED, UNWIND and THROW events in order."""
        open_calls = self.open_calls
        fresh = self.fresh
        raised: list[tuple] = []
        # Calls of this write started or changed in this batch: touched if they still run at
        # its end (most do not), which saves a dict insert and pop per call.
        started: list[CallRow] = []
        one_by_one, switches = _split(events)
        # The hot loop of the writer (a third of all events are CALL or RETURN): a CALL and a
        # RETURN take their own short branches.
        for event in one_by_one:
            kind, step, _ts, call_id, _line, payload, _changes, _deleted = event
            if kind == CALL:
                code_id, parent = payload
                caller = open_calls.get(parent)
                row = [
                    call_id,
                    parent or None,
                    code_id,
                    thread_id,
                    0 if caller is None else caller[_DEPTH] + 1,
                    step,
                    None,
                    False,
                    False,
                ]
                open_calls[call_id] = row
                started.append(row)
                fresh.add(call_id)
                continue
            if kind == RETURN:  # the call is over (nothing else to do for a RETURN)
                row = open_calls.pop(call_id, None)
                if row is not None:
                    row[_LAST_STEP] = step
                    if call_id in fresh:
                        ended.append(row)
                    else:
                        touched[call_id] = row
                continue
            row = open_calls.get(call_id)
            if row is not None:
                if kind in (YIELD, RESUME, THROW):
                    row[_GENERATOR] = True
                    row[_LAST_STEP] = step
                    if call_id in fresh:  # touched only if it still runs at the end
                        started.append(row)
                    else:
                        touched[call_id] = row
                elif kind == UNWIND:  # the call is over
                    row[_LAST_STEP] = step
                    row[_EXCEPTION] = True
                    if call_id in fresh:
                        ended.append(row)
                    else:
                        touched[call_id] = row
                    del open_calls[call_id]
            if kind in EXCEPTION_KINDS:
                raised.append(event)
        for row in started:
            if open_calls.get(row[0]) is row:
                touched[row[0]] = row
        return switches, raised

    def _exception(self, thread_id: int, event: tuple) -> dict[str, Any]:
        """The `exceptions` row of a RAISE, HANDLED, UNWIND or THROW event."""
        kind, step, _ts, call_id, line, payload, _changes, _deleted = event
        type_name, message, _venc = payload
        if kind == UNWIND:
            self.last_unwind[thread_id] = (step, call_id, line)
        return {
            "step": step,
            "thread_id": thread_id,
            "call_id": call_id,
            "kind": _EXCEPTION_KIND_NAMES[kind],
            "type": type_name,
            "message": message,
            "line": line,
        }

    def _switched(
        self, switches: dict[int, int], touched: dict[int, CallRow], ended: list[CallRow]
    ) -> None:
        """Apply each call's last YIELD or RESUME of the batch (its events are in step order).

        A call of the batch that is not running any more is over since: its row is `touched`
        (started in an earlier write) or `ended`, and has its last step already.
        """
        open_calls = self.open_calls
        over: dict[int, CallRow] | None = None
        for call_id, step in switches.items():
            row = open_calls.get(call_id)
            if row is not None:
                row[_GENERATOR] = True
                row[_LAST_STEP] = max(step, row[_LAST_STEP] or step)
                touched[call_id] = row
                continue
            if over is None:
                over = {row[0]: row for row in ended}
                over.update(touched)
            row = over.get(call_id)
            if row is not None:
                row[_GENERATOR] = True

    def _note_thread(self, thread_id: int, first: int, last: int) -> None:
        """Keep the thread's first and last step for its `threads` row."""
        self.last_step = max(self.last_step, last)
        row = self.thread_rows.get(thread_id)
        if row is None:
            row = self.thread_rows[thread_id] = {"thread_id": thread_id, "first_step": first}
        row["last_step"] = max(last, row.get("last_step") or 0)


def _packed(records: bytearray | None, ended: list[tuple]) -> CallRecords | list[tuple]:
    """A write's ended calls for `Store.add_batch`: the scan's records with the rows packed
    after them (`CallRecords`), or tuples where there are no records or a row does not
    fit one (then every call is a tuple, the records' too)."""
    if records is None:
        return ended  # tuples: the fast path of add_batch without records
    if ended and not _scan.pack_rows(records, ended):
        return [*CallRecords(records).rows(), *ended]
    return CallRecords(records)


def _merge_runs(
    batches: list[tuple[int, list[tuple]]], limit: int
) -> list[tuple[int, list[tuple]]]:
    """`batches` with each run of one thread's full lists (BATCH_EVENTS events), adjacent in
    step order, joined into lists of at most `limit` events.

    Only full lists: a list handed off sooner holds big values (the C cores hand off early by
    value nodes), and stays a chunk of its own so that a decoded chunk's memory stays what the
    engine's cache assumes. The writer owns the lists: the first of a run is extended (a C
    core's buffer takes the other's records as they are, `absorb`, leaving it empty).
    """
    merged: list[tuple[int, list[tuple]]] = []
    for thread_id, events in batches:
        if merged and len(events) == BATCH_EVENTS:
            last_thread, joined = merged[-1]
            size = len(joined)
            if last_thread == thread_id and size % BATCH_EVENTS == 0 and size < limit:
                absorb = getattr(joined, "absorb", None)
                if absorb is not None and type(events) is type(joined):
                    absorb(events)
                else:
                    joined.extend(events)
                continue
        merged.append((thread_id, events))
    return merged


def _split(events: list[tuple]) -> tuple[Iterable[tuple], dict[int, int]]:
    """The events `scan` looks at one by one, and call id -> step of its last YIELD or RESUME.

    Picked at C speed; if a kind is odd (not a small int), every event goes one by one.
    """
    try:
        kinds = bytes(map(_kind_of, events))
    except (TypeError, ValueError, IndexError):
        return events, {}
    switches = kinds.translate(_SWITCH_KINDS)
    last = {e[3]: e[1] for e in compress(events, switches)} if 1 in switches else {}
    return compress(events, kinds.translate(_INDEXED_KINDS)), last


class Writer:
    """Owns the store connection of one recording and the thread that fills it."""

    def __init__(
        self,
        store: RecordingWriter,
        recording_id: int,
        state: RecordingState,
        *,
        on_backlog: str = "block",
    ) -> None:
        self.store = store
        self.recording_id = recording_id
        self.state = state
        self.index = IndexBuilder()
        self.files: dict[str, int] = {}
        self.events_written = 0
        self.bytes_written = 0
        self.events_dropped = 0
        """Events the `drop` policy dropped and the writer has replaced by GAP events."""
        self.error: str | None = None
        self.busy = False
        """True while the writer collects and writes (the `drop` policy drops only then)."""
        self.behind = False
        """Whether the last write found the writer behind the program (BEHIND_LISTS)."""
        self.cpu_ns = 0
        """CPU time spent writing so far, in ns (`--max-overhead` counts it as the recorder's:
        budget.py). It includes compression, which runs without the GIL: an upper bound on what
        writing takes from the program."""
        self._wake = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="replay-writer", daemon=True)
        self._delay = injected_writer_delay()
        self._backlog = self._install_backlog(on_backlog)
        state.wake_writer = self._wake.set

    def _install_backlog(self, policy: str) -> DropBacklog | None:
        """Set `state.on_backlog` for `--on-backlog` (see the module docstring)."""
        state, wake = self.state, self._wake
        if policy == "drop":
            backlog = DropBacklog(state, wake, lambda: self.busy)
            state.on_backlog = backlog
            return backlog
        if policy != "block":
            raise ValueError(f"unknown backlog policy {policy!r}")
        state.on_backlog = lambda: wait_for_writer(state, wake)
        return None

    def start(self) -> None:
        self._thread.start()

    def pause(self) -> None:
        """Write what is buffered and end the thread, so that no extra thread exists.

        Called just before os.fork(): CPython 3.12+ warns ("This process is multi-threaded,
        use of fork() may lead to deadlocks") when other OS threads exist at a fork, and that
        warning must not appear because the program is being recorded.
        """
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        with self._lock:
            self._write_pending()

    def resume(self) -> None:
        """Start a new writer thread after `pause` (in the parent, after the fork)."""
        self._stopping = False
        self._wake.clear()
        self._thread = threading.Thread(target=self._run, name="replay-writer", daemon=True)
        self._thread.start()

    def flush(self) -> None:
        """Write everything buffered so far, now, from the calling thread."""
        with self._lock:
            self._write_pending()

    def stop(self) -> None:
        """Stop the thread after a last complete flush (call after the core is uninstalled)."""
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        with self._lock:
            self._write_pending(final=True)

    def _run(self) -> None:
        tell = self.state.set_writer_thread
        if tell is not None:
            tell(threading.get_ident())
        try:
            while not self._stopping:
                woken = self._wake.wait(FLUSH_INTERVAL)
                self._wake.clear()
                if self._stopping:
                    break
                with self._lock:
                    self._write_pending(early=woken)
        finally:
            if tell is not None:
                tell(0)

    def _collect(self, final: bool = False, early: bool = False) -> list[tuple[int, list[tuple]]]:
        """Handed-off lists, GAPs for dropped ones, then each thread's partial list.

        Under `drop`, with the policy's lock held: a dropped run must be written before any
        later event of its thread (the index rows are built in write order), and the traced
        threads take that lock only on the drop path, never while the writer writes.
        """
        backlog = self._backlog
        if backlog is None:
            batches = self._full_groups() if early else None
            return batches or self._gather(final, [])
        locked = backlog.acquire()
        try:
            # Partial lists are taken after the runs: a run holds only events older than them.
            return self._gather(final, backlog.take())
        finally:
            if locked:
                backlog.release()

    def _full_groups(self) -> list[tuple[int, list[tuple]]]:
        """A write between ticks (the traced threads woke the writer: WAKE_WRITER_LISTS): the
        oldest handed-off lists, by groups of BEHIND_LISTS, which join into whole chunks of
        MERGED_CHUNK_EVENTS; the rest and the threads' partial lists wait for the next write.
        Taking them all made a chunk of every list left over (a store 4-6% bigger)."""
        handoff = self.state.handoff
        take = len(handoff) // BEHIND_LISTS * BEHIND_LISTS
        batches = [handoff.popleft() for _ in range(take)]
        self.behind = bool(batches)
        batches.sort(key=lambda batch: batch[1][0][1])
        return batches

    def _gather(
        self, final: bool, runs: list[tuple[int, list[tuple], int]]
    ) -> list[tuple[int, list[tuple]]]:
        state = self.state
        batches: list[tuple[int, list[tuple]]] = []
        handoff = state.handoff
        while handoff:
            batches.append(handoff.popleft())
        self.behind = len(batches) + len(runs) >= BEHIND_LISTS
        for thread_id, events, dropped in runs:
            batches.append((thread_id, events))
            self.events_dropped += dropped
        # A recording of object records cuts a live thread's list only where that thread is
        # between events (versions.py): a cut here could fall between an event's records and
        # its append. The C cores know when a thread is between two callbacks, and its list
        # is then taken as a hand-off would take it; else the thread is asked to hand its list
        # off at its next event.
        live = set(sys._current_frames()) if state.versions is not None and not final else ()
        take_idle = state.take_idle_list
        for ts in list(state.threads):
            events = ts.events
            n = len(events)
            if n and ts.ident in live:
                taken = take_idle(ts) if take_idle is not None else None
                if taken is not None:
                    batches.append((ts.thread_id, taken))
                    continue
                ts.request_cut()
                continue
            pending = None if final else ts.unnamed
            if pending:
                # Steps that may still be redacted stay with the thread (see note_unnamed).
                first = pending[0][0]
                while n and events[n - 1][1] >= first:
                    n -= 1
            if n:
                taken = events[:n]
                del events[:n]
                batches.append((ts.thread_id, taken))
        while handoff:  # queued meanwhile, maybe older than a partial list: sorted below
            batches.append(handoff.popleft())
        batches = [(tid, evs) for tid, evs in batches if evs]
        batches.sort(key=lambda batch: batch[1][0][1])
        return batches

    def _write_pending(self, final: bool = False, early: bool = False) -> None:
        if self.error is not None:
            self._discard()
            return
        self.busy = True
        started = time.thread_time_ns()
        try:
            batches = self._collect(final, early)
            if self._delay and batches:
                time.sleep(self._delay * len(batches))  # test hook: a slow disk
            self._write(batches)
        except Exception as exc:  # the store failed (disk full, locked for 30 s...)
            self.error = f"{type(exc).__name__}: {exc}"
            self.state.fault(exc)
        finally:
            self.busy = False
            self.cpu_ns += time.thread_time_ns() - started

    def _discard(self) -> None:
        """After a store failure, keep memory bounded: drop what cannot be written."""
        state = self.state
        state.handoff.clear()
        if self._backlog is not None:
            self._backlog.take()
        for ts in list(state.threads):
            del ts.events[: len(ts.events)]

    def _write(self, batches: list[tuple[int, list[tuple]]]) -> None:
        state = self.state
        chunks: list[ChunkWrite] = []
        calls: dict[int, CallRow] = {}
        ended_calls: list[tuple] = []
        records = bytearray() if RECORDS else None
        exceptions: list[dict[str, Any]] = []
        level = EVENTS_LEVEL
        if self.behind:
            level = FAST_EVENTS_LEVEL
            batches = _merge_runs(batches, MERGED_CHUNK_EVENTS)
        self.index.begin_write()
        for thread_id, events in batches:
            try:
                touched, ended, raised = self.index.scan(thread_id, events, records)
            except Exception as exc:  # a malformed event: keep the chunk, count the fault
                state.fault(exc)
                touched, ended, raised = [], [], []
            for row in touched:
                calls[row[0]] = row
            if calls:
                for call in ended:
                    calls.pop(call[0], None)
            ended_calls.extend(ended)
            exceptions.extend(raised)
        # All chunks at once, made by the store: their values are written and compressed
        # without the GIL in one go, with the store's statements where it can (codec).
        pending = EventChunks([events for _, events in batches], level)
        for index, (thread_id, events) in enumerate(batches):
            self.events_written += len(events)
            chunks.append(
                ChunkWrite(
                    thread_id=thread_id,
                    seq=events[0][1],
                    first_step=events[0][1],
                    last_step=events[-1][1],
                    n_events=len(events),
                    data=pending.chunk(index),
                )
            )
        functions, files = self._new_code_rows()
        threads = self._thread_rows()
        state.prune_threads()  # after the rows: an exited thread's last row is still written
        if not (chunks or functions or files or threads):
            return
        self.store.add_batch(
            self.recording_id,
            chunks=chunks,
            functions=functions,
            files=files,
            threads=threads,
            # Rows as they are once every batch is scanned (a later batch may change a row).
            calls=[dict(zip(CALL_FIELDS, row, strict=True)) for row in calls.values()],
            ended_calls=_packed(records, ended_calls),
            exceptions=exceptions,
            # In the same transaction, so after a SIGKILL the row agrees with the chunks.
            recording={
                "steps": self.index.last_step,
                "events_dropped": self.events_dropped,
                "tracer_faults": state.faults,
                "fault_message": state.last_fault or None,
            },
        )
        self.bytes_written += sum(pending.sizes or ())

    def _new_code_rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        functions: list[dict[str, Any]] = []
        files: list[dict[str, Any]] = []
        new_codes = self.state.new_codes
        while new_codes:
            info = new_codes.popleft()
            file_id = self.files.get(info.filename)
            if file_id is None:
                file_id = self.files[info.filename] = len(self.files) + 1
                files.append(_file_row(file_id, info.filename))
            functions.append(
                {
                    "function_id": info.code_id,
                    "file_id": file_id,
                    "name": info.name,
                    "qualname": info.qualname,
                    "firstlineno": info.firstlineno,
                }
            )
        return functions, files

    def _thread_rows(self) -> list[dict[str, Any]]:
        rows = []
        for ts in list(self.state.threads):
            row = self.index.thread_rows.get(ts.thread_id)
            if row is None:
                continue
            rows.append(
                {
                    "thread_id": ts.thread_id,
                    "ident": ts.ident,
                    "name": ts.name,
                    "first_step": row["first_step"],
                    "last_step": row["last_step"],
                }
            )
        return rows


@functools.cache
def _sha256() -> Callable[[bytes], Any]:
    """sha256, from CPython's own module where it has one (`_sha2` on 3.12+, `_sha256` on 3.11).

    Not `hashlib`: it loads OpenSSL as it is imported (3 ms of a start on this machine), and a
    short program's files are hashed at its exit, by the thread that runs the program's exit.
    CPython's own sha256 is slower on big inputs, but source files are small.
    """
    for name in ("_sha2", "_sha256"):
        try:
            return importlib.import_module(name).sha256  # type: ignore[no-any-return]
        except ImportError:
            continue
    import hashlib  # noqa: PLC0415 - a Python built without its own sha256

    return hashlib.sha256


def _file_row(file_id: int, filename: str) -> dict[str, Any]:
    """A `files` row with the file's source, read now so the trace travels without the code."""
    source: bytes | None
    try:
        with open(filename, "rb") as handle:
            source = handle.read()
    except OSError:
        source = None
    return {
        "file_id": file_id,
        "path": os.path.abspath(filename) if not filename.startswith("<") else filename,
        "sha256": _sha256()(source).hexdigest() if source is not None else None,
        "size": len(source) if source is not None else None,
        "source": compress_blob(source) if source is not None else None,
    }


# -- the backlog policies (--on-backlog) ---------------------------------------------------------


def wait_for_writer(state: RecordingState, wake: threading.Event) -> None:
    """`block`: keep a traced thread waiting while the writer is too far behind (the memory bound).

    Up to 10 s at a time: a writer stuck longer (a disk stalled) lets the program go on, and the
    queue grows past the bound until the writer catches up or fails (then it is discarded).
    """
    deadline = time.monotonic() + 10
    while len(state.handoff) > state.max_pending and time.monotonic() < deadline:
        wake.set()
        time.sleep(0.002)


GAP_REASON_BACKLOG = "backlog"
"""The reason of the GAP events the `drop` policy writes (payload `(reason, detail)`)."""
MAX_KEPT_CALLS = 4096
"""Per dropped run, CALL events kept for frames that started in it and still run at its end.
Past it, such CALLs are dropped as well (readers then see those frames as unknown)."""
_SHAPE_KINDS = frozenset({CALL, RETURN, UNWIND})
_SHAPE_KIND_BYTES = bytes(sorted(_SHAPE_KINDS))
"""The same kinds, as an event buffer's `select` takes them."""


class _Run:
    """Consecutive dropped lists of one thread, reduced to what will stand in for them."""

    __slots__ = ("dropped", "first", "head", "last", "opened")

    def __init__(self) -> None:
        self.dropped = 0
        """Events of the run that will not be written."""
        self.last = 0
        """The step of the run's last event."""
        self.first: tuple | None = None
        """The run's first event not kept when it was absorbed."""
        self.head: list[tuple] = []
        """Kept CALL events that came before `first` (one of them may be dropped later)."""
        self.opened: dict[int, tuple] = {}
        """call_id -> CALL event of frames that started in the run and have not ended."""

    def absorb(self, events: list[tuple]) -> None:
        """Take one more list (the next of this thread): O(its length), on the traced thread.

        A C core's event buffer is read without a tuple per event: `select` makes those of
        the kinds that shape the stack, and the head is read up to its first event that is
        not a kept CALL. So a kept CALL is told by its step (each event has its own), not by
        identity: a buffer makes a new tuple each time an event is read.
        """
        if not events:  # emptied by the writer taking it as a partial list meanwhile
            return
        opened = self.opened
        self.dropped += len(events)
        self.last = events[-1][1]
        if type(events) is list:
            shaping = [e for e in events if e[0] in _SHAPE_KINDS]
        else:
            shaping = events.select(_SHAPE_KIND_BYTES)
        for event in shaping:
            if event[0] == CALL:
                if len(opened) < MAX_KEPT_CALLS:
                    opened[event[3]] = event
                    self.dropped -= 1
            elif opened.pop(event[3], None) is not None:
                self.dropped += 1  # the frame ended within the run: its CALL is dropped too
        if self.first is None:
            for event in events:
                kept = opened.get(event[3]) if event[0] == CALL else None
                if kept is None or kept[1] != event[1]:
                    self.first = event
                    break
                self.head.append(kept)  # the kept tuple itself: stand_in checks identity

    def stand_in(self) -> tuple[list[tuple], int]:
        """The events written in the run's place (kept CALLs and one GAP), and the count dropped.

        The GAP takes the step and time of the first dropped event, and the frame that was
        running there: that event's frame, or for a dropped CALL its caller (line 0: unknown).
        """
        opened = self.opened
        kept = list(opened.values())  # in step order: dicts keep insertion order
        start = next((e for e in self.head if opened.get(e[3]) is not e), self.first)
        if start is None or not self.dropped:
            return kept, 0
        if start[0] == CALL:
            call_id, line = start[5][1], 0
        else:
            call_id, line = start[3], start[4]
        detail = f"{self.dropped:,} events dropped: the writer fell behind"
        gap = (GAP, start[1], start[2], call_id, line, (GAP_REASON_BACKLOG, detail), None, None)
        at = len(kept)
        while at and kept[at - 1][1] > start[1]:
            at -= 1
        kept.insert(at, gap)
        return kept, self.dropped


class DropBacklog:
    """`--on-backlog drop`, installed as `state.on_backlog`: drop rather than wait.

    Called by a traced thread once the queue is past half the bound (it lowers
    `state.max_pending` to that): it wakes the writer then, so that the writer, which needs
    the GIL the program does not give up, starts early (measured: fewer drops, a lower peak).
    Past the bound, when the writer is idle (between ticks) it lets the queue grow up to twice
    the bound, since the writer is about to take it all. When the writer is busy writing, or
    past twice the bound, it takes the newest lists off the queue until the queue is within
    the bound and folds each into its thread's current run. The writer takes the runs with
    the queue (`take`).

    Per thread, a run holds consecutive lists, oldest first: the excess is popped newest
    first and folded in in the opposite order, and a run is closed as soon as a newer list of
    its thread is found still queued (the next dropped list then starts another run).
    """

    def __init__(
        self, state: RecordingState, wake: threading.Event, writer_busy: Callable[[], bool]
    ) -> None:
        self.state = state
        self.wake = wake
        self.writer_busy = writer_busy
        self.bound = state.max_pending
        """The memory bound: lists the writer may be behind by before lists are dropped."""
        state.max_pending = self.bound // 2  # called from half the bound on, to wake the writer
        self.lock = threading.Lock()
        """Taken by traced threads only past the bound, and by the writer only while it takes
        lists (in memory); never while it writes."""
        self._holder = 0
        self._open: dict[int, _Run] = {}
        self._closed: list[tuple[int, _Run]] = []

    def __call__(self) -> None:
        self.wake.set()
        handoff = self.state.handoff
        bound = self.bound
        dropping = len(handoff) > bound and (self.writer_busy() or len(handoff) > 2 * bound)
        if not dropping and not self._open:
            return  # the writer is woken; nothing to drop, no run to close
        with self.lock:
            self._holder = threading.get_ident()
            try:
                excess: list[tuple[int, list[tuple]]] = []
                while dropping and len(handoff) > bound:
                    try:
                        excess.append(handoff.pop())
                    except IndexError:  # the writer emptied it meanwhile
                        break
                self._close_interrupted_runs(list(handoff))
                for thread_id, events in reversed(excess):
                    run = self._open.get(thread_id)
                    if run is None:
                        run = self._open[thread_id] = _Run()
                    run.absorb(events)
            finally:
                self._holder = 0

    def _close_interrupted_runs(self, queued: list[tuple[int, list[tuple]]]) -> None:
        """Close the runs that a list of their thread, queued after them, has ended."""
        for thread_id, run in list(self._open.items()):
            if any(tid == thread_id and evs and evs[0][1] > run.last for tid, evs in queued):
                self._closed.append((thread_id, run))
                del self._open[thread_id]

    def acquire(self) -> bool:
        """The lock, for the writer; False when it cannot be had (then go on without it).

        The writer's collect may run on a traced thread (a flush from a signal handler) that
        was interrupted inside `__call__`: waiting for itself would never end.
        """
        if self._holder == threading.get_ident():
            return False
        return self.lock.acquire(timeout=1.0)

    def release(self) -> None:
        self.lock.release()

    def take(self) -> list[tuple[int, list[tuple], int]]:
        """Every run so far as (thread_id, events standing in for it, events dropped)."""
        runs = [*self._closed, *self._open.items()]
        self._closed = []
        self._open = {}
        taken = []
        for thread_id, run in runs:
            events, dropped = run.stand_in()
            if events:
                taken.append((thread_id, events, dropped))
        return taken
