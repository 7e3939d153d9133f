"""Stores written by schema-1 replays: read as they are, upgraded in place when written to."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from replay.storage import SCHEMA_VERSION, Store, StoreError
from storage_testkit import chunk, integrity_check, mixed_events, recording_meta, sha256, v1_chunk

# The DDL a schema-1 replay ran (SQLAlchemy's output for its schema.py), verbatim.
SCHEMA_1 = """
CREATE TABLE meta ("key" VARCHAR(64) NOT NULL, value TEXT NOT NULL, PRIMARY KEY ("key"));
CREATE TABLE recordings (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, name TEXT, command TEXT, argv TEXT,
    cwd TEXT, python VARCHAR(64), implementation VARCHAR(32), pid BIGINT, ppid BIGINT,
    host TEXT, started_at DOUBLE NOT NULL, ended_at DOUBLE, exit_code INTEGER,
    status VARCHAR(16) NOT NULL, exception_type TEXT, exception_message TEXT,
    exception_step BIGINT, steps BIGINT NOT NULL, events_dropped BIGINT NOT NULL,
    tracer_faults BIGINT NOT NULL, fault_message TEXT, backend VARCHAR(32), config TEXT,
    parent_id INTEGER, format_version INTEGER NOT NULL);
CREATE TABLE calls (
    recording_id INTEGER NOT NULL, call_id BIGINT NOT NULL, parent_id BIGINT,
    function_id INTEGER NOT NULL, thread_id INTEGER NOT NULL, depth INTEGER NOT NULL,
    first_step BIGINT NOT NULL, last_step BIGINT, exception BOOLEAN NOT NULL,
    generator BOOLEAN NOT NULL, PRIMARY KEY (recording_id, call_id),
    FOREIGN KEY(recording_id) REFERENCES recordings (id));
CREATE INDEX ix_calls_first_step ON calls (recording_id, first_step);
CREATE INDEX ix_calls_function ON calls (recording_id, function_id);
CREATE INDEX ix_calls_parent ON calls (recording_id, parent_id);
CREATE TABLE checkpoints (
    recording_id INTEGER NOT NULL, thread_id INTEGER NOT NULL, step BIGINT NOT NULL,
    data BLOB NOT NULL, PRIMARY KEY (recording_id, thread_id, step),
    FOREIGN KEY(recording_id) REFERENCES recordings (id));
CREATE TABLE chunks (
    id INTEGER NOT NULL, recording_id INTEGER NOT NULL, thread_id INTEGER NOT NULL,
    seq INTEGER NOT NULL, first_step BIGINT NOT NULL, last_step BIGINT NOT NULL,
    n_events INTEGER NOT NULL, codec INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (id),
    FOREIGN KEY(recording_id) REFERENCES recordings (id));
CREATE INDEX ix_chunks_first_step ON chunks (recording_id, first_step);
CREATE INDEX ix_chunks_last_step ON chunks (recording_id, last_step);
CREATE UNIQUE INDEX ix_chunks_thread_seq ON chunks (recording_id, thread_id, seq);
CREATE TABLE exceptions (
    recording_id INTEGER NOT NULL, step BIGINT NOT NULL, thread_id INTEGER NOT NULL,
    call_id BIGINT NOT NULL, kind VARCHAR(16) NOT NULL, type TEXT NOT NULL, message TEXT,
    line INTEGER, FOREIGN KEY(recording_id) REFERENCES recordings (id));
CREATE INDEX ix_exceptions_step ON exceptions (recording_id, step);
CREATE TABLE files (
    recording_id INTEGER NOT NULL, file_id INTEGER NOT NULL, path TEXT NOT NULL,
    sha256 VARCHAR(64), size BIGINT, source BLOB, PRIMARY KEY (recording_id, file_id),
    FOREIGN KEY(recording_id) REFERENCES recordings (id));
CREATE TABLE functions (
    recording_id INTEGER NOT NULL, function_id INTEGER NOT NULL, file_id INTEGER,
    name TEXT NOT NULL, qualname TEXT, firstlineno INTEGER,
    PRIMARY KEY (recording_id, function_id),
    FOREIGN KEY(recording_id) REFERENCES recordings (id));
CREATE TABLE threads (
    recording_id INTEGER NOT NULL, thread_id INTEGER NOT NULL, ident BIGINT, name TEXT,
    first_step BIGINT, last_step BIGINT, PRIMARY KEY (recording_id, thread_id),
    FOREIGN KEY(recording_id) REFERENCES recordings (id));
"""

EVENTS = mixed_events(1, 300)
CALLS = [
    (1, 1, None, 1, 1, 0, 1, None, 0, 0),
    (1, 2, 1, 2, 1, 1, 10, 40, 0, 1),
    (1, 3, 2, 3, 1, 2, 12, 20, 1, 0),
]
EXCEPTIONS = [
    (1, 15, 1, 3, "raise", "builtins.KeyError", "'k'", 7),
    (1, 20, 1, 3, "unwind", "builtins.KeyError", "'k'", 7),
    (1, 22, 1, 2, "handled", "builtins.KeyError", None, 3),
]


def make_schema_1_store(path: Path) -> None:
    """A store as a schema-1 replay left it: one recording with rows and a codec-1 chunk."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(SCHEMA_1)
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("magic", "replay-store"), ("schema_version", "1"), ("created_at", "2026-01-01")],
    )
    conn.execute(
        "INSERT INTO recordings (name, started_at, status, steps, events_dropped, "
        "tracer_faults, format_version, argv) VALUES ('old', 1.5, 'ok', 300, 0, 0, 1, '[\"p\"]')"
    )
    conn.execute("INSERT INTO chunks VALUES (1, 1, 1, 0, 1, 300, 300, 1, ?)", (v1_chunk(EVENTS),))
    conn.executemany("INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", CALLS)
    conn.executemany("INSERT INTO exceptions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", EXCEPTIONS)
    conn.execute("INSERT INTO threads VALUES (1, 1, 77, 'MainThread', 1, 300)")
    conn.execute("INSERT INTO functions VALUES (1, 1, 1, '<module>', '<module>', 1)")
    conn.commit()
    conn.close()


def schema_version(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]


def check_old_recording(store: Store) -> None:
    """Everything of the schema-1 recording reads back through the usual API."""
    assert store.recording(1)["name"] == "old"
    assert store.recording(1)["argv"] == ["p"]
    (info,) = store.chunk_index(1)
    assert store.read_chunk(info.id) == EVENTS
    calls = store.calls(1)
    assert [c["call_id"] for c in calls] == [1, 2, 3]
    assert calls[2] == {
        "recording_id": 1,
        "call_id": 3,
        "parent_id": 2,
        "function_id": 3,
        "thread_id": 1,
        "depth": 2,
        "first_step": 12,
        "last_step": 20,
        "exception": True,
        "generator": False,
    }
    assert store.call(1, 2)["generator"] is True
    assert store.call_at(1, 1, 15)["call_id"] == 3
    assert store.count_calls(1) == 3
    assert store.calls(1, parent_id=1)[0]["call_id"] == 2
    assert [e["kind"] for e in store.exceptions(1)] == ["raise", "unwind", "handled"]
    assert store.exceptions(1, kinds=["unwind"])[0]["message"] == "'k'"


def test_a_schema_1_store_is_read_as_it_is(tmp_path: Path) -> None:
    # GIVEN a store written by a schema-1 replay
    path = tmp_path / "old.db"
    make_schema_1_store(path)
    before = sha256(path)
    # WHEN it is opened read-only THEN its recording reads back whole
    with Store.open(path) as store:
        check_old_recording(store)
    # AND the file was not changed (not even upgraded)
    assert sha256(path) == before
    assert schema_version(path) == "1"


def test_a_schema_1_store_is_upgraded_when_written_to(tmp_path: Path) -> None:
    # GIVEN a store written by a schema-1 replay
    path = tmp_path / "old.db"
    make_schema_1_store(path)
    # WHEN a new recording is written into it
    with Store.open(path, mode="w") as store:
        rid = store.create_recording(recording_meta())
        store.add_batch(
            rid,
            chunks=[chunk(1, 0, 1, 10)],
            ended_calls=[
                {
                    "call_id": 1,
                    "function_id": 1,
                    "thread_id": 1,
                    "depth": 0,
                    "first_step": 1,
                    "last_step": 10,
                }
            ],
            exceptions=[{"step": 5, "thread_id": 1, "call_id": 1, "kind": "raise", "type": "E"}],
        )
    # THEN the file is a schema-2 store holding both recordings, each whole
    assert schema_version(path) == str(SCHEMA_VERSION) == "2"
    assert integrity_check(path) == "ok"
    for mode in ("r", "w"):
        with Store.open(path, mode=mode) as store:
            check_old_recording(store)
            assert store.call(rid, 1)["last_step"] == 10
            assert [e["step"] for e in store.exceptions(rid)] == [5]
            assert store.count_calls(rid) == 1
            assert len(store.read_chunk(store.chunk_index(rid)[0].id)) == 10


def test_upgrading_twice_is_harmless(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_schema_1_store(path)
    first = Store.open(path, mode="w")
    second = Store.open(path, mode="w")  # another process, at the same time
    first.close()
    second.close()
    with Store.open(path) as store:
        check_old_recording(store)


def test_a_read_only_schema_1_file_cannot_be_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_schema_1_store(path)
    path.chmod(0o444)
    try:
        if os_can_write(path):
            pytest.skip("root writes into read-only files")
        with pytest.raises(StoreError, match="read-only"):
            Store.open(path, mode="w")
    finally:
        path.chmod(0o644)
    assert schema_version(path) == "1"


def os_can_write(path: Path) -> bool:
    try:
        with open(path, "r+b"):
            return True
    except PermissionError:
        return False
