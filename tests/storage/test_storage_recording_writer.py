"""The recorder's sqlite3 way into a store writes what the SQLAlchemy Store writes.

`RecordingWriter` (storage/recording_writer.py) runs SQL text generated from schema.py
(storage/sqlite_text.py), so that a recorded process does not import SQLAlchemy. Checked here
on real SQLite files: the generated text is what SQLAlchemy makes today; a store created and
written either way holds the same schema and the same rows, batch after batch, upserts
included; anything but a current store goes through `Store.open` (upgraded, or refused and
left untouched). Both of its ways to run a write are checked: SQLite's C API in one release
of the GIL (storage/_sqlite.c, where the sqlite3 module's SQLite can be called) and the sqlite3
module.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from replay.storage import (
    ChunkWrite,
    NoRecordingError,
    NotAStoreError,
    RecordingWriter,
    Store,
    StoreError,
    recording_writer,
    sqlgen,
    sqlite_text,
)
from replay.storage.codec import (
    CALL_RECORD,
    CallRecords,
    EventChunks,
    encode_event_chunks,
    encode_events,
)
from storage_testkit import chunk, mixed_events, recording_meta, sha256
from test_storage_schema1 import make_schema_1_store, schema_version


def test_the_generated_sql_is_what_sqlalchemy_makes_of_the_schema() -> None:
    # A schema change without `python -m replay.storage.sqlgen > storage/sqlite_text.py`
    # fails here, not in a recorded process.
    assert Path(sqlite_text.__file__).read_text() == sqlgen.render()


def _dump(path: Path) -> dict[str, Any]:
    """Every table's rows (sorted) and the schema's SQL, read with sqlite3 alone."""
    connection = sqlite3.connect(path)
    try:
        schema = sorted(
            connection.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall(),
            key=repr,
        )
        tables = [row[1] for row in schema if row[0] == "table" and row[1] != "sqlite_sequence"]
        rows = {
            table: sorted(connection.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
            for table in tables
        }
    finally:
        connection.close()
    rows["meta"] = [row for row in rows["meta"] if row[0] != "created_at"]
    return {"schema": schema, "rows": rows}


def _write_a_recording(store: Store | RecordingWriter) -> None:
    """Two recordings and four batches touching every table and upsert rule."""
    first = store.create_recording(recording_meta())
    second = store.create_recording(recording_meta(name=None, pid=7, config=None))
    events = mixed_events(1, 300)
    store.add_batch(
        first,
        chunks=[chunk(1, 0, 1, 300)],
        functions=[{"function_id": 1, "file_id": 1, "name": "f", "qualname": "f"}],
        files=[{"file_id": 1, "path": "/app/prog.py", "source": "x = 1\n", "size": 6}],
        threads=[{"thread_id": 1, "ident": 99, "name": "MainThread", "first_step": 1}],
        calls=[
            {"call_id": 1, "function_id": 1, "thread_id": 1, "depth": 0, "first_step": 1},
            {"call_id": 2, "function_id": 1, "thread_id": 1, "depth": 1, "first_step": 5},
        ],
        ended_calls=[(3, 2, 1, 1, 2, 6, 9, False, False), (4, 2, 1, 1, 2, 10, 12, True, True)],
        exceptions=[
            {"step": 11, "thread_id": 1, "call_id": 4, "kind": "raise", "type": "ValueError"}
        ],
        checkpoints=[{"thread_id": 1, "step": 100, "data": b"state"}],
        recording={"steps": 300},
    )
    store.add_batch(
        first,
        chunks=[
            # ChunkWrite of the codec's own bytes, and of events given as they are
            chunk(1, 1, 301, 50),
            ChunkWrite(1, 2, 351, 650, 300, encode_events(events)),
        ],
        functions=[{"function_id": 1, "file_id": 1, "name": "f", "qualname": "mod.f"}],
        # NULLs keep the stored ident, name and last_step; first_step keeps the stored one
        threads=[{"thread_id": 1, "ident": None, "name": None, "first_step": 40, "last_step": 9}],
        # a NULL last_step never erases a stored one; then the call ends
        calls=[
            {
                "call_id": 2,
                "function_id": 1,
                "thread_id": 1,
                "depth": 1,
                "first_step": 5,
                "last_step": 20,
                "exception": True,
            },
            {
                "call_id": 1,
                "function_id": 1,
                "thread_id": 1,
                "depth": 0,
                "first_step": 1,
                "last_step": None,
            },
        ],
        checkpoints=[{"thread_id": 1, "step": 100, "data": b"state, again"}],
        recording={"steps": 650, "tracer_faults": 1, "fault_message": "a fault"},
    )
    # More rows than one statement takes (RecordingWriter writes them 16 at a time), among
    # them updates of calls the batch before wrote and two rows of one new call.
    many = [
        {"call_id": i, "function_id": 1, "thread_id": 1, "depth": 2, "first_step": 700 + i}
        for i in range(5, 40)
    ]
    many[20] = {**many[20], "last_step": None}
    many += [{**many[3], "last_step": 900}, {**many[0], "call_id": 2, "last_step": None}]
    # Ended calls packed as the recorder's C scan packs them: their blocks' data is compressed
    # by the store in its write (codec.PendingBlob), the same frames as the other ways make.
    records = CallRecords(
        b"".join(
            CALL_RECORD.pack(call, 1, 1, 1, 1, 700 + 3 * call, 701 + 3 * call, call % 2, 0)
            for call in range(50, 90)
        )
    )
    store.add_batch(
        first,
        chunks=[chunk(1, 3 + i, 651 + 10 * i, 10) for i in range(18)],
        calls=many,
        ended_calls=records,
        recording={"steps": 830},
    )
    store.add_batch(second, threads=[{"thread_id": 1, "ident": 5, "name": "T"}])
    store.add_batch(second)  # nothing at all
    store.update_recording(first, status="ok", exit_code=0, ended_at=1_700_000_009.25)
    store.update_recording(second, status="failed", exception_type="builtins.KeyError")


@pytest.fixture(params=["direct", "sqlite3-module"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test twice: a write through SQLite's C API (skipped where it cannot be called),
    then through the sqlite3 module."""
    if request.param == "direct":
        if recording_writer.direct_sqlite() is None:
            pytest.skip("the sqlite3 module's SQLite cannot be called here (storage/_sqlite.c)")
    else:
        monkeypatch.setattr(recording_writer, "DIRECT_WRITES", False)
    return request.param


def _used_direct(writer: RecordingWriter) -> bool:
    return bool(writer._direct)


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
def test_both_ways_write_the_same_store(tmp_path: Path, existing: bool, way: str) -> None:
    # GIVEN a store written through Store, and one through RecordingWriter (created by it,
    # or created by Store and then opened by it)
    by_store, by_writer = tmp_path / "store.db", tmp_path / "writer.db"
    with Store.open(by_store, mode="w") as store:
        _write_a_recording(store)
    if existing:
        Store.open(by_writer, mode="w").close()
    with RecordingWriter.open(by_writer) as writer:
        _write_a_recording(writer)
        assert _used_direct(writer) == (way == "direct")
    # THEN both files hold the same schema and the same rows
    assert _dump(by_writer) == _dump(by_store)
    # AND the Store reads the writer's recordings back as it reads its own
    with Store.open(by_store) as store, Store.open(by_writer) as written:
        assert written.recordings() == store.recordings()
        for recording in store.recordings():
            rid = recording["id"]
            assert written.calls(rid) == store.calls(rid)
            assert written.exceptions(rid) == store.exceptions(rid)
            assert written.threads(rid) == store.threads(rid)
            assert [written.read_chunk(c.id) for c in written.chunk_index(rid)] == [
                store.read_chunk(c.id) for c in store.chunk_index(rid)
            ]


def test_a_schema_1_store_is_upgraded_by_the_full_way_in(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_schema_1_store(path)
    with RecordingWriter.open(path) as writer:
        rid = writer.create_recording(recording_meta())
        writer.add_batch(rid, chunks=[chunk(1, 0, 1, 10)])
    assert schema_version(path) == str(sqlite_text.SCHEMA_VERSION)
    with Store.open(path) as store:
        assert len(store.recordings()) == 2
        assert store.step_count(rid) == 10


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda path: path.write_text("notes\n"), NotAStoreError),
        (lambda path: sqlite3.connect(path).execute("CREATE TABLE t (x)").close(), NotAStoreError),
        (lambda path: path.mkdir(), StoreError),
    ],
    ids=["text", "other-sqlite", "directory"],
)
def test_what_is_not_a_store_is_refused_and_left_untouched(
    tmp_path: Path, make: Callable[[Path], None], error: type[StoreError]
) -> None:
    path = tmp_path / "thing"
    make(path)
    before = sha256(path) if path.is_file() else None
    with pytest.raises(error) as refused:
        RecordingWriter.open(path)
    assert str(path) in str(refused.value)
    assert (sha256(path) if path.is_file() else None) == before


def test_a_store_from_a_newer_replay_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store.open(path, mode="w").close()
    connection = sqlite3.connect(path)
    connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    connection.commit()
    connection.close()
    with pytest.raises(StoreError, match="newer version of replay"):
        RecordingWriter.open(path)


def test_a_missing_directory_is_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        RecordingWriter.open(tmp_path / "nowhere" / "r.db")


def test_writes_after_close_and_to_unknown_recordings_are_sentences(
    tmp_path: Path, way: str
) -> None:
    writer = RecordingWriter.open(tmp_path / "r.db")
    rid = writer.create_recording(recording_meta())
    with pytest.raises(NoRecordingError, match="has no recording 99"):
        writer.update_recording(99, status="ok")
    with pytest.raises(TypeError, match="no settable column"):
        writer.update_recording(rid, colour="red")
    # a failed batch leaves nothing behind: the transaction is rolled back whole
    with pytest.raises(NoRecordingError):
        writer.add_batch(99, chunks=[chunk(1, 0, 1, 10)], recording={"steps": 10})
    writer.add_batch(rid, chunks=[chunk(1, 0, 1, 10)])  # and the next one goes through
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        writer.add_batch(rid, chunks=[chunk(1, 1, 11, 10)])
    with Store.open(tmp_path / "r.db") as store:
        assert [c.recording_id for c in store.chunk_index(rid)] == [rid]
        assert store.chunk_index(99) == []


def test_a_failed_write_is_the_sqlite3_modules_sentence_and_leaves_nothing(
    tmp_path: Path, way: str
) -> None:
    # GIVEN a store with one written chunk
    path = tmp_path / "r.db"
    writer = RecordingWriter.open(path)
    rid = writer.create_recording(recording_meta())
    writer.add_batch(rid, chunks=[chunk(1, 0, 1, 10)], recording={"steps": 10})
    # WHEN a write fails in its middle: a new chunk, then one of a (thread, seq) already stored
    with pytest.raises(StoreError) as failed:
        writer.add_batch(
            rid,
            chunks=[chunk(1, 1, 11, 10), chunk(1, 0, 21, 10)],
            threads=[{"thread_id": 1, "ident": 5, "name": "T", "first_step": 1}],
            recording={"steps": 30},
        )
    # THEN the sentence is the one the sqlite3 module's error gives (both ways)
    assert str(failed.value) == (
        f"Cannot write to {path}: UNIQUE constraint failed: "
        "chunks.recording_id, chunks.thread_id, chunks.seq."
    )
    assert _used_direct(writer) == (way == "direct")
    # AND nothing of that write is in the store, and the next write goes through
    writer.add_batch(rid, chunks=[chunk(1, 1, 11, 5)], recording={"steps": 15})
    writer.close()
    with Store.open(path) as store:
        assert [(c.seq, c.n_events) for c in store.chunk_index(rid)] == [(0, 10), (1, 5)]
        assert store.threads(rid) == []
        assert store.recording(rid)["steps"] == 15


_PLAIN = [
    [(1, 1, 100, 1, 3, None, (("x", 1),), None), (2, 2, 150, 1, 4, None, (("y", "two"),), None)],
    [(1, 3, 200, 2, 9, None, (("z", (5, 7, "seq", 3, [1, 2, 3])),), ("x",))],
]
_DECLINED = [  # values marshal writes and the C value writer does not (a frozenset, a big int)
    _PLAIN[0],
    [(1, 3, 200, 2, 9, None, (("s", frozenset({1, 2})), ("big", 2**80)), None)],
]


@pytest.mark.parametrize("batches", [_PLAIN, _DECLINED], ids=["plain", "declined-values"])
def test_chunks_made_by_the_store_are_the_chunks_the_codec_makes(
    tmp_path: Path, way: str, batches: list[list[tuple]]
) -> None:
    # GIVEN the chunks of one write given as the recorder gives them (EventChunks, made by the
    # store in the write's transaction), to the writer and to the Store, and as blobs the codec
    # made beforehand, to the Store
    def write(store: Store | RecordingWriter, data: list[bytes] | EventChunks) -> None:
        with store:
            rid = store.create_recording(recording_meta())
            store.add_batch(
                rid,
                chunks=[
                    ChunkWrite(1, i, events[0][1], events[-1][1], len(events), data[i])
                    if isinstance(data, list)
                    else ChunkWrite(1, i, events[0][1], events[-1][1], len(events), data.chunk(i))
                    for i, events in enumerate(batches)
                ],
                recording={"steps": batches[-1][-1][1]},
            )

    made = encode_event_chunks(batches, 1)
    paths = {name: tmp_path / f"{name}.db" for name in ("blobs", "store", "writer")}
    write(Store.open(paths["blobs"], mode="w"), made)
    write(Store.open(paths["store"], mode="w"), by_store := EventChunks(batches, 1))
    write(RecordingWriter.open(paths["writer"]), by_writer := EventChunks(batches, 1))
    # THEN all three stores hold the same rows and blobs, the chunks decode to the events, and
    # each way says how big the blobs it made are
    assert _dump(paths["writer"]) == _dump(paths["store"]) == _dump(paths["blobs"])
    assert by_writer.sizes == by_store.sizes == [len(blob) for blob in made]
    with Store.open(paths["writer"]) as store:
        stored = [store.read_chunk(c.id) for c in store.chunk_index(1)]
    assert stored == batches


def test_a_value_sqlite_api_does_not_bind_is_written_by_the_sqlite3_module(
    tmp_path: Path, way: str
) -> None:
    # GIVEN a batch holding a value the direct way declines (a bytearray: the sqlite3 module
    # binds any buffer as a blob) and the same batch as bytes, written by the Store
    by_store, by_writer = tmp_path / "store.db", tmp_path / "writer.db"
    for path, data in ((by_store, b"state"), (by_writer, bytearray(b"state"))):
        store = Store.open(path, mode="w") if path == by_store else RecordingWriter.open(path)
        with store:
            rid = store.create_recording(recording_meta())
            store.add_batch(
                rid,
                chunks=[chunk(1, 0, 1, 10)],
                checkpoints=[{"thread_id": 1, "step": 5, "data": data}],
                recording={"steps": 10},
            )
    # THEN the writer wrote it all the same, through the sqlite3 module
    assert _dump(by_writer) == _dump(by_store)


def test_the_launcher_reads_the_recordings_as_the_store_does(tmp_path: Path) -> None:
    # GIVEN a store with three recordings, one of them finished
    path = tmp_path / "r.db"
    with RecordingWriter.open(path) as writer:
        assert writer.latest_recording_id() is None
        ids = [writer.create_recording(recording_meta(pid=pid)) for pid in (1, 2, 3)]
        writer.update_recording(ids[1], status="ok", exit_code=0)
        # WHEN the launcher of a command asks for those after the first
        made = writer.recordings_after(ids[0])
        latest = writer.latest_recording_id()
    # THEN it gets the rows the Store gives, JSON columns decoded
    with Store.open(path) as store:
        assert made == store.recordings()[1:]
    assert latest == ids[-1]
    assert [row["pid"] for row in made] == [2, 3]
    assert made[0]["argv"] == ["prog.py", "--flag"] and made[0]["status"] == "ok"
