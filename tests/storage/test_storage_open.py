"""Opening stores: creation, reopening, and refusing anything that is not a usable store."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
from replay.storage import SCHEMA_VERSION, NotAStoreError, Store, StoreError
from replay.storage.db import store_error
from storage_testkit import chunk, integrity_check, recording_meta, sha256, sidecars

# -- creating and reopening ----------------------------------------------------------------


def test_new_store_is_created_with_its_meta(tmp_path: Path) -> None:
    # GIVEN a path where nothing exists
    path = tmp_path / "new.db"
    # WHEN it is opened for writing
    with Store.open(path, mode="w") as store:
        assert store.recordings() == []
        assert store.latest_recording_id() is None
    # THEN it is a SQLite file in WAL mode with the replay magic and schema version
    conn = sqlite3.connect(path)
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    journal_mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert meta["magic"] == "replay-store"
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    assert meta["created_at"].startswith("20")
    assert journal_mode == "wal"
    # AND no temporary file or journal is left in the directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.db"]


def test_store_reopens_with_its_recordings(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path, mode="w") as store:
        recording_id = store.create_recording(recording_meta())
        store.add_batch(recording_id, chunks=[chunk(1, 0, 1, 10)])
    with Store.open(path, mode="w") as store:
        second = store.create_recording(recording_meta(name="second"))
    with Store.open(path) as store:
        assert [r["id"] for r in store.recordings()] == [recording_id, second]
        assert store.step_count(recording_id) == 10
        assert store.readonly


def test_path_may_hold_characters_special_in_uris(tmp_path: Path) -> None:
    path = tmp_path / "odd dir #1%" / "a?b.db"
    path.parent.mkdir()
    with Store.open(path, mode="w") as store:
        store.create_recording(recording_meta())
    with Store.open(str(path)) as store:
        assert len(store.recordings()) == 1
        assert store.path == path


def test_unknown_mode_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        Store.open(tmp_path / "s.db", mode="a")  # type: ignore[arg-type]


# -- refusing files that are not stores ----------------------------------------------------


def _text_file(path: Path) -> None:
    path.write_text("these are my notes\n" * 10)


def _empty_file(path: Path) -> None:
    path.write_bytes(b"")


def _foreign_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
    conn.execute("INSERT INTO contacts VALUES ('ada', '123')")
    conn.commit()
    conn.close()


def _foreign_sqlite_with_meta(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('magic', 'someone-else')")
    conn.commit()
    conn.close()


def _sqlite_header_then_garbage(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\xab" * 5000)


@pytest.mark.parametrize(
    "make",
    [
        _text_file,
        _empty_file,
        _foreign_sqlite,
        _foreign_sqlite_with_meta,
        _sqlite_header_then_garbage,
    ],
    ids=["text", "empty", "foreign-sqlite", "foreign-meta", "header-garbage"],
)
@pytest.mark.parametrize("mode", ["r", "w"])
def test_foreign_files_are_refused_and_left_untouched(tmp_path: Path, make, mode: str) -> None:
    # GIVEN a file that is not a replay store
    path = tmp_path / "victim.db"
    make(path)
    before = sha256(path)
    mtime = path.stat().st_mtime_ns
    # WHEN it is opened as a store
    with pytest.raises(NotAStoreError) as refused:
        Store.open(path, mode=mode)
    # THEN the error is the sentence naming it
    assert str(refused.value) == f"{path} is not a replay store"
    # AND the file is byte-for-byte the same, with no journal files beside it
    assert sha256(path) == before
    assert path.stat().st_mtime_ns == mtime
    assert sidecars(path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim.db"]


@pytest.mark.parametrize("mode", ["r", "w"])
def test_a_directory_is_refused(tmp_path: Path, mode: str) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        Store.open(tmp_path, mode=mode)


def test_read_mode_needs_an_existing_file_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(StoreError, match=f"{path} does not exist"):
        Store.open(path)
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "s.db"
    with pytest.raises(StoreError, match="does not exist") as refused:
        Store.open(path, mode="w")
    assert str(path) in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_path_under_a_regular_file_is_refused(tmp_path: Path) -> None:
    # GIVEN a regular file used as if it were a directory (unwritable whatever the user is)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = blocker / "sub" / "s.db"
    # WHEN a store is created there THEN the sentence names the file in the way
    with pytest.raises(StoreError, match=f"{blocker} is a file, not a directory"):
        Store.open(path, mode="w")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any directory")
def test_unwritable_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="not writable"):
            Store.open(directory / "s.db", mode="w")
    finally:
        directory.chmod(0o700)


# -- schema versions -----------------------------------------------------------------------


def _set_schema_version(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    conn.commit()
    conn.close()


@pytest.mark.parametrize("mode", ["r", "w"])
def test_store_from_a_newer_replay_is_refused_untouched(tmp_path: Path, mode: str) -> None:
    # GIVEN a store whose schema version is newer than this replay's
    path = tmp_path / "future.db"
    Store.open(path, mode="w").close()
    _set_schema_version(path, SCHEMA_VERSION + 1)
    before = sha256(path)
    # WHEN it is opened THEN the sentence says a newer replay wrote it, and nothing changed
    with pytest.raises(StoreError, match="written by a newer version of replay") as refused:
        Store.open(path, mode=mode)
    assert not isinstance(refused.value, NotAStoreError)
    assert str(path) in str(refused.value)
    assert sha256(path) == before


def test_store_from_an_older_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "past.db"
    Store.open(path, mode="w").close()
    _set_schema_version(path, 0)
    with pytest.raises(StoreError, match="older version of replay"):
        Store.open(path)


# -- read-only use -------------------------------------------------------------------------


def test_read_mode_never_modifies_the_file(tmp_path: Path) -> None:
    # GIVEN a store with a recording, closed cleanly
    path = tmp_path / "s.db"
    with Store.open(path, mode="w") as store:
        rid = store.create_recording(recording_meta())
        store.add_batch(
            rid,
            chunks=[chunk(1, 0, 1, 10)],
            files=[{"file_id": 1, "path": "prog.py", "source": b"x = 1\n"}],
            checkpoints=[{"thread_id": 1, "step": 5, "data": b"state"}],
        )
    before = sha256(path)
    mtime = path.stat().st_mtime_ns
    time.sleep(0.01)  # so a write would show in mtime
    # WHEN it is opened read-only and every read API is used
    with Store.open(path) as store:
        store.recordings()
        store.recording(rid)
        store.threads(rid)
        store.functions(rid)
        store.files(rid)
        store.source(rid, 1)
        store.calls(rid)
        store.call_at(rid, 1, 3)
        store.count_calls(rid)
        store.exceptions(rid)
        chunks = store.chunk_index(rid)
        store.chunks_covering(rid, 1, 5)
        store.read_chunk(chunks[0].id)
        store.step_count(rid)
        store.thread_ids(rid)
        store.nearest_checkpoint(rid, 1, 7)
        # AND a write is attempted
        with pytest.raises(StoreError, match="read-only"):
            store.update_recording(rid, status="ok")
    # THEN the database file is unchanged
    assert sha256(path) == before
    assert path.stat().st_mtime_ns == mtime


def test_readers_see_commits_of_a_live_writer(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path, mode="w") as writer, Store.open(path) as reader:
        rid = writer.create_recording(recording_meta())
        assert reader.latest_recording_id() == rid
        writer.add_batch(rid, chunks=[chunk(1, 0, 1, 10)])
        assert reader.step_count(rid) == 10


def test_closed_store_says_so(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db", mode="w")
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="is closed"):
        store.recordings()


# -- driver errors become sentences --------------------------------------------------------


def test_a_lock_timeout_becomes_a_sentence_naming_the_file(tmp_path: Path) -> None:
    # GIVEN a real "database is locked" error from SQLite
    path = tmp_path / "s.db"
    Store.open(path, mode="w").close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0)
    try:
        with pytest.raises(sqlite3.OperationalError) as locked:
            other.execute("INSERT INTO meta VALUES ('k', 'v')")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        other.close()
    # WHEN it is translated THEN the StoreError names the file and says it was locked
    error = store_error(locked.value, path, "write to")
    assert type(error) is StoreError
    assert str(error).startswith(f"Cannot write to {path}: another process kept it locked")


def test_damaged_store_gives_a_store_error(tmp_path: Path) -> None:
    # GIVEN a store whose pages after the header were overwritten
    path = tmp_path / "s.db"
    with Store.open(path, mode="w") as store:
        store.create_recording(recording_meta())
    data = bytearray(path.read_bytes())
    data[100:] = b"\x00" * (len(data) - 100)
    path.write_bytes(bytes(data))
    # WHEN it is opened THEN a StoreError names it (SQLite's own errors never escape)
    with pytest.raises(StoreError) as refused:
        Store.open(path)
    assert str(path) in str(refused.value)


def test_integrity_of_a_fresh_store(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store.open(path, mode="w").close()
    assert integrity_check(path) == "ok"
