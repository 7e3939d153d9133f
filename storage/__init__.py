"""replay.storage: where recordings live (a SQLite file, later also PostgreSQL).

The package owns the schema (`schema`), the byte format of event chunks (`codec`), the
database plumbing (`db`, `opening`) and the domain API (`Store`). It imports nothing from the
rest of replay, so readers and the recorder can depend on it without cycles.

The names below are loaded on first use (PEP 562 `__getattr__`): `Store` and `SCHEMA_VERSION`
bring in SQLAlchemy, which costs a process about 0.12 s and 25 MB, while `errors`, `codec` and
`RecordingWriter` (the recorder's way in: sqlite3 alone, `recording_writer.py`) do not. So a
recorded process never imports SQLAlchemy (unless its store must be upgraded or refused), and
`from replay.storage.errors import StoreError` (every CLI command's error handling) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from replay.storage.errors import NoRecordingError, NotAStoreError, StoreError

if TYPE_CHECKING:
    from replay.storage.batch import ChunkWrite
    from replay.storage.recording_writer import RecordingWriter
    from replay.storage.schema import SCHEMA_VERSION
    from replay.storage.store import ANY, ChunkInfo, Store

__all__ = [
    "ANY",
    "SCHEMA_VERSION",
    "ChunkInfo",
    "ChunkWrite",
    "NoRecordingError",
    "NotAStoreError",
    "RecordingWriter",
    "Store",
    "StoreError",
]

_LAZY = {
    "SCHEMA_VERSION": "replay.storage.schema",
    "ANY": "replay.storage.store",
    "ChunkInfo": "replay.storage.store",
    "ChunkWrite": "replay.storage.batch",
    "RecordingWriter": "replay.storage.recording_writer",
    "Store": "replay.storage.store",
}


def __getattr__(name: str) -> Any:
    """Import the module holding `name` when it is first asked for (then it is a plain global)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
