"""The domain API of a replay store: recordings, their index tables and their event chunks.

`Store` is what the readers use (and every writer but a recorded process, which writes through
`recording_writer.py`: sqlite3 alone, the same rows). It owns:

- the entry point `Store.open` (the checks and the safe creation live in `opening.py`);
- the shape of rows: callers hand plain dicts and `ChunkWrite`s and get plain dicts and
  `ChunkInfo`s back; JSON columns (`argv`, `config`) are decoded here, and encoded, with the
  other checks of what is written, by `batch.py`, which both ways of writing share;
- transactions: `add_batch` writes chunks and the index rows describing them atomically, so a
  recording cut short (even by SIGKILL) holds exactly the batches that were committed;
- where index rows live: calls and exceptions that will never change are packed into compressed
  blocks (`call_blocks`, `exception_blocks`), the calls still running stay rows of `calls`, and
  every read merges the two, so callers see one calls table and one exceptions table whatever
  the schema version of the file (a schema-1 store has rows only).

It never decodes events except in `read_chunk`, through `codec.decode_events`, and never loads
more than one chunk's data at a time: recordings can have millions of steps. Call blocks are
small (a few hundred calls); the last ones decoded are kept, since the engine looks calls up one
by one, mostly near each other.

Fork safety: a Store opened before `os.fork()` must not be used by both processes. In the
child, call `store.after_fork()` (or just open a new Store); connections inherited from the
parent are also refused automatically when the child first needs one.
"""

from __future__ import annotations

import bisect
import enum
import heapq
import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self

from replay.storage import codec, schema
from replay.storage.batch import (
    CALL_KEYS,
    UPSERT_RULES,
    Batch,
    CallRow,
    StoreWrites,
    decode_recording,
)
from replay.storage.db import Database, insert
from replay.storage.errors import NoRecordingError, StoreError
from replay.storage.opening import open_database
from sqlalchemy import Connection, Table, func, select, update

_EXCEPTION_KEYS: Final = ("recording_id", *codec.EXCEPTION_FIELDS)
_BLOCK_CACHE: Final = 16
"""Decoded call blocks kept per Store (a few hundred calls each)."""
assert tuple(schema.legacy_exceptions.c.keys()) == _EXCEPTION_KEYS

_PARENT, _FUNCTION, _THREAD, _FIRST, _LAST = (
    CALL_KEYS.index(name)
    for name in ("parent_id", "function_id", "thread_id", "first_step", "last_step")
)


class _Any(enum.Enum):
    """Type of the `ANY` sentinel."""

    ANY = "any"


ANY: Final = _Any.ANY
"""Default of `Store.calls(parent_id=...)`: calls with any parent (None means roots only)."""


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """Where a chunk sits in the event stream (its data is read with `Store.read_chunk`)."""

    id: int
    recording_id: int
    thread_id: int
    seq: int
    first_step: int
    last_step: int
    n_events: int


@dataclass(frozen=True, slots=True)
class _BlockRanges:
    """The call-id ranges of a recording's call blocks, by first call id (parallel lists)."""

    firsts: list[int]
    lasts: list[int]
    ids: list[int]

    def __bool__(self) -> bool:
        return bool(self.ids)


class Store(StoreWrites):
    """A replay store file. Open with `Store.open(path, mode=...)`; use as a context manager."""

    def __init__(self, database: Database) -> None:
        """Wrap an opened database; use `Store.open`, which checks the file first."""
        self._db = database
        self._blocks: OrderedDict[int, codec.CallBlock] = OrderedDict()
        self._block_ranges: dict[int, _BlockRanges] = {}
        self._blocks_lock = threading.Lock()

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, mode: Literal["r", "w"] = "r") -> Store:
        """Open the store at `path`.

        "r": the file must be a replay store; it is never modified.
        "w": the file is created if missing; an existing file must be a replay store and is
        checked before anything is written to it.
        """
        return cls(open_database(Path(path), mode))

    @property
    def path(self) -> Path:
        """The store file, as given to `open`."""
        return self._db.path

    @property
    def readonly(self) -> bool:
        """True when opened with mode 'r'."""
        return self._db.readonly

    def close(self) -> None:
        """Close the store; idempotent."""
        self._db.close()

    def after_fork(self) -> None:
        """Call in a forked child before using a Store opened by the parent.

        Drops the inherited connection pool without closing the parent's connections
        (`engine.dispose(close=False)`); new connections are opened on demand.
        """
        self._db.after_fork()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {str(self.path)!r} {'r' if self.readonly else 'w'}>"

    # -- recordings ------------------------------------------------------------------------

    def _insert_recording(self, row: Mapping[str, Any]) -> int:
        with self._db.write() as conn:
            result = conn.execute(schema.recordings.insert().values(row))
            return int(result.inserted_primary_key[0])

    def _update_recording(self, recording_id: int, values: Mapping[str, Any]) -> None:
        with self._db.write() as conn:
            _set_recording(conn, self.path, recording_id, values)

    def recordings(self) -> list[dict[str, Any]]:
        """Every recording, ordered by id, as plain dicts (`argv`/`config` decoded)."""
        query = select(schema.recordings).order_by(schema.recordings.c.id)
        with self._db.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [decode_recording(row) for row in rows]

    def recording(self, recording_id: int) -> dict[str, Any]:
        """One recording; NoRecordingError if the store has none with that id."""
        query = select(schema.recordings).where(schema.recordings.c.id == recording_id)
        with self._db.read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            raise NoRecordingError(f"{self.path} has no recording {recording_id}.")
        return decode_recording(row)

    def latest_recording_id(self) -> int | None:
        """The id of the newest recording, or None if the store has none."""
        with self._db.read() as conn:
            return conn.execute(select(func.max(schema.recordings.c.id))).scalar()

    # -- writing a batch -------------------------------------------------------------------

    def _write_batch(
        self, recording_id: int, batch: Batch, recording_values: Mapping[str, Any]
    ) -> None:
        batch.make_blobs()
        with self._db.write() as conn:
            _write_batch(conn, batch)
            if recording_values:
                _set_recording(conn, self.path, recording_id, recording_values)

    def add_checkpoints(self, recording_id: int, checkpoints: Iterable[Mapping[str, Any]]) -> None:
        """Store engine snapshots: dicts `thread_id`, `step`, `data` (bytes); replaces same key."""
        self.add_batch(recording_id, checkpoints=checkpoints)

    # -- the index tables ------------------------------------------------------------------

    def threads(self, recording_id: int) -> list[dict[str, Any]]:
        """The recording's threads, ordered by thread_id."""
        table = schema.threads
        query = select(table).where(table.c.recording_id == recording_id)
        return self._dicts(query.order_by(table.c.thread_id))

    def thread_ids(self, recording_id: int) -> list[int]:
        """Ids of threads that have a `threads` row or chunks, ascending."""
        known = select(schema.threads.c.thread_id).where(
            schema.threads.c.recording_id == recording_id
        )
        with_chunks = (
            select(schema.chunks.c.thread_id)
            .where(schema.chunks.c.recording_id == recording_id)
            .distinct()
        )
        with self._db.read() as conn:
            ids = set(conn.execute(known).scalars()) | set(conn.execute(with_chunks).scalars())
        return sorted(ids)

    def functions(self, recording_id: int) -> dict[int, dict[str, Any]]:
        """The recording's functions by function_id."""
        table = schema.functions
        rows = self._dicts(select(table).where(table.c.recording_id == recording_id))
        return {row["function_id"]: row for row in rows}

    def files(self, recording_id: int) -> dict[int, dict[str, Any]]:
        """The recording's source files by file_id, without their source (see `source`)."""
        table = schema.files
        columns = [column for column in table.c if column.name != "source"]
        rows = self._dicts(select(*columns).where(table.c.recording_id == recording_id))
        return {row["file_id"]: row for row in rows}

    def source(self, recording_id: int, file_id: int) -> bytes | None:
        """The recorded bytes of a source file, or None if it was not kept."""
        table = schema.files
        query = select(table.c.source).where(
            table.c.recording_id == recording_id, table.c.file_id == file_id
        )
        with self._db.read() as conn:
            blob = conn.execute(query).scalar()
        if blob is None:
            return None
        try:
            return codec.decompress_blob(blob)
        except StoreError as error:
            raise StoreError(f"{self.path}: source file {file_id}: {error}") from error

    def calls(
        self,
        recording_id: int,
        *,
        parent_id: int | Literal[_Any.ANY] | None = ANY,
        thread_id: int | None = None,
        function_id: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Calls ordered by first_step. `parent_id`: ANY (default), None for roots, or an id.

        With `limit`, only the blocks that can hold the first `limit` calls are read.
        """
        table = schema.calls
        query = select(table).where(table.c.recording_id == recording_id)
        if parent_id is None:
            query = query.where(table.c.parent_id.is_(None))
        elif parent_id is not ANY:
            query = query.where(table.c.parent_id == parent_id)
        if thread_id is not None:
            query = query.where(table.c.thread_id == thread_id)
        if function_id is not None:
            query = query.where(table.c.function_id == function_id)
        query = query.order_by(table.c.first_step, table.c.call_id).limit(limit)
        if limit is not None and limit <= 0:
            return []
        with self._db.read() as conn:
            rows = [tuple(row) for row in conn.execute(query)]
            if not self._has(schema.call_blocks):
                return [_call_dict(row) for row in rows]
            blocks = schema.call_blocks
            block_query = (
                select(blocks.c.id, blocks.c.first_step)
                .where(blocks.c.recording_id == recording_id)
                .order_by(blocks.c.first_step, blocks.c.id)
            )
            if thread_id is not None:
                block_query = block_query.where(blocks.c.thread_id == thread_id)
            found = conn.execute(block_query).all()
            keep = _call_filter(parent_id, thread_id, function_id)

            def block_rows(block_id: int) -> Iterator[CallRow]:
                block = self._block(conn, block_id, cache=False)
                calls = ((recording_id, *call) for call in block.rows())
                return calls if keep is None else filter(keep, calls)

            merged = _merge_by_start(rows, found, block_rows, limit)
        return [_call_dict(row) for row in merged]

    def call(self, recording_id: int, call_id: int) -> dict[str, Any] | None:
        """One call, or None."""
        table = schema.calls
        query = select(table).where(
            table.c.recording_id == recording_id, table.c.call_id == call_id
        )
        with self._db.read() as conn:
            blocks = self._has(schema.call_blocks)
            found = self._call_in_blocks(conn, recording_id, call_id) if blocks else None
            if found is None:
                row = conn.execute(query).first()
                if row is not None:
                    return _call_dict(tuple(row))
                # Blocks written since the ranges were read (a recording still running)?
                if blocks and self._load_ranges(conn, recording_id, only_if_changed=True):
                    found = self._call_in_blocks(conn, recording_id, call_id)
        return None if found is None else _call_dict((recording_id, *found))

    def call_at(self, recording_id: int, thread_id: int, step: int) -> dict[str, Any] | None:
        """The innermost call on `thread_id` whose [first_step, last_step] holds `step`.

        A running call (last_step NULL) holds every later step. "Innermost" is the latest
        started: exact for nested calls. A suspended generator's range also covers steps run
        by its callers, so for generator frames confirm with the events (each names its call).
        """
        table = schema.calls
        query = (
            select(table)
            .where(
                table.c.recording_id == recording_id,
                table.c.first_step <= step,
                table.c.thread_id == thread_id,
                (table.c.last_step >= step) | table.c.last_step.is_(None),
            )
            .order_by(table.c.first_step.desc())
            .limit(1)
        )
        with self._db.read() as conn:
            row = conn.execute(query).first()
            best = None if row is None else tuple(row)
            if self._has(schema.call_blocks):
                blocks = schema.call_blocks
                candidates = conn.execute(
                    select(blocks.c.id).where(
                        blocks.c.recording_id == recording_id,
                        blocks.c.thread_id == thread_id,
                        blocks.c.first_step <= step,
                        blocks.c.last_step >= step,
                    )
                ).scalars()
                for block_id in candidates:
                    for found in self._block(conn, block_id).rows():
                        call = (recording_id, *found)
                        if (
                            call[_FIRST] <= step <= call[_LAST]
                            and call[_THREAD] == thread_id
                            and (best is None or call[_FIRST] > best[_FIRST])
                        ):
                            best = call
        return None if best is None else _call_dict(best)

    def count_calls(self, recording_id: int) -> int:
        """Number of calls in the recording."""
        query = select(func.count()).where(schema.calls.c.recording_id == recording_id)
        with self._db.read() as conn:
            count = int(conn.execute(query).scalar_one())
            if self._has(schema.call_blocks):
                blocks = schema.call_blocks
                in_blocks = select(func.coalesce(func.sum(blocks.c.n_calls), 0)).where(
                    blocks.c.recording_id == recording_id
                )
                count += int(conn.execute(in_blocks).scalar_one())
        return count

    def exceptions(
        self, recording_id: int, *, kinds: Collection[str] | None = None
    ) -> list[dict[str, Any]]:
        """Exception events ordered by step; `kinds` keeps only those kinds."""
        wanted = None if kinds is None else frozenset(kinds)
        rows: list[tuple] = []
        with self._db.read() as conn:
            if self._has(schema.legacy_exceptions):
                table = schema.legacy_exceptions
                query = select(table).where(table.c.recording_id == recording_id)
                if wanted is not None:
                    query = query.where(table.c.kind.in_(sorted(wanted)))
                rows.extend(tuple(row) for row in conn.execute(query))
            if self._has(schema.exception_blocks):
                blocks = schema.exception_blocks
                query = (
                    select(blocks.c.id, blocks.c.data)
                    .where(blocks.c.recording_id == recording_id)
                    .order_by(blocks.c.first_step, blocks.c.id)
                )
                kind = codec.EXCEPTION_FIELDS.index("kind")
                for block_id, data in conn.execute(query):
                    try:
                        decoded = codec.decode_exceptions(data)
                    except StoreError as error:
                        raise StoreError(
                            f"{self.path}: exception block {block_id}: {error}"
                        ) from error
                    rows.extend(
                        (recording_id, *row)
                        for row in decoded
                        if wanted is None or row[kind] in wanted
                    )
        rows.sort(key=lambda row: row[1])
        return [dict(zip(_EXCEPTION_KEYS, row, strict=True)) for row in rows]

    def _has(self, table: Table) -> bool:
        """True when the store file has `table` (schema-1 stores lack the blocks)."""
        return table.name in self._db.tables

    def _call_in_blocks(self, conn: Connection, recording_id: int, call_id: int) -> tuple | None:
        """A call from the call blocks (a row without recording_id), or None."""
        ranges = self._block_ranges.get(recording_id)
        if ranges is None:
            ranges = self._load_ranges(conn, recording_id)
        j = bisect.bisect_right(ranges.firsts, call_id) - 1
        lowest = call_id - schema.CALL_BLOCK_SPAN
        while j >= 0 and ranges.firsts[j] > lowest:
            if ranges.lasts[j] >= call_id:
                found = self._block(conn, ranges.ids[j]).find(call_id)
                if found is not None:
                    return found
            j -= 1
        return None

    def _load_ranges(
        self, conn: Connection, recording_id: int, *, only_if_changed: bool = False
    ) -> _BlockRanges:
        """Read (or re-read) where the recording's call blocks are; falsy if nothing new."""
        blocks = schema.call_blocks
        where = blocks.c.recording_id == recording_id
        known = self._block_ranges.get(recording_id)
        if only_if_changed and known is not None:
            count = conn.execute(select(func.count()).where(where)).scalar_one()
            if count == len(known.ids):
                return _BlockRanges([], [], [])
        found = conn.execute(
            select(blocks.c.id, blocks.c.first_call, blocks.c.last_call)
            .where(where)
            .order_by(blocks.c.first_call, blocks.c.id)
        ).all()
        ranges = _BlockRanges(
            [row.first_call for row in found],
            [row.last_call for row in found],
            [row.id for row in found],
        )
        self._block_ranges[recording_id] = ranges
        return ranges

    def _block(self, conn: Connection, block_id: int, *, cache: bool = True) -> codec.CallBlock:
        """One call block, decoded (the last _BLOCK_CACHE used are kept)."""
        with self._blocks_lock:
            found = self._blocks.get(block_id)
            if found is not None:
                self._blocks.move_to_end(block_id)
                return found
        blocks = schema.call_blocks
        data = conn.execute(select(blocks.c.data).where(blocks.c.id == block_id)).scalar()
        try:
            block = codec.CallBlock(data or b"")
        except StoreError as error:
            raise StoreError(f"{self.path}: call block {block_id}: {error}") from error
        if cache:
            with self._blocks_lock:
                self._blocks[block_id] = block
                while len(self._blocks) > _BLOCK_CACHE:
                    self._blocks.popitem(last=False)
        return block

    # -- chunks ----------------------------------------------------------------------------

    def chunk_index(self, recording_id: int, thread_id: int | None = None) -> list[ChunkInfo]:
        """Every chunk's place (no data), ordered by (thread_id, seq)."""
        return self._chunk_infos(recording_id, thread_id)

    def chunks_covering(
        self, recording_id: int, first_step: int, last_step: int, thread_id: int | None = None
    ) -> list[ChunkInfo]:
        """Chunks whose [first_step, last_step] meets the given range, by (thread_id, seq)."""
        table = schema.chunks
        return self._chunk_infos(
            recording_id,
            thread_id,
            table.c.first_step <= last_step,
            table.c.last_step >= first_step,
        )

    def read_chunk(self, chunk_id: int) -> list[tuple]:
        """The decoded events of one chunk."""
        table = schema.chunks
        query = select(table.c.codec, table.c.data).where(table.c.id == chunk_id)
        with self._db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise StoreError(f"{self.path} has no chunk {chunk_id}.")
        try:
            return codec.decode_events(row.data)
        except StoreError as error:
            raise StoreError(f"{self.path}: chunk {chunk_id}: {error}") from error

    def step_count(self, recording_id: int) -> int:
        """The highest step in the recording's stored chunks (0 if none)."""
        table = schema.chunks
        query = select(func.max(table.c.last_step)).where(table.c.recording_id == recording_id)
        with self._db.read() as conn:
            return int(conn.execute(query).scalar() or 0)

    def nearest_checkpoint(
        self, recording_id: int, thread_id: int, step: int
    ) -> tuple[int, bytes] | None:
        """The latest checkpoint of the thread at or before `step`, as (step, data)."""
        table = schema.checkpoints
        query = (
            select(table.c.step, table.c.data)
            .where(
                table.c.recording_id == recording_id,
                table.c.thread_id == thread_id,
                table.c.step <= step,
            )
            .order_by(table.c.step.desc())
            .limit(1)
        )
        with self._db.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else (int(row.step), bytes(row.data))

    # -- helpers ---------------------------------------------------------------------------

    def _dicts(self, query: Any) -> list[dict[str, Any]]:
        with self._db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def _chunk_infos(
        self, recording_id: int, thread_id: int | None, *conditions: Any
    ) -> list[ChunkInfo]:
        table = schema.chunks
        query = select(
            table.c.id,
            table.c.recording_id,
            table.c.thread_id,
            table.c.seq,
            table.c.first_step,
            table.c.last_step,
            table.c.n_events,
        ).where(table.c.recording_id == recording_id, *conditions)
        if thread_id is not None:
            query = query.where(table.c.thread_id == thread_id)
        query = query.order_by(table.c.thread_id, table.c.seq)
        with self._db.read() as conn:
            return [ChunkInfo(*row) for row in conn.execute(query)]


# -- rows ----------------------------------------------------------------------------------


def _set_recording(
    conn: Connection, path: Path, recording_id: int, values: Mapping[str, Any]
) -> None:
    table = schema.recordings
    result = conn.execute(update(table).where(table.c.id == recording_id).values(values))
    if result.rowcount == 0:
        raise NoRecordingError(f"{path} has no recording {recording_id}.")


def _call_dict(row: CallRow) -> dict[str, Any]:
    """A call row tuple (recording_id first) as the dict the read API returns."""
    return dict(zip(CALL_KEYS, row, strict=True))


def _call_filter(
    parent_id: int | Literal[_Any.ANY] | None, thread_id: int | None, function_id: int | None
) -> Callable[[CallRow], bool] | None:
    """The `Store.calls` filters, for rows read from blocks (None: keep every row)."""
    if parent_id is ANY and thread_id is None and function_id is None:
        return None

    def keep(row: CallRow) -> bool:
        return (
            (parent_id is ANY or row[_PARENT] == parent_id)
            and (thread_id is None or row[_THREAD] == thread_id)
            and (function_id is None or row[_FUNCTION] == function_id)
        )

    return keep


def _merge_by_start(
    rows: list[CallRow],
    blocks: Sequence[Any],
    block_rows: Callable[[int], Iterator[CallRow]],
    limit: int | None,
) -> list[CallRow]:
    """Table rows and block rows, each sorted by (first_step, call_id), merged in that order.

    `blocks` are (id, first_step) of the call blocks, by first_step: a block is decoded only
    once the merge reaches its first step, so a `limit` reads the blocks it needs and no more.
    """
    heap: list[tuple[int, int, int, CallRow, Iterator[CallRow]]] = []
    tie = itertools.count()

    def push_next(source: Iterator[CallRow]) -> None:
        row = next(source, None)
        if row is not None:
            heapq.heappush(heap, (row[_FIRST], row[1], next(tie), row, source))

    push_next(iter(rows))
    merged: list[CallRow] = []
    pending = iter(blocks)
    upcoming = next(pending, None)
    while limit is None or len(merged) < limit:
        while upcoming is not None and (not heap or upcoming[1] <= heap[0][0]):
            push_next(block_rows(upcoming[0]))
            upcoming = next(pending, None)
        if not heap:
            break
        *_, row, source = heapq.heappop(heap)
        merged.append(row)
        push_next(source)
    return merged


def _write_batch(conn: Connection, batch: Batch) -> None:
    """Execute a prepared batch on a connection already inside a write transaction."""
    for table, rows in (
        (schema.chunks, batch.chunks),
        (schema.call_blocks, batch.call_blocks),
        (schema.exception_blocks, batch.exception_blocks),
    ):
        if rows:
            conn.execute(table.insert(), rows)
    for name, (keep_when_null, keep_stored) in UPSERT_RULES.items():
        _upsert(
            conn,
            schema.metadata.tables[name],
            getattr(batch, name),
            keep_when_null=keep_when_null,
            keep_stored=keep_stored,
        )


def _upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keep_when_null: Collection[str] = (),
    keep_stored: Collection[str] = (),
) -> None:
    """Insert rows; a row whose primary key exists replaces the stored non-key columns.

    Columns in `keep_when_null` keep the stored value when the new one is NULL; columns in
    `keep_stored` keep the stored value unless it is NULL.
    """
    if not rows:
        return
    cache_key = (conn.dialect.name, table, tuple(keep_when_null), tuple(keep_stored))
    statement = _UPSERTS.get(cache_key)
    if statement is None:
        statement = _UPSERTS[cache_key] = upsert_statement(
            insert(conn, table), table, keep_when_null, keep_stored
        )
    conn.execute(statement, rows)


_UPSERTS: dict[tuple[str, Table, tuple[str, ...], tuple[str, ...]], Any] = {}
"""`_upsert`'s statements, made once: the recorder's writer runs five per write, and building
one (its ON CONFLICT clause, column by column) cost about as much as running it."""


def upsert_statement(
    statement: Any, table: Table, keep_when_null: Collection[str], keep_stored: Collection[str]
) -> Any:
    """`statement` (an INSERT into `table`) with the ON CONFLICT clause `_upsert` describes
    (`batch.UPSERT_RULES`; storage/sqlgen.py compiles it for the recorder's sqlite3 writer)."""
    key = [column.name for column in table.primary_key]
    new_values = {}
    for column in table.c:
        new = statement.excluded[column.name]
        if column.name in key:
            continue
        if column.name in keep_when_null:
            new_values[column.name] = func.coalesce(new, column)
        elif column.name in keep_stored:
            new_values[column.name] = func.coalesce(column, new)
        else:
            new_values[column.name] = new
    return statement.on_conflict_do_update(index_elements=key, set_=new_values)
