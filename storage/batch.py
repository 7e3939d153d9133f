"""One write of a recording's rows, prepared without a database: checks, defaults and blocks.

This module owns what `Store.add_batch` does before its transaction: the rows of each table
completed to one shape and checked against the table's columns, the ended calls and the
exceptions packed into compressed blocks (codec.py), sources compressed. It imports no
SQLAlchemy (the tables' columns come from `sqlite_text.py`, generated from schema.py), so that
the recorder's sqlite3 writer (`recording_writer.py`) and the SQLAlchemy `Store` prepare a
batch with the same code and write the same rows.
"""

from __future__ import annotations

import bisect
import json
import operator
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple

from replay.storage import codec
from replay.storage.sqlite_text import COLUMNS, REQUIRED

CALL_BLOCK_SPAN: Final = 16_384
"""No call block spans more call ids than this (last_call - first_call < CALL_BLOCK_SPAN): a
lookup by call id only looks at the blocks starting in the span below it."""
CALL_BLOCK_CALLS: Final = 1024
"""At most this many calls in a call block, so that looking one up decodes a tenth of a
millisecond's worth of columns (the writer may hand tens of thousands at once when it is behind)."""

JSON_COLUMNS: Final = ("argv", "config")
RECORDING_DEFAULTS: Final[Mapping[str, Any]] = {
    "status": "running",
    "steps": 0,
    "events_dropped": 0,
    "tracer_faults": 0,
}
CALL_DEFAULTS: Final[Mapping[str, Any]] = {"exception": False, "generator": False}
UPSERT_RULES: Final[Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "functions": ((), ()),
    "files": ((), ()),
    "checkpoints": ((), ()),
    "threads": (("ident", "name", "last_step"), ("first_step",)),
    "calls": (("last_step",), ()),
}
"""How each table's rows are upserted, in the order they are written: a row whose primary key
exists replaces the stored non-key columns, except the first columns named (kept when the new
value is NULL) and the second (kept unless the stored value is NULL)."""

CALL_KEYS: Final = ("recording_id", *codec.CALL_FIELDS)
"""The `calls` columns, in order: the fields of a call row as a tuple (`CallRow`)."""
_EXCEPTION_REQUIRED: Final = frozenset({"step", "thread_id", "call_id", "kind", "type"})
assert COLUMNS["calls"] == CALL_KEYS, "codec.CALL_FIELDS must follow the table"

_CALL_FIELD_SET: Final = frozenset(codec.CALL_FIELDS)
_call_fields: Final = operator.itemgetter(*codec.CALL_FIELDS)
# Fields of a call tuple (codec.CALL_FIELDS order), for the checks of `ended_calls_of`.
_last_of: Final = operator.itemgetter(codec.CALL_FIELDS.index("last_step"))
_exception_of: Final = operator.itemgetter(codec.CALL_FIELDS.index("exception"))
_generator_of: Final = operator.itemgetter(codec.CALL_FIELDS.index("generator"))
_first_item: Final = operator.itemgetter(0)
_THREAD, _FIRST, _LAST = (
    CALL_KEYS.index(name) for name in ("thread_id", "first_step", "last_step")
)

CallRow = tuple[Any, ...]
"""A call as a tuple of the `calls` columns: recording_id, then `codec.CALL_FIELDS`."""
_block_order: Final = operator.itemgetter(_FIRST - 1, 0)
"""The order of calls (`codec.CALL_FIELDS` tuples) in a block: by first_step, then call_id
(an itemgetter: a key function written in Python costs more than the sort)."""
_thread_of: Final = operator.itemgetter(_THREAD - 1)


class ChunkWrite(NamedTuple):
    """One chunk to store: `data` is `codec.encode_events(events)` of one thread's events, or
    a `codec.PendingChunk`, made by the store in the same transaction (the recorder's way)."""

    thread_id: int
    seq: int
    first_step: int
    last_step: int
    n_events: int
    data: bytes | codec.PendingChunk


def recording_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate recording columns and encode the JSON ones."""
    unknown = set(fields) - (set(COLUMNS["recordings"]) - {"id"})
    if unknown:
        raise TypeError(f"recordings have no settable column(s) {sorted(unknown)}")
    values = dict(fields)
    for name in JSON_COLUMNS:
        if values.get(name) is not None:
            values[name] = json.dumps(values[name])
    return values


def decode_recording(row: Mapping[str, Any]) -> dict[str, Any]:
    """A `recordings` row as the read API gives it: a dict, the JSON columns decoded."""
    values = dict(row)
    for name in JSON_COLUMNS:
        if values[name] is not None:
            values[name] = json.loads(values[name])
    return values


def table_rows(
    table: str,
    recording_id: int,
    given: Iterable[Mapping[str, Any]],
    defaults: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Complete row dicts so all share one shape (executemany needs it), checking columns."""
    defaults = defaults or {}
    template: dict[str, Any] = dict.fromkeys(COLUMNS[table]) | dict(defaults)
    required = set(REQUIRED[table]) - defaults.keys() - {"recording_id"}
    rows = []
    for row in given:
        unknown = row.keys() - template.keys()
        if unknown:
            raise TypeError(f"{table} rows have no column(s) {sorted(unknown)}")
        missing = required - row.keys()
        if missing:
            raise ValueError(f"{table} rows need column(s) {sorted(missing)}")
        rows.append({**template, **row, "recording_id": recording_id})
    return rows


def pack_source(source: bytes | str | None) -> bytes | None:
    """Compress a file's bytes for `files.source`; a blob already compressed is kept."""
    if source is None:
        return None
    if isinstance(source, str):
        source = source.encode("utf-8")
    if source.startswith(codec.ZSTD_FRAME_MAGIC):
        return source  # already made by codec.compress_blob (no Python source starts so)
    return codec.compress_blob(source)


class Batch(NamedTuple):
    """The rows of one `add_batch`, validated (and blocks encoded; a packed call block's
    compression may be left to the write: `make_blobs`) before the transaction.

    (NamedTuples, not dataclasses, here: the recorder writes through this module, and
    `dataclasses` imports `inspect`, about 10 ms of every recorded process's start.)"""

    chunks: list[dict[str, Any]]
    functions: list[dict[str, Any]]
    files: list[dict[str, Any]]
    threads: list[dict[str, Any]]
    calls: list[dict[str, Any]]
    call_blocks: list[dict[str, Any]]
    exception_blocks: list[dict[str, Any]]
    checkpoints: list[dict[str, Any]]

    @classmethod
    def prepare(
        cls,
        recording_id: int,
        *,
        chunks: Iterable[ChunkWrite],
        functions: Iterable[Mapping[str, Any]],
        files: Iterable[Mapping[str, Any]],
        threads: Iterable[Mapping[str, Any]],
        calls: Iterable[Mapping[str, Any]],
        ended_calls: Iterable[Mapping[str, Any] | tuple] | codec.CallRecords,
        exceptions: Iterable[Mapping[str, Any]],
        checkpoints: Iterable[Mapping[str, Any]],
    ) -> Batch:
        file_rows = table_rows("files", recording_id, files)
        for row in file_rows:
            row["source"] = pack_source(row["source"])
        ended = ended_calls_of(recording_id, ended_calls)
        return cls(
            chunks=[chunk_row(recording_id, chunk) for chunk in chunks],
            functions=table_rows("functions", recording_id, functions),
            files=file_rows,
            threads=table_rows("threads", recording_id, threads),
            calls=table_rows("calls", recording_id, calls, CALL_DEFAULTS),
            call_blocks=call_blocks_of(recording_id, ended, pending=True),
            exception_blocks=exception_blocks_of(recording_id, exceptions),
            checkpoints=table_rows("checkpoints", recording_id, checkpoints),
        )

    def pending_chunks(self) -> codec.EventChunks | None:
        """The chunks whose blobs this batch's chunk rows are still to get, if any."""
        pending = {id(row["data"].chunks): row["data"].chunks for row in self._pending_rows()}
        if len(pending) > 1:
            raise ValueError("a batch's pending chunks come from one EventChunks")
        return next(iter(pending.values()), None)

    def make_blobs(self) -> None:
        """Give each pending chunk row its blob (`EventChunks.blobs`), and each pending call
        block its compressed data (`codec.PendingBlob`)."""
        for row in self._pending_rows():
            pending = row["data"]
            row["data"] = pending.chunks.blobs()[pending.index]
        for row in self.call_blocks:
            if type(row["data"]) is codec.PendingBlob:
                row["data"] = row["data"].made()

    def _pending_rows(self) -> list[dict[str, Any]]:
        return [row for row in self.chunks if type(row["data"]) is codec.PendingChunk]

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.chunks,
                self.functions,
                self.files,
                self.threads,
                self.calls,
                self.call_blocks,
                self.exception_blocks,
                self.checkpoints,
            )
        )


def chunk_row(recording_id: int, chunk: ChunkWrite) -> dict[str, Any]:
    data = chunk.data
    if type(data) is codec.PendingChunk:
        version = codec.CODEC_VERSION
    else:
        has_header = data[: len(codec.MAGIC)] == codec.MAGIC and len(data) > len(codec.MAGIC)
        version = data[len(codec.MAGIC)] if has_header else codec.CODEC_VERSION
    return {
        "recording_id": recording_id,
        "thread_id": chunk.thread_id,
        "seq": chunk.seq,
        "first_step": chunk.first_step,
        "last_step": chunk.last_step,
        "n_events": chunk.n_events,
        "codec": version,
        "data": data,
    }


def ended_calls_of(
    recording_id: int, given: Iterable[Mapping[str, Any] | tuple] | codec.CallRecords
) -> list[CallRow] | codec.CallRecords:
    """`ended_calls` as tuples in `codec.CALL_FIELDS` order, checked and completed; packed
    records (`codec.CallRecords`) as they are: their layout holds only ints and flags.

    The writer gives tens of thousands per second as tuples in that order already: a list of
    only such tuples is checked with a few C-speed passes and taken as it is. Other rows go
    one by one: a mapping with every field through one C call, others through `_rows` for the
    checks and defaults.
    """
    if isinstance(given, codec.CallRecords):
        return given
    rows = given if type(given) is list else list(given)
    if (
        rows
        and set(map(type, rows)) == {tuple}
        and set(map(len, rows)) == {len(codec.CALL_FIELDS)}
        and set(map(type, map(_exception_of, rows))) == {bool}
        and set(map(type, map(_generator_of, rows))) == {bool}
        and None not in map(_last_of, rows)
    ):
        return rows
    return [_ended_call(recording_id, row) for row in rows]


def _ended_call(recording_id: int, row: Mapping[str, Any] | tuple) -> CallRow:
    """One `ended_calls` row as a tuple in `codec.CALL_FIELDS` order (see `_ended_calls`)."""
    if type(row) is tuple:
        call = row
        if len(call) != len(codec.CALL_FIELDS):
            raise ValueError(
                f"ended_calls tuples need the {len(codec.CALL_FIELDS)} fields of "
                f"codec.CALL_FIELDS, not {len(call)}"
            )
    else:
        complete = row
        if row.keys() != _CALL_FIELD_SET:
            (complete,) = table_rows("calls", recording_id, [row], CALL_DEFAULTS)
        call = _call_fields(complete)
    if type(call[-1]) is not bool or type(call[-2]) is not bool:
        # Stored as bools whatever the caller gave, as the Boolean columns read back.
        call = (*call[:-2], bool(call[-2]), bool(call[-1]))
    if call[_LAST - 1] is None:
        raise ValueError("ended_calls rows need their last_step")
    return call


_CALL_BLOCK_KEYS: Final = (
    "thread_id",
    "first_call",
    "last_call",
    "first_step",
    "last_step",
    "n_calls",
    "data",
)
"""The columns of a `call_blocks` row besides `recording_id`, in `_blocks_of_rows`' order."""


def call_blocks_of(
    recording_id: int, given: list[CallRow] | codec.CallRecords, *, pending: bool = False
) -> list[dict[str, Any]]:
    """`call_blocks` rows for ended calls: per thread, blocks of at most CALL_BLOCK_CALLS calls
    spanning fewer than CALL_BLOCK_SPAN call ids. `pending`: packed calls' blocks may keep their
    data as `codec.PendingBlob`s, which `Batch.make_blobs` (or the store's C write) compresses."""
    made = None
    if isinstance(given, codec.CallRecords):
        made = codec.call_blocks_of_records(
            given, CALL_BLOCK_CALLS, CALL_BLOCK_SPAN, pending=pending
        )
        if made is None:
            given = given.rows()
    if made is None:
        made = _blocks_of_rows(given)
    return [
        {"recording_id": recording_id, **dict(zip(_CALL_BLOCK_KEYS, block, strict=True))}
        for block in made
    ]


def _blocks_of_rows(given: list[CallRow]) -> list[tuple[int, int, int, int, int, int, bytes]]:
    """`call_blocks_of` for ended-call tuples: (thread_id, first_call, last_call, first_step,
    last_step, n_calls, data) per block, as `codec.call_blocks_of_records` gives them."""
    # At C speed (map, itemgetter) where it can: the writer hands tens of thousands of calls per
    # second, most often all of one thread.
    threads = set(map(_thread_of, given))
    if len(threads) == 1:
        by_thread = {threads.pop(): list(given)}
    else:
        by_thread = {}
        for call in given:
            by_thread.setdefault(_thread_of(call), []).append(call)
    blocks = []
    for thread_id, calls in by_thread.items():
        calls.sort(key=_first_item)  # by call_id, to cut spans
        ids = list(map(_first_item, calls))
        start = 0
        while start < len(calls):
            end = min(
                start + CALL_BLOCK_CALLS,
                bisect.bisect_left(ids, ids[start] + CALL_BLOCK_SPAN, start),
            )
            block = sorted(calls[start:end], key=_block_order)
            blocks.append(
                (
                    thread_id,
                    ids[start],
                    ids[end - 1],
                    block[0][_FIRST - 1],
                    max(map(_last_of, block)),
                    len(block),
                    codec.encode_calls(block),
                )
            )
            start = end
    return blocks


def exception_blocks_of(
    recording_id: int, given: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The `exception_blocks` row for a batch's exceptions (none if there are none)."""
    fields = codec.EXCEPTION_FIELDS
    rows = []
    for row in given:
        unknown = row.keys() - set(fields)
        if unknown:
            raise TypeError(f"exceptions rows have no column(s) {sorted(unknown)}")
        missing = _EXCEPTION_REQUIRED - row.keys()
        if missing:
            raise ValueError(f"exceptions rows need column(s) {sorted(missing)}")
        rows.append(tuple(row.get(name) for name in fields))
    if not rows:
        return []
    rows.sort(key=lambda row: row[0])
    return [
        {
            "recording_id": recording_id,
            "first_step": rows[0][0],
            "last_step": rows[-1][0],
            "n_exceptions": len(rows),
            "data": codec.encode_exceptions(rows),
        }
    ]


class StoreWrites:
    """The write half of a store's API, shared by its two ways in: `Store` (SQLAlchemy) and the
    recorder's `RecordingWriter` (sqlite3). The checks and the rows are made here; each way
    runs them (`_insert_recording`, `_update_recording`, `_write_batch`), so both write the
    same rows and refuse the same input with the same errors."""

    def create_recording(self, meta: Mapping[str, Any]) -> int:
        """Add a recording and return its id.

        `meta` holds `recordings` columns except `id`; `format_version` is required. `argv`
        and `config` are Python objects (stored as JSON). Defaults: status 'running', counters
        0, `started_at` now.
        """
        if "format_version" not in meta:
            raise ValueError("create_recording needs 'format_version' (the event format).")
        row = {**RECORDING_DEFAULTS, "started_at": time.time(), **recording_fields(meta)}
        return self._insert_recording(row)

    def update_recording(self, recording_id: int, **fields: Any) -> None:
        """Set columns of a recording (e.g. `status`, `ended_at`, `steps`)."""
        values = recording_fields(fields)
        if values:
            self._update_recording(recording_id, values)

    def add_batch(
        self,
        recording_id: int,
        *,
        chunks: Iterable[ChunkWrite] = (),
        functions: Iterable[Mapping[str, Any]] = (),
        files: Iterable[Mapping[str, Any]] = (),
        threads: Iterable[Mapping[str, Any]] = (),
        calls: Iterable[Mapping[str, Any]] = (),
        ended_calls: Iterable[Mapping[str, Any] | tuple] | codec.CallRecords = (),
        exceptions: Iterable[Mapping[str, Any]] = (),
        checkpoints: Iterable[Mapping[str, Any]] = (),
        recording: Mapping[str, Any] | None = None,
    ) -> None:
        """Write chunks and the index rows describing them in ONE transaction.

        Rows are dicts of the table's columns without `recording_id` (the argument wins).
        `functions`, `files`: insert or replace. `files[...]["source"]`: the file's bytes (or
        str), compressed here. `threads`: insert, or update `name`/`last_step`/`ident` of a
        known thread (NULLs keep the stored value). `calls`: upsert (a call is written when it
        starts, with `last_step` None, and again when it ends; a NULL never erases a stored
        `last_step`). `ended_calls`: calls given once, complete (with their `last_step`), and
        never again, not even in `calls`: packed into call blocks (most calls start and end
        between two writes; this is where they go). An ended call may also be a tuple of the
        fields in `codec.CALL_FIELDS` order, every one given (the recorder's writer gives
        them so: a batch of such tuples is taken without a dict per call), or all of them packed
        as `codec.CallRecords` (the recorder's C scan: no tuple per call). `exceptions`:
        insert (packed into one exception block). `checkpoints`: dicts `thread_id`, `step`,
        `data`. `recording`: columns of the recording row to update in the same transaction
        (e.g. `steps`), so the row agrees with the committed chunks.
        """
        batch = Batch.prepare(
            recording_id,
            chunks=chunks,
            functions=functions,
            files=files,
            threads=threads,
            calls=calls,
            ended_calls=ended_calls,
            exceptions=exceptions,
            checkpoints=checkpoints,
        )
        recording_values = recording_fields(recording or {})
        if batch.empty and not recording_values:
            return
        self._write_batch(recording_id, batch, recording_values)

    def _insert_recording(self, row: Mapping[str, Any]) -> int:
        raise NotImplementedError

    def _update_recording(self, recording_id: int, values: Mapping[str, Any]) -> None:
        """Set `values` (checked columns) of the recording; NoRecordingError if there is none."""
        raise NotImplementedError

    def _write_batch(
        self, recording_id: int, batch: Batch, recording_values: Mapping[str, Any]
    ) -> None:
        """Write `batch` and set `recording_values` of the recording, in one transaction."""
        raise NotImplementedError
