"""Errors raised by the store, and the sentences SQLite's errors become.

Kept here so storage imports nothing from the rest of replay, and so that both ways of writing
a store (SQLAlchemy's `db.py`, the recorder's sqlite3 `recording_writer.py`) word them alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

BUSY_TIMEOUT_S: Final = 30
"""How long a connection waits for another process's write lock before giving up."""


class StoreError(Exception):
    """The store cannot be used: a sentence for the user, naming the file."""

    exit_code = 1


class NotAStoreError(StoreError):
    """The file exists but is not a replay store; it is never modified."""


class NoRecordingError(StoreError):
    """The store has no recording with that id (or none at all)."""


# SQLite primary result codes (https://sqlite.org/rescode.html) worth their own sentence.
_SQLITE_READONLY: Final = 8
_SQLITE_IOERR: Final = 10
_SQLITE_CORRUPT: Final = 11
_SQLITE_FULL: Final = 13
_SQLITE_CANTOPEN: Final = 14
_SQLITE_NOTADB: Final = 26
_BUSY_CODES: Final = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED


def store_error(error: BaseException, path: Path, doing: str) -> StoreError:
    """Turn a driver or SQLAlchemy error into a StoreError sentence naming `path`.

    `doing` completes "cannot ... {path}", e.g. "read", "write to", "create".
    """
    cause = getattr(error, "orig", None) or error  # DBAPIError wraps the sqlite3 error
    detail = str(cause).strip() or type(cause).__name__
    code = getattr(cause, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == _SQLITE_NOTADB:
        return NotAStoreError(f"{path} is not a replay store")
    if primary in _BUSY_CODES:
        return StoreError(
            f"Cannot {doing} {path}: another process kept it locked for more than "
            f"{BUSY_TIMEOUT_S} s ({detail})."
        )
    if primary == _SQLITE_CORRUPT:
        return StoreError(f"{path} is damaged and cannot be read ({detail}).")
    if primary == _SQLITE_READONLY:
        return StoreError(f"Cannot {doing} {path}: the file or its directory is read-only.")
    if primary == _SQLITE_FULL:
        return StoreError(f"Cannot {doing} {path}: the disk is full.")
    if primary == _SQLITE_CANTOPEN:
        return StoreError(f"Cannot {doing} {path}: SQLite cannot open the file ({detail}).")
    if primary == _SQLITE_IOERR:
        return StoreError(f"Cannot {doing} {path}: input/output error ({detail}).")
    return StoreError(f"Cannot {doing} {path}: {detail}.")
