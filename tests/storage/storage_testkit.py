"""Helpers shared by the storage tests: realistic events, batches and file fingerprints."""

from __future__ import annotations

import hashlib
import marshal
import random
import sqlite3
from pathlib import Path
from typing import Any

import zstandard
from replay.storage import ChunkWrite
from replay.storage.codec import MAGIC, encode_events

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


def mixed_events(first_step: int, count: int, seed: int = 7) -> list[tuple]:
    """`count` events of every kind, as a recorder makes them: calls nesting and returning,
    lines changing locals, external calls, an exception now and then; times a few hundred
    ns apart with noise."""
    rng = random.Random(seed)
    events: list[tuple] = []
    stack = [1]
    next_call = 2
    ts = 1_000_000
    for step in range(first_step, first_step + count):
        ts += rng.randint(150, 900)
        call = stack[-1]
        roll = rng.random()
        if roll < 0.07 and len(stack) < 20:
            args = (("n", rng.randint(0, 99)), ("items", (5, 40 + call, "list", 2, [1, "a"])))
            events.append((0, step, ts, next_call, 3, (rng.randint(1, 9), call), args, None))
            stack.append(next_call)
            next_call += 1
        elif roll < 0.14 and len(stack) > 1:
            events.append((2, step, ts, call, 8, rng.randint(0, 5), None, None))
            stack.pop()
        elif roll < 0.24:
            payload = ("builtins.len", False, None, None)
            events.append((9, step, ts, call, 5 + step % 3, payload, None, None))
        elif roll < 0.25:
            venc = (7, 99, "ValueError", {"args": ("x",)}, False)
            exc = ("builtins.ValueError", "bad value", venc)
            events.append((3, step, ts, call, 6, exc, None, None))
        else:
            change = (("total", rng.randint(0, 10_000)),) if roll < 0.6 else None
            gone = ("tmp",) if roll > 0.98 else None
            events.append((1, step, ts, call, 4 + step % 5, None, change, gone))
    return events


def v1_chunk(events: list[tuple]) -> bytes:
    """A chunk as codec 1 (schema-1 replays) wrote it."""
    compressor = zstandard.ZstdCompressor(level=3, write_checksum=True, write_content_size=True)
    return MAGIC + b"\x01" + compressor.compress(marshal.dumps(events, 4))


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
