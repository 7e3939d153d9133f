"""Reading a recording back: its steps in recorded order, frame locals, the call tree.

This is the one place that unpacks the event tuples the recorder packs (layout in
docs/internals.md and replay/events.py), for `export`, `show` and the engine. It streams:
chunks are read one at a time per thread and merged by step number, so a long recording is
never loaded whole.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from replay.config import DEFAULT_MAX_DEPTH
from replay.events import (
    CALL,
    F_CALL,
    F_LINE,
    F_STEP,
    FORMAT_RECORDS,
    KIND_NAMES,
    RETURN,
    UNWIND,
)
from replay.exceptions import NoRecordingError, StoreError
from replay.object_records import ExpansionLimits, expand_events
from replay.storage import Store


@dataclass(frozen=True, slots=True)
class Step:
    """One recorded event, with its call's function and file resolved."""

    step: int
    thread: int
    call: int
    kind: str
    file: str
    line: int
    function: str
    changes: dict[str, Any]
    """name -> venc of locals bound or rebound since the frame's previous event."""
    deleted: tuple[str, ...]
    payload: Any
    """Kind-specific, still encoded (see docs/internals.md)."""
    time_ns: int


@dataclass(slots=True)
class CallNode:
    """A call in the call tree."""

    call_id: int
    function: str
    file: str
    line: int
    first_step: int
    last_step: int | None
    exception: bool
    thread: int
    children: list[CallNode] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FrameView:
    """A frame at one step: where it is and its locals as recorded (encoded values)."""

    call_id: int
    function: str
    file: str
    line: int
    step: int
    locals: dict[str, Any]


def resolve_recording(store: Store, rec: str | int | None) -> int:
    """A recording id from what a user typed: an id, `latest`/None, or `-N` (N-th from the end)."""
    if rec is None or rec == "latest":
        latest = store.latest_recording_id()
        if latest is None:
            raise NoRecordingError(f"{store.path} has no recordings yet")
        return latest
    text = str(rec).strip()
    try:
        number = int(text)
    except ValueError:
        raise NoRecordingError(
            f"{text!r} is not a recording: use an id from `replay ls`, `latest` or -N"
        ) from None
    if number < 0:
        ids = [row["id"] for row in store.recordings()]
        if -number > len(ids):
            raise NoRecordingError(f"{store.path} has only {len(ids)} recording(s)")
        return ids[number]
    store.recording(number)  # raises NoRecordingError with a sentence
    return number


def open_recording(store_path: str, rec: str | int | None = None) -> RecordingReader:
    """Open a store read-only and the recording `rec` in it."""
    store = Store.open(store_path, mode="r")
    try:
        return RecordingReader(store, resolve_recording(store, rec), owns_store=True)
    except BaseException:
        store.close()
        raise


class RecordingCatalog:
    """A recording's functions, files and stored sources: the names every reader shows."""

    def __init__(self, store: Store, recording_id: int) -> None:
        self.store = store
        self.recording_id = recording_id
        self.meta = store.recording(recording_id)
        self.files = store.files(recording_id)
        self.functions = store.functions(recording_id)
        self._limits: ExpansionLimits | None = None
        if self.meta.get("format_version") == FORMAT_RECORDS:
            try:
                self._limits = ExpansionLimits.of_config(self.meta.get("config") or {})
            except ValueError as exc:
                raise StoreError(f"recording {recording_id} cannot be read: {exc}") from None

    def read_chunk(self, chunk_id: int) -> list[tuple]:
        """A chunk's events, each value a tree (a recording of object records is expanded)."""
        events = self.store.read_chunk(chunk_id)
        if self._limits is None:
            return events
        return expand_events(events, self._limits)

    @property
    def capture_depth(self) -> int:
        """The depth to which the recording expanded values (`record --max-depth`)."""
        config = self.meta.get("config")
        depth = config.get("max_depth") if isinstance(config, dict) else None
        return depth if type(depth) is int and depth >= 0 else DEFAULT_MAX_DEPTH

    def function_name(self, function_id: int) -> str:
        row = self.functions.get(function_id)
        return (row.get("qualname") or row["name"]) if row else "?"

    def function_file(self, function_id: int) -> str:
        row = self.functions.get(function_id)
        if row is None:
            return "?"
        file_row = self.files.get(row["file_id"])
        return file_row["path"] if file_row else "?"

    def source_lines(self, path: str) -> list[str] | None:
        """The recorded source of a file, as lines, or None when it was not kept."""
        for file_id, row in self.files.items():
            if row["path"] == path:
                data = self.store.source(self.recording_id, file_id)
                return data.decode("utf-8", "replace").splitlines() if data is not None else None
        return None


class RecordingReader(RecordingCatalog):
    """Read access to one recording. Cheap to create; reads lazily."""

    def __init__(self, store: Store, recording_id: int, *, owns_store: bool = False) -> None:
        super().__init__(store, recording_id)
        self._owns_store = owns_store
        self._call_functions: dict[int, int] = {}

    def close(self) -> None:
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- steps ---------------------------------------------------------------------------

    def raw_events(self, thread_id: int | None = None) -> Iterator[tuple[int, tuple]]:
        """(thread_id, event) in step order, merged across threads; one chunk per thread at once."""
        index = self.store.chunk_index(self.recording_id, thread_id)
        per_thread: dict[int, list[Any]] = {}
        for info in index:
            per_thread.setdefault(info.thread_id, []).append(info)
        streams = [
            self._thread_events(tid, sorted(chunks, key=lambda c: c.first_step))
            for tid, chunks in per_thread.items()
        ]
        yield from heapq.merge(*streams, key=lambda item: item[1][F_STEP])

    def _thread_events(self, thread_id: int, chunks: list[Any]) -> Iterator[tuple[int, tuple]]:
        for info in chunks:
            for event in self.read_chunk(info.id):
                yield thread_id, event

    def steps(self, thread_id: int | None = None) -> Iterator[Step]:
        """Every recorded step, in recorded order."""
        for tid, event in self.raw_events(thread_id):
            yield self.make_step(tid, event)

    def make_step(self, thread_id: int, event: tuple) -> Step:
        """Resolve one raw event into a Step (tracks which call runs which function)."""
        kind, step, ts, call_id, line, payload, changes, deleted = event
        if kind == CALL:
            self._call_functions[call_id] = payload[0]
        function_id = self._call_functions.get(call_id)
        if function_id is None:
            row = self.store.call(self.recording_id, call_id)
            function_id = row["function_id"] if row else 0
            self._call_functions[call_id] = function_id
        return Step(
            step=step,
            thread=thread_id,
            call=call_id,
            kind=KIND_NAMES.get(kind, str(kind)),
            file=self.function_file(function_id),
            line=line,
            function=self.function_name(function_id),
            changes=dict(changes) if changes else {},
            deleted=tuple(deleted) if deleted else (),
            payload=payload,
            time_ns=ts,
        )

    # -- frames --------------------------------------------------------------------------

    def frame_locals(self, call_id: int, upto_step: int) -> tuple[dict[str, Any], int]:
        """Locals of a call as of `upto_step` (changes applied through that step), and its line."""
        call = self.store.call(self.recording_id, call_id)
        if call is None:
            return {}, 0
        values: dict[str, Any] = {}
        line = 0
        chunks = self.store.chunks_covering(
            self.recording_id, call["first_step"], upto_step, call["thread_id"]
        )
        for info in sorted(chunks, key=lambda c: c.first_step):
            for event in self.read_chunk(info.id):
                if event[F_STEP] > upto_step:
                    return values, line
                if event[F_CALL] != call_id:
                    continue
                changes, deleted = event[6], event[7]
                if changes:
                    values.update(changes)
                if deleted:
                    for name in deleted:
                        values.pop(name, None)
                line = event[F_LINE]
        return values, line

    def exception_path(self) -> list[FrameView]:
        """Frames the uncaught exception unwound, outermost first, with their locals then."""
        unwinds = self.store.exceptions(self.recording_id, kinds=["unwind"])
        last_step = self.meta.get("exception_step")
        if last_step is not None:
            unwinds = [row for row in unwinds if row["step"] <= last_step]
        if not unwinds:
            return []
        unwinds.sort(key=lambda row: row["step"])
        outermost = unwinds[-1]
        unwinds = [row for row in unwinds if row["thread_id"] == outermost["thread_id"]]
        calls = {
            row["call_id"]: self.store.call(self.recording_id, row["call_id"]) for row in unwinds
        }
        path = [outermost]
        while True:
            # The frame below is the latest earlier unwind whose call is a child of this one.
            current = path[-1]
            child = next(
                (
                    row
                    for row in reversed(unwinds)
                    if row["step"] < current["step"]
                    and (calls.get(row["call_id"]) or {}).get("parent_id") == current["call_id"]
                ),
                None,
            )
            if child is None:
                break
            path.append(child)
        frames = []
        for row in path:
            call = calls.get(row["call_id"])
            if call is None:
                continue
            values, _line = self.frame_locals(call["call_id"], row["step"])
            frames.append(
                FrameView(
                    call_id=call["call_id"],
                    function=self.function_name(call["function_id"]),
                    file=self.function_file(call["function_id"]),
                    line=row["line"] or 0,
                    step=row["step"],
                    locals=values,
                )
            )
        return frames

    # -- calls ---------------------------------------------------------------------------

    def call_tree(self, max_calls: int = 100_000) -> tuple[list[CallNode], int]:
        """Root calls with their children, from the first `max_calls` calls; and the total."""
        total = self.store.count_calls(self.recording_id)
        rows = self.store.calls(self.recording_id, limit=max_calls)
        nodes: dict[int, CallNode] = {}
        roots: list[CallNode] = []
        for row in rows:
            node = CallNode(
                call_id=row["call_id"],
                function=self.function_name(row["function_id"]),
                file=self.function_file(row["function_id"]),
                line=self.functions.get(row["function_id"], {}).get("firstlineno", 0),
                first_step=row["first_step"],
                last_step=row["last_step"],
                exception=bool(row["exception"]),
                thread=row["thread_id"],
            )
            nodes[node.call_id] = node
            parent = nodes.get(row["parent_id"]) if row["parent_id"] else None
            (parent.children if parent else roots).append(node)
        return roots, total

    def call_values(self) -> Iterator[tuple[int, dict[str, Any], Any, Any]]:
        """(call_id, args, return venc, exc) for every call, in the order calls end."""
        args: dict[int, dict[str, Any]] = {}
        for _tid, event in self.raw_events():
            kind, call_id = event[0], event[F_CALL]
            if kind == CALL:
                args[call_id] = dict(event[6]) if event[6] else {}
            elif kind == RETURN:
                yield call_id, args.pop(call_id, {}), event[5], None
            elif kind == UNWIND:
                yield call_id, args.pop(call_id, {}), None, event[5]
        for call_id, values in args.items():
            yield call_id, values, None, None
