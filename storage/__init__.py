"""replay.storage: where recordings live (a SQLite file, later also PostgreSQL).

The package owns the schema (`schema`), the byte format of event chunks (`codec`), the
database plumbing (`db`, `opening`) and the domain API (`Store`). It imports nothing from the
rest of replay, so readers and the recorder can depend on it without cycles.
"""

from replay.storage.errors import NoRecordingError, NotAStoreError, StoreError
from replay.storage.schema import SCHEMA_VERSION
from replay.storage.store import ANY, ChunkInfo, ChunkWrite, Store

__all__ = [
    "ANY",
    "SCHEMA_VERSION",
    "ChunkInfo",
    "ChunkWrite",
    "NoRecordingError",
    "NotAStoreError",
    "Store",
    "StoreError",
]
