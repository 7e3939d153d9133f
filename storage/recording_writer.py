"""The recorder's way into a store: the standard library's sqlite3, without SQLAlchemy.

A recorded process does four things to its store: create it if it is missing, add its
recording's row, write batches of chunks and index rows, and update the row at the end (and the
launcher of `replay record -- COMMAND` reads which recordings its command's processes made).
Importing SQLAlchemy for them took 0.12 s of every recorded process's start-up (a third of
`replay record` of an empty script, paid again by every Python process of a recorded command),
so `RecordingWriter` does them with sqlite3 and the SQL text that storage/sqlgen.py generates
from schema.py (`sqlite_text.py`; the tests check that it is what SQLAlchemy makes). The rows
are prepared by the code `Store.add_batch` uses (batch.py), so both write the same rows.

It keeps `Store`'s rules (db.py, opening.py, files.py): WAL journaling, `synchronous=NORMAL`,
a 30 s busy timeout, foreign keys off, every write in a `BEGIN IMMEDIATE` transaction; a new
store is published complete or not at all (`files.create_store`); an existing file must start
with the SQLite header. Anything but a store of this schema version (a store to upgrade, one
from a newer replay, another application's database) is handed to `Store.open`, which upgrades
it or refuses it with its sentence: only the common case is done here.

A batch (the recorder's every write) goes through a second connection to the store, made
with SQLite's C API where the sqlite3 module's SQLite can be called (storage/_sqlite.c): the
statements of a write are bound holding the GIL and run in one release of it, where the sqlite3
module lets go of the GIL at every statement and the writer waits each time to get it back from
the traced program. Same statements, same transaction, same errors; where it cannot be called,
or a value is not one it binds, the sqlite3 module runs them.

Fork: a connection must not be used in two processes. `after_fork` (in the child) forgets the
inherited connection without closing it (it belongs to the parent); the child then opens its
own writer.
"""

from __future__ import annotations

import _sqlite3  # the module sqlite3 wraps: its SQLite is the one storage/_sqlite.c calls
import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Self

from replay.storage.batch import UPSERT_RULES, Batch, StoreWrites, decode_recording
from replay.storage.codec import EventChunks, PendingBlob, PendingChunk
from replay.storage.errors import BUSY_TIMEOUT_S, NoRecordingError, StoreError, store_error
from replay.storage.files import (
    check_header,
    check_writable,
    connection_pragmas,
    create_store,
    new_store_meta,
    sqlite_uri,
)
from replay.storage.sqlite_text import (
    COLUMNS,
    DDL,
    INSERTS,
    MAGIC,
    META_INSERT,
    SCHEMA_VERSION,
    UPSERTS,
)

ROWS_PER_STATEMENT: Final = 16
"""Rows one INSERT writes (`_row_statements`): a statement per row let go of the GIL at each
row, where the sqlite3 module runs a write."""

_INHERITED: Final[list[object]] = []
"""Connections inherited across fork: kept, never closed, so the parent's stay untouched."""


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    """A connection with the pragmas every writer of a store uses (db.py's `_on_connect`)."""
    connection = sqlite3.connect(
        sqlite_uri(path, mode), uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False
    )
    connection.isolation_level = None  # transactions are begun and ended here
    try:
        for pragma in connection_pragmas(readonly=mode == "ro"):
            connection.execute(pragma)
    except BaseException:
        connection.close()
        raise
    return connection


def _initialise(target: Path, name: Path) -> None:
    """The schema in `target` (made if missing), as `opening.ensure_schema` makes it."""
    try:
        connection = _connect(target, "rwc")
    except sqlite3.Error as error:
        raise store_error(error, name, "create") from error
    try:
        connection.execute("BEGIN IMMEDIATE")
        for statement in DDL:
            connection.execute(statement)
        connection.executemany(META_INSERT, new_store_meta(MAGIC, SCHEMA_VERSION))
        connection.execute("COMMIT")
    except sqlite3.Error as error:
        raise store_error(error, name, "create") from error
    finally:
        connection.close()  # the last connection to close removes -wal and -shm


def _is_current(path: Path) -> bool:
    """Whether `path` is a replay store of this schema version with every table (read-only)."""
    try:
        connection = _connect(path, "ro")
    except sqlite3.Error:
        return False
    try:
        meta = dict(connection.execute('SELECT "key", value FROM meta').fetchall())
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error:
        return False
    finally:
        connection.close()
    return (
        meta.get("magic") == MAGIC
        and meta.get("schema_version") == str(SCHEMA_VERSION)
        and tables >= COLUMNS.keys()
    )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class RecordingWriter(StoreWrites):
    """A store opened by a recorder: `Store`'s write API (`StoreWrites`), on sqlite3 alone."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = connection
        self._lock = threading.Lock()  # the program's thread and the writer's take turns
        self._direct: object | bool | None = None  # _open_direct's, False: none; None: not yet

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RecordingWriter:
        """Open the store at `path` for writing, creating it if it is missing."""
        path = Path(path)
        if not os.path.lexists(path):
            create_store(path, _initialise)  # False: another process made it meanwhile
        check_header(path)
        if not _is_current(path):
            # Not the common case: the full way in upgrades it, or refuses it with a sentence.
            from replay.storage.store import Store  # noqa: PLC0415 - imports SQLAlchemy

            Store.open(path, mode="w").close()
        check_writable(path)
        try:
            return cls(path, _connect(path, "rw"))
        except sqlite3.Error as error:
            raise store_error(error, path, "write to") from error

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        """Close the connection; later writes raise StoreError. Idempotent."""
        if self._direct:
            _columns.sqlite_close(self._direct)
        self._direct = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def after_fork(self) -> None:
        """In a forked child: forget the parent's connection (never closed here)."""
        if self._connection is not None:
            _INHERITED.append(self._connection)
            self._connection = None
        if self._direct:
            _columns.sqlite_forget(self._direct)
            _INHERITED.append(self._direct)
        self._direct = False
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RecordingWriter {str(self._path)!r}>"

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """The connection inside a `BEGIN IMMEDIATE` transaction, committed on success."""
        with self._lock:
            connection = self._connection
            if connection is None:
                raise StoreError(f"The store {self._path} is closed.")
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    yield connection
                    connection.execute("COMMIT")
                except BaseException:
                    if connection.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            connection.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                raise store_error(error, self._path, "write to") from error

    # -- what the launcher of a recorded command reads (replay record -- COMMAND) -----------

    def latest_recording_id(self) -> int | None:
        """The id of the newest recording, or None if the store has none."""
        return self._read("SELECT max(id) FROM recordings")[0][0]

    def recordings_after(self, recording_id: int) -> list[dict[str, Any]]:
        """The recordings with ids above `recording_id` (those a command's processes made),
        ordered by id, as `Store.recordings` gives them."""
        columns = COLUMNS["recordings"]
        names = ", ".join(map(_quoted, columns))
        rows = self._read(
            f"SELECT {names} FROM recordings WHERE id > ? ORDER BY id", (recording_id,)
        )
        return [decode_recording(dict(zip(columns, row, strict=True))) for row in rows]

    def _read(self, query: str, parameters: tuple = ()) -> list[tuple]:
        with self._lock:
            if self._connection is None:
                raise StoreError(f"The store {self._path} is closed.")
            try:
                return self._connection.execute(query, parameters).fetchall()
            except sqlite3.Error as error:
                raise store_error(error, self._path, "read") from error

    # -- StoreWrites ----------------------------------------------------------------------

    def _insert_recording(self, row: Mapping[str, Any]) -> int:
        names = ", ".join(map(_quoted, row))
        values = ", ".join(f":{name}" for name in row)
        with self._write() as connection:
            cursor = connection.execute(f"INSERT INTO recordings ({names}) VALUES ({values})", row)
            recording_id = cursor.lastrowid
        assert recording_id is not None
        return recording_id

    def _update_recording(self, recording_id: int, values: Mapping[str, Any]) -> None:
        self._run([_update_statement(recording_id, values)], recording_id)

    def _write_batch(
        self, recording_id: int, batch: Batch, recording_values: Mapping[str, Any]
    ) -> None:
        pending = batch.pending_chunks()
        with self._lock:
            if self._direct_run(recording_id, batch, recording_values, pending):
                return
        batch.make_blobs()
        self._run(_statements(recording_id, batch, recording_values), recording_id)

    def _run(self, statements: list[Statement], recording_id: int) -> None:
        """Run `statements` in one transaction through the sqlite3 module."""
        with self._write() as connection:
            for sql, parameters, must_change in statements:
                cursor = connection.execute(sql, parameters)
                if must_change and cursor.rowcount == 0:
                    raise NoRecordingError(f"{self._path} has no recording {recording_id}.")

    def _direct_run(
        self,
        recording_id: int,
        batch: Batch,
        recording_values: Mapping[str, Any],
        pending: EventChunks | None,
    ) -> bool:
        """Make the pending chunks and run the batch's statements in one transaction, through
        SQLite's C API, in one release of the GIL (storage/_sqlite.c): True if done, False if
        the sqlite3 module is to run them (no direct connection, no libzstd for the chunks, or
        a value it declines). Hold the lock."""
        if self._connection is None:
            raise StoreError(f"The store {self._path} is closed.")
        if self._direct is None:
            self._direct = _open_direct(self._path) or False
        if self._direct is False:
            return False
        chunks: tuple[Any, ...] = ()
        if pending is not None:
            parts = pending.parts()
            if parts is None:
                return False
            chunks = (parts, pending.level, pending.head)
        statements = _statements(recording_id, batch, recording_values, chunk_marks=True)
        result = _sqlite_run(self._direct, [_BEGIN, *statements, _COMMIT], *chunks)
        if result is None:
            return False
        status, _index, code, message, sizes = result
        if status == _RUN_UNCHANGED:
            raise NoRecordingError(f"{self._path} has no recording {recording_id}.")
        if status == _RUN_ERROR:
            error = _sqlite_error(code, message)
            raise store_error(error, self._path, "write to") from error
        if pending is not None:
            pending.sizes = sizes
        return True


Statement = tuple[str, tuple[Any, ...], bool]
"""One statement of a write: its SQL with positional parameters, their values, and whether it
must change a row (the recording's UPDATE: none changed means the recording is not there)."""

_BEGIN: Final[Statement] = ("BEGIN IMMEDIATE", (), False)
_COMMIT: Final[Statement] = ("COMMIT", (), False)


def _statements(
    recording_id: int,
    batch: Batch,
    recording_values: Mapping[str, Any],
    *,
    chunk_marks: bool = False,
) -> list[Statement]:
    """The statements of a batch, in the order `Store` writes its tables. `chunk_marks`: a
    pending chunk's data is `(i,)`, chunk i of the write, and a pending call block's is `(raw,
    level)`, the frame to compress (storage/_sqlite.c makes both in its release of the GIL)."""
    chunks, call_blocks = batch.chunks, batch.call_blocks
    if chunk_marks:
        chunks = [
            {**row, "data": (row["data"].index,)} if type(row["data"]) is PendingChunk else row
            for row in chunks
        ]
        call_blocks = [
            {**row, "data": tuple(row["data"])} if type(row["data"]) is PendingBlob else row
            for row in call_blocks
        ]
    statements = [
        statement
        for table, rows in (
            ("chunks", chunks),
            ("call_blocks", call_blocks),
            ("exception_blocks", batch.exception_blocks),
        )
        for statement in _row_statements(INSERTS[table], rows)
    ]
    for table in UPSERT_RULES:
        statements += _row_statements(UPSERTS[table], getattr(batch, table))
    if recording_values:
        statements.append(_update_statement(recording_id, recording_values))
    return statements


def _row_statements(sql: str, rows: list[Mapping[str, Any]]) -> list[Statement]:
    """`sql` for each of `rows`, in statements of up to ROWS_PER_STATEMENT rows.

    Why: sqlite3 lets go of the GIL around every step of a statement, and executemany steps
    once per row; the recorder's writer then waits to get the GIL back from the traced program,
    up to the interpreter's switch interval each time (storage/_zstd.c). A write of richards.py
    has a dozen rows. One statement of several rows steps once. (Where SQLite's C API is
    found, a write runs all its statements in one release: storage/_sqlite.c.)
    """
    statements = []
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        group = rows[start : start + ROWS_PER_STATEMENT]
        text, names = _multi_row(sql, len(group))
        statements.append((text, tuple([row[name] for row in group for name in names]), False))
    return statements


def _update_statement(recording_id: int, values: Mapping[str, Any]) -> Statement:
    """The UPDATE of the recording's row with `values`, which must find the row."""
    settings = ", ".join(f"{_quoted(name)} = ?" for name in values)
    sql = f"UPDATE recordings SET {settings} WHERE id = ?"
    return sql, (*values.values(), recording_id), True


@functools.cache
def _multi_row(sql: str, count: int) -> tuple[str, tuple[str, ...]]:
    """`sql` (an INSERT of one row of named parameters, with or without ON CONFLICT) for
    `count` rows of positional ones, and the parameters' names in their order."""
    head, rest = sql.split(" VALUES (", 1)
    group, tail = rest.split(")", 1)
    names = tuple(part.strip().removeprefix(":") for part in group.split(","))
    row = "(" + ", ".join("?" * len(names)) + ")"
    return f"{head} VALUES {', '.join([row] * count)}{tail}", names


# -- the direct connection (storage/_sqlite.c) ---------------------------------------------

_RUN_ERROR: Final = 1
_RUN_UNCHANGED: Final = 2

try:
    from replay.storage import _columns
except ImportError:  # built without a compiler: the sqlite3 module writes everything
    _columns = None  # type: ignore[assignment]
_sqlite_open = getattr(_columns, "sqlite_open", None)
_sqlite_run = getattr(_columns, "sqlite_run", None)

DIRECT_WRITES: bool = _sqlite_open is not None
"""Whether a write may go through SQLite's C API (the tests turn it off to compare both ways)."""


def _open_direct(path: Path) -> object | None:
    """A second connection to the store through the SQLite the sqlite3 module uses, with the
    same pragmas, or None where there is none to call (the sqlite3 module writes then)."""
    library = _sqlite3.__file__
    if not DIRECT_WRITES or _sqlite_open is None or library is None:
        return None
    return _sqlite_open(library, sqlite_uri(path, "rw"), connection_pragmas(readonly=False))


def direct_sqlite() -> str | None:
    """The version of the SQLite a write calls directly (`replay --version`), or None."""
    version = getattr(_columns, "sqlite_version", None)
    return version(_sqlite3.__file__) if DIRECT_WRITES and version is not None else None


def _sqlite_error(code: int, message: str) -> sqlite3.Error:
    """The sqlite3 module's exception for an SQLite error code, as it would have raised it
    (store_error reads `sqlite_errorcode`)."""
    kind = {
        11: sqlite3.DatabaseError,  # SQLITE_CORRUPT
        26: sqlite3.DatabaseError,  # SQLITE_NOTADB
        19: sqlite3.IntegrityError,  # SQLITE_CONSTRAINT
        20: sqlite3.IntegrityError,  # SQLITE_MISMATCH
        18: sqlite3.DataError,  # SQLITE_TOOBIG
        21: sqlite3.InterfaceError,  # SQLITE_MISUSE
        25: sqlite3.InterfaceError,  # SQLITE_RANGE
    }.get(code & 0xFF, sqlite3.OperationalError)
    error = kind(message)
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error
