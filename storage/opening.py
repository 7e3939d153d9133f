"""Opening a store file: telling a replay store from anything else, and creating new ones.

This module owns the rules that protect users' files and concurrent recorders:

- Nothing is written to an existing file until it is known to be a replay store: first its
  first 16 bytes must be the SQLite header, then a read-only connection (`mode=ro`) must find
  `meta.magic`. Empty files, text files and other applications' databases are refused with
  NotAStoreError and left byte-for-byte untouched.
- A store written by a newer replay (higher `meta.schema_version`) is refused with a sentence.
  One written by an older replay is read as it is (schema.py says what changed) and, opened
  for writing, upgraded first: the tables it lacks are created and its version raised, in one
  `BEGIN IMMEDIATE` transaction, so that the new recording's blocks have somewhere to go. A
  replay of that older version then refuses the file as written by a newer one.
- A new store is built under a temporary name beside the target and published with
  `os.link`, which fails if the target exists (files.py, shared with the recorder's writer).
  So the target path is always either absent or a complete store: a process that opens it
  while another is creating it never sees a half-made (or empty) file, and when several
  processes create the same new store at once, one wins and the others open its file. On file
  systems without hard links the store is created in place, which is still safe for the
  schema: `CREATE ... IF NOT EXISTS` inside `BEGIN IMMEDIATE`, and meta rows inserted with ON
  CONFLICT DO NOTHING.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from replay.storage import schema
from replay.storage.db import Database, insert
from replay.storage.errors import NotAStoreError, StoreError
from replay.storage.files import check_header, check_writable, create_store, new_store_meta
from sqlalchemy import Connection, inspect, select, update
from sqlalchemy.schema import CreateIndex, CreateTable


def open_database(path: Path, mode: Literal["r", "w"]) -> Database:
    """A Database on a checked store: read-only for "r"; for "w", created first if missing.

    The Database's `tables` are the tables the file has (an old store lacks some).
    """
    if mode == "r":
        database = Database(path, readonly=True)
        try:
            database.tables = check_store(path, database)
        except BaseException:
            database.close()
            raise
        return database
    if mode == "w":
        created = not os.path.lexists(path) and create_store(path, _initialise)
        tables = frozenset(schema.metadata.tables)
        if not created:
            probe = Database(path, readonly=True)
            try:
                tables = check_store(path, probe)
            finally:
                probe.close()
            check_writable(path)
        database = Database(path, readonly=False)
        try:
            if not tables >= schema.metadata.tables.keys():
                tables = upgrade_store(database)
        except BaseException:
            database.close()
            raise
        database.tables = tables
        return database
    raise ValueError(f"mode must be 'r' or 'w', not {mode!r}")


# -- checking ------------------------------------------------------------------------------


def check_store(path: Path, database: Database) -> frozenset[str]:
    """Refuse anything but a replay store of a schema version this replay reads.

    Returns the names of the file's tables.
    """
    check_header(path)
    with database.read() as conn:
        tables = frozenset(inspect(conn).get_table_names())
        if schema.meta.name not in tables:
            raise NotAStoreError(f"{path} is not a replay store")
        meta = {
            key: value
            for key, value in conn.execute(select(schema.meta.c.key, schema.meta.c.value))
        }
    if meta.get("magic") != schema.MAGIC:
        raise NotAStoreError(f"{path} is not a replay store")
    check_version(path, meta.get("schema_version"))
    return tables


def check_version(path: Path, stored: str | None) -> None:
    """Refuse schema versions other than ours, with the reason."""
    try:
        version = int(stored or "")
    except ValueError:
        raise NotAStoreError(f"{path} is not a replay store") from None
    if version > schema.SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer version of replay (store schema {version}; this "
            f"replay reads schema {schema.SCHEMA_VERSION}). Upgrade replay to open it."
        )
    if version < schema.OLDEST_READABLE_VERSION:
        raise StoreError(
            f"{path} was written by an older version of replay (store schema {version}; this "
            f"replay reads schemas {schema.OLDEST_READABLE_VERSION} to "
            f"{schema.SCHEMA_VERSION}) and cannot be opened by this one."
        )


def upgrade_store(database: Database) -> frozenset[str]:
    """Bring an older store to SCHEMA_VERSION (see the module docstring); its tables after.

    Safe to run in several processes at once: the tables are created IF NOT EXISTS and the
    version is raised in the same `BEGIN IMMEDIATE` transaction.
    """
    with database.write() as conn:
        ensure_schema(conn)
        conn.execute(
            update(schema.meta)
            .where(schema.meta.c.key == "schema_version")
            .values(value=str(schema.SCHEMA_VERSION))
        )
        return frozenset(inspect(conn).get_table_names())


# -- creating ------------------------------------------------------------------------------


def _initialise(target: Path, name: Path) -> None:
    """Create the schema in `target` (made if missing) and close it, leaving no -wal behind."""
    database = Database(target, readonly=False, create=True, name=name)
    try:
        with database.write() as conn:
            ensure_schema(conn)
    finally:
        database.close()  # the last connection to close checkpoints and removes -wal/-shm


def ensure_schema(conn: Connection) -> None:
    """Create missing tables and indexes and the meta rows; safe to run concurrently."""
    for table in schema.metadata.sorted_tables:
        conn.execute(CreateTable(table, if_not_exists=True))
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            conn.execute(CreateIndex(index, if_not_exists=True))
    rows = new_store_meta(schema.MAGIC, schema.SCHEMA_VERSION)
    conn.execute(insert(conn, schema.meta).on_conflict_do_nothing(index_elements=["key"]), rows)
