"""A store's file on disk: what it must look like, how a new one appears, how it is opened.

This module owns the rules of opening.py and db.py that need no database library (it imports
neither SQLAlchemy nor sqlite3), so that the recorder's sqlite3 writer (`recording_writer.py`)
follows them too:

- an existing file is a store only if it starts with the SQLite header (`check_header`);
- a new store is built under a temporary name beside the target and published with `os.link`,
  which fails if the target exists (`create_store`): the target path is always either absent or
  a complete store, and of several processes creating it at once one wins and the others open
  its file. On file systems without hard links the store is built in place;
- a new store's `meta` rows (`new_store_meta`), and the pragmas every connection runs first
  (`connection_pragmas`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final
from urllib.parse import quote

from replay.storage.errors import BUSY_TIMEOUT_S, NotAStoreError, StoreError

SQLITE_HEADER: Final = b"SQLite format 3\x00"
_SIDECARS: Final = ("-wal", "-shm", "-journal")


def connection_pragmas(readonly: bool) -> list[str]:
    """What every connection to a store runs first: a 30 s busy timeout, no foreign key checks
    (rows arrive in any order); and for writers WAL journaling with `synchronous=NORMAL` (a
    commit costs no fsync; a power cut may lose the last commits but never corrupts)."""
    pragmas = [f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}", "PRAGMA foreign_keys = OFF"]
    if not readonly:
        pragmas += ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"]
    return pragmas


def new_store_meta(magic: str, schema_version: int) -> list[dict[str, str]]:
    """The `meta` rows of a new store (inserted unless present: several may create it)."""
    created_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return [
        {"key": "magic", "value": magic},
        {"key": "schema_version", "value": str(schema_version)},
        {"key": "created_at", "value": created_at},
    ]


def sqlite_uri(path: Path, mode: str) -> str:
    """A `file:` URI for `path`; quoting keeps '?', '#' and '%' in names from being parsed."""
    return f"file:{quote(str(path.absolute()))}?mode={mode}"


def check_header(path: Path) -> None:
    """The file must exist, be a regular file and start with the SQLite header."""
    if not os.path.lexists(path):
        raise StoreError(f"{path} does not exist.")
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a replay store.")
    try:
        with open(path, "rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as error:
        raise StoreError(f"Cannot read {path}: {error.strerror or error}.") from error
    if header != SQLITE_HEADER:
        raise NotAStoreError(f"{path} is not a replay store")


def check_writable(path: Path) -> None:
    # As root os.access is always true; SQLite then reports its own (translated) error.
    if not os.access(path, os.W_OK):
        raise StoreError(f"Cannot write to {path}: the file is read-only.")


def create_store(path: Path, initialise: Callable[[Path, Path], None]) -> bool:
    """Create a new, empty store at `path`; False if another process created it first.

    `initialise(target, name)` makes the schema in the file `target` (created if missing) and
    closes it, leaving no -wal file; `name` is the path its messages name.
    """
    _check_directory(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.creating")
    try:
        initialise(temp, path)
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        except OSError:
            # This file system has no hard links: build the store in place instead.
            initialise(path, path)
        return True
    finally:
        remove_with_sidecars(temp)


def _check_directory(path: Path) -> None:
    """A sentence if the store cannot be created because of its directory."""
    directory = path.absolute().parent
    if directory.is_dir():
        if not os.access(directory, os.W_OK | os.X_OK):
            raise StoreError(f"Cannot create {path}: the directory {directory} is not writable.")
        return
    blocker = next((p for p in directory.parents if os.path.lexists(p)), None)
    if blocker is not None and not blocker.is_dir():
        raise StoreError(f"Cannot create {path}: {blocker} is a file, not a directory.")
    raise StoreError(f"Cannot create {path}: the directory {directory} does not exist.")


def remove_with_sidecars(path: Path) -> None:
    for suffix in ("", *_SIDECARS):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")
