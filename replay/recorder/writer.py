"""The writer thread: moves event lists from the traced threads into the store, off the hot path.

Every FLUSH_INTERVAL seconds (and when asked) it takes the lists the traced threads handed off,
plus whatever each thread has buffered since, derives the index rows (calls, exceptions,
functions, files, threads) from the events, encodes each list as one zstd chunk and writes all
of it in one transaction. So a process killed with SIGKILL loses at most about one interval.

Taking a thread's partial list without a lock: the writer copies `events[:n]` and then deletes
`events[:n]`, two operations that are each atomic under the GIL and touch only the first n items.
Events the thread appends meanwhile stay in the list, and if the thread hands the list off at the
same moment, the writer later finds only the newer events in it: nothing is lost or doubled.
Chunks are ordered by their first step (a chunk's `seq` IS its first step), because a list handed
off just after a tick can be older than a partial list taken at that tick.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import Any

from replay.events import (
    CALL,
    EXCEPTION_KINDS,
    HANDLED,
    RAISE,
    RESUME,
    RETURN,
    THROW,
    UNWIND,
    YIELD,
)
from replay.recorder.state import RecordingState
from replay.storage import ChunkWrite, Store
from replay.storage.codec import compress_blob, encode_events

FLUSH_INTERVAL = 0.5

_EXCEPTION_KIND_NAMES = {RAISE: "raise", HANDLED: "handled", UNWIND: "unwind", THROW: "throw"}


class IndexBuilder:
    """Derives the index rows of a recording from its events, one batch at a time."""

    def __init__(self) -> None:
        self.open_calls: dict[int, dict[str, Any]] = {}
        self.depths: dict[int, int] = {}
        self.thread_rows: dict[int, dict[str, Any]] = {}
        self.last_step = 0
        self.last_unwind: dict[int, tuple[int, int, int]] = {}
        """thread_id -> (step, call_id, line) of its latest UNWIND (an uncaught exception's
        outermost frame)."""

    def scan(
        self, thread_id: int, events: list[tuple]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Calls touched and exceptions raised in one thread's batch (calls as full rows)."""
        touched: dict[int, dict[str, Any]] = {}
        exceptions: list[dict[str, Any]] = []
        open_calls = self.open_calls
        for event in events:
            kind, step, _ts, call_id, line, payload = event[:6]
            if kind == CALL:
                code_id, parent = payload
                depth = self.depths.get(parent, -1) + 1
                self.depths[call_id] = depth
                row = {
                    "call_id": call_id,
                    "parent_id": parent or None,
                    "function_id": code_id,
                    "thread_id": thread_id,
                    "depth": depth,
                    "first_step": step,
                    "last_step": None,
                    "exception": False,
                    "generator": False,
                }
                open_calls[call_id] = row
                touched[call_id] = row
                continue
            row = open_calls.get(call_id)
            if row is not None:
                if kind in (YIELD, RESUME, THROW):
                    row["generator"] = True
                    row["last_step"] = step
                    touched[call_id] = row
                elif kind in (RETURN, UNWIND):  # the call is over
                    row["last_step"] = step
                    row["exception"] = kind == UNWIND
                    touched[call_id] = row
                    del open_calls[call_id]
                    self.depths.pop(call_id, None)
            if kind in EXCEPTION_KINDS:
                type_name, message, _venc = payload
                exceptions.append(
                    {
                        "step": step,
                        "thread_id": thread_id,
                        "call_id": call_id,
                        "kind": _EXCEPTION_KIND_NAMES[kind],
                        "type": type_name,
                        "message": message,
                        "line": line,
                    }
                )
                if kind == UNWIND:
                    self.last_unwind[thread_id] = (step, call_id, line)
        if events:
            first, last = events[0][1], events[-1][1]
            self.last_step = max(self.last_step, last)
            row = self.thread_rows.get(thread_id)
            if row is None:
                self.thread_rows[thread_id] = {"thread_id": thread_id, "first_step": first}
            self.thread_rows[thread_id]["last_step"] = max(
                last, self.thread_rows[thread_id].get("last_step") or 0
            )
        return list(touched.values()), exceptions


class Writer:
    """Owns the store connection of one recording and the thread that fills it."""

    def __init__(self, store: Store, recording_id: int, state: RecordingState) -> None:
        self.store = store
        self.recording_id = recording_id
        self.state = state
        self.index = IndexBuilder()
        self.files: dict[str, int] = {}
        self.events_written = 0
        self.bytes_written = 0
        self.error: str | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="replay-writer", daemon=True)

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
        while not self._stopping:
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            if self._stopping:
                break
            with self._lock:
                self._write_pending()

    def _collect(self, final: bool = False) -> list[tuple[int, list[tuple]]]:
        """Handed-off lists, then each thread's partial list (see the module docstring)."""
        state = self.state
        batches: list[tuple[int, list[tuple]]] = []
        handoff = state.handoff
        while handoff:
            batches.append(handoff.popleft())
        for ts in list(state.threads):
            events = ts.events
            n = len(events)
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
        batches = [(tid, evs) for tid, evs in batches if evs]
        batches.sort(key=lambda batch: batch[1][0][1])
        return batches

    def _write_pending(self, final: bool = False) -> None:
        if self.error is not None:
            self._discard()
            return
        try:
            self._write(self._collect(final))
        except Exception as exc:  # the store failed (disk full, locked for 30 s...)
            self.error = f"{type(exc).__name__}: {exc}"
            self.state.fault(exc)

    def _discard(self) -> None:
        """After a store failure, keep memory bounded: drop what cannot be written."""
        state = self.state
        state.handoff.clear()
        for ts in list(state.threads):
            del ts.events[: len(ts.events)]

    def _write(self, batches: list[tuple[int, list[tuple]]]) -> None:
        state = self.state
        chunks: list[ChunkWrite] = []
        calls: dict[int, dict[str, Any]] = {}
        exceptions: list[dict[str, Any]] = []
        for thread_id, events in batches:
            try:
                touched, raised = self.index.scan(thread_id, events)
            except Exception as exc:  # a malformed event: keep the chunk, count the fault
                state.fault(exc)
                touched, raised = [], []
            for row in touched:
                calls[row["call_id"]] = row
            exceptions.extend(raised)
            data = encode_events(events)
            self.bytes_written += len(data)
            self.events_written += len(events)
            chunks.append(
                ChunkWrite(
                    thread_id=thread_id,
                    seq=events[0][1],
                    first_step=events[0][1],
                    last_step=events[-1][1],
                    n_events=len(events),
                    data=data,
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
            calls=list(calls.values()),
            exceptions=exceptions,
            # In the same transaction, so after a SIGKILL the row agrees with the chunks.
            recording={
                "steps": self.index.last_step,
                "tracer_faults": state.faults,
                "fault_message": state.last_fault or None,
            },
        )

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
        "sha256": hashlib.sha256(source).hexdigest() if source is not None else None,
        "size": len(source) if source is not None else None,
        "source": compress_blob(source) if source is not None else None,
    }


def wait_for_writer(state: RecordingState, wake: threading.Event) -> None:
    """Block a traced thread while the writer is too far behind (the memory bound)."""
    deadline = time.monotonic() + 10
    while len(state.handoff) > state.max_pending and time.monotonic() < deadline:
        wake.set()
        time.sleep(0.002)
