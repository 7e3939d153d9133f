"""The SQLite file behind a store: engines, transactions, and errors as sentences.

This module owns how replay talks to SQLite, so that `store.py` only speaks of recordings:

- Writers open the file with WAL journaling, `synchronous=NORMAL` (a commit costs no fsync; a
  power cut may lose the last commits but never corrupts) and a 30 s busy timeout, and start
  every write transaction with `BEGIN IMMEDIATE`. Taking the write lock up front is what lets
  several processes write one store at once: a deferred transaction that reads and then
  writes can fail with "database is locked" without ever waiting on the busy timeout.
- The stdlib driver's own transaction handling is switched off (`isolation_level = None` on
  connect) and SQLAlchemy's `begin` event emits BEGIN instead: the recipe in SQLAlchemy's
  SQLite dialect documentation ("Enabling Non-Legacy SQLite Transactional Modes").
- Readers open the file through the URI `file:...?mode=ro`, so SQLite itself guarantees the
  database file is never written. (For a WAL database SQLite still needs the `-wal`/`-shm`
  files beside it and creates them if missing; the database file is unchanged.)
- Every `sqlalchemy.exc` / `sqlite3` error leaving this module is a StoreError with a
  sentence naming the file.

Fork safety: a SQLite connection must not be used in two processes. Each pooled connection
remembers the pid that opened it and is discarded (not closed: closing would disturb the
parent's handle) when checked out in another process; `Database.after_fork()` drops the whole
inherited pool the same way, `engine.dispose(close=False)`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from replay.storage.errors import BUSY_TIMEOUT_S, StoreError, store_error
from replay.storage.files import connection_pragmas, sqlite_uri
from sqlalchemy import Connection, Engine, Table, create_engine, event, exc
from sqlalchemy.dialects import sqlite
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection, QueuePool

if TYPE_CHECKING:
    # Imported where used: the PostgreSQL dialect package loads all its drivers (asyncpg,
    # hence asyncio), about 15 ms of every recorded process's start-up on SQLite.
    from sqlalchemy.dialects import postgresql

_WRITE: Final = "replay_write"  # execution option: this connection's transaction writes


def make_engine(path: Path, *, readonly: bool, create: bool = False, pooled: bool = True) -> Engine:
    """An engine on `path`: read-only (`mode=ro`), read-write (`rw`) or creating (`rwc`)."""
    mode = "ro" if readonly else ("rwc" if create else "rw")
    uri = sqlite_uri(path, mode)

    def connect() -> sqlite3.Connection:
        # check_same_thread=False: the pool hands each connection to one thread at a time.
        return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)

    engine = create_engine(
        "sqlite+pysqlite://", creator=connect, poolclass=QueuePool if pooled else NullPool
    )
    event.listen(engine, "connect", _on_connect(readonly))
    event.listen(engine, "checkout", _on_checkout)
    event.listen(engine, "begin", _on_begin)
    return engine


def _on_connect(readonly: bool) -> Callable[[Any, ConnectionPoolEntry], None]:
    """The connect hook: our own transaction control and the pragmas every connection needs."""

    def on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        record.info["pid"] = os.getpid()
        cursor = dbapi_connection.cursor()
        try:
            for pragma in connection_pragmas(readonly):
                cursor.execute(pragma)
        finally:
            cursor.close()

    return on_connect


def _on_checkout(
    dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    """Refuse a connection inherited across fork (SQLAlchemy's multiprocessing recipe)."""
    if record.info.get("pid") != os.getpid():
        # Forget the handle without closing it: it still belongs to the parent process.
        record.dbapi_connection = proxy.dbapi_connection = None  # type: ignore[misc]
        raise exc.DisconnectionError("connection was opened in another process")


def _on_begin(conn: Connection) -> None:
    """Start the transaction: IMMEDIATE for writers, so the lock is taken before any read."""
    immediate = conn.get_execution_options().get(_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def insert(conn: Connection, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT with ON CONFLICT support for the connection's database."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415 - see the imports

        return postgresql.insert(table)
    return sqlite.insert(table)


class Database:
    """One store file behind a pooled engine; every failure comes out as a StoreError."""

    def __init__(
        self, path: Path, *, readonly: bool, create: bool = False, name: Path | None = None
    ) -> None:
        """Open `path` (nothing is read yet); `name` is the file named in messages."""
        self.path = name or path
        self.readonly = readonly
        self.tables: frozenset[str] = frozenset()
        """The tables the file has, as found when it was opened (see opening.py)."""
        self._engine: Engine | None = make_engine(path, readonly=readonly, create=create)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection inside a read transaction (one consistent snapshot)."""
        with self._transaction(write=False) as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection inside a `BEGIN IMMEDIATE` transaction, committed on success."""
        if self.readonly:
            raise StoreError(f"{self.path} was opened read-only; open it with mode='w' to write.")
        with self._transaction(write=True) as conn:
            yield conn

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        engine = self._live_engine()
        try:
            with engine.connect() as conn:
                conn.execution_options(**{_WRITE: write})
                with conn.begin():
                    yield conn
        except (exc.SQLAlchemyError, sqlite3.Error) as error:
            raise store_error(error, self.path, "write to" if write else "read") from error

    def _live_engine(self) -> Engine:
        if self._engine is None:
            raise StoreError(f"The store {self.path} is closed.")
        return self._engine

    def close(self) -> None:
        """Close every pooled connection; later use raises StoreError. Idempotent."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def after_fork(self) -> None:
        """In a forked child: drop the inherited pool without closing the parent's handles."""
        if self._engine is not None:
            self._engine.dispose(close=False)
