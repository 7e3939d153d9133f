"""Helpers shared by the storage tests: realistic events, batches and file fingerprints."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

from replay.storage import ChunkWrite
from replay.storage.codec import encode_events

FORMAT_VERSION = 1
SIDECARS = ("-wal", "-shm", "-journal")


def recording_meta(**overrides: Any) -> dict[str, Any]:
    """The metadata a recorder would give for `python prog.py --flag`."""
    meta = {
        "name": "demo",
        "command": "python prog.py --flag",
        "argv": ["prog.py", "--flag"],
        "cwd": "/tmp",
        "python": "3.12.1",
        "implementation": "cpython",
        "pid": 4242,
        "ppid": 1,
        "host": "box",
        "started_at": 1_700_000_000.5,
        "backend": "sysmon",
        "config": {"limits": {"depth": 3}, "include": ["*.py"]},
        "format_version": FORMAT_VERSION,
    }
    meta.update(overrides)
    return meta


def line_events(first_step: int, count: int, call: int = 1) -> list[tuple]:
    """`count` LINE events (kind 1) of one call, with a local changing at each."""
    return [
        (1, step, step * 100, call, 10 + step % 7, None, (("i", step),), None)
        for step in range(first_step, first_step + count)
    ]


def chunk(thread_id: int, seq: int, first_step: int, count: int) -> ChunkWrite:
    """A chunk of `count` LINE events starting at `first_step`."""
    events = line_events(first_step, count)
    return ChunkWrite(
        thread_id, seq, first_step, first_step + count - 1, count, encode_events(events)
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sidecars(path: Path) -> list[str]:
    """Journal files SQLite may have left beside `path`."""
    return [suffix for suffix in SIDECARS if Path(f"{path}{suffix}").exists()]


def integrity_check(path: Path) -> str:
    """PRAGMA integrity_check through a plain read-only sqlite3 connection."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
