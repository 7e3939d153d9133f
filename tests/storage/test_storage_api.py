"""The Store domain API: what add_batch writes, every read API returns."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from replay.storage import (
    ANY,
    ChunkInfo,
    ChunkWrite,
    NoRecordingError,
    Store,
    StoreError,
)
from replay.storage.codec import compress_blob, encode_events
from storage_testkit import chunk, line_events, recording_meta


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "s.db", mode="w") as opened:
        yield opened


def call_row(call_id: int, first: int, last: int | None, **extra: object) -> dict:
    row = {
        "call_id": call_id,
        "parent_id": None,
        "function_id": 1,
        "thread_id": 1,
        "depth": 0,
        "first_step": first,
        "last_step": last,
    }
    row.update(extra)
    return row


# -- recordings ----------------------------------------------------------------------------


def test_recording_round_trips_with_json_columns_decoded(store: Store) -> None:
    # GIVEN recording metadata with argv and config as Python objects
    meta = recording_meta()
    # WHEN the recording is created and read back
    rid = store.create_recording(meta)
    row = store.recording(rid)
    # THEN every given field comes back as given, and the defaults are filled in
    for key, value in meta.items():
        assert row[key] == value, key
    assert row["id"] == rid
    assert row["status"] == "running"
    assert (row["steps"], row["events_dropped"], row["tracer_faults"]) == (0, 0, 0)
    assert row["ended_at"] is None
    assert row["exit_code"] is None


def test_started_at_defaults_to_now(store: Store) -> None:
    rid = store.create_recording({"format_version": 1})
    assert store.recording(rid)["started_at"] > 1_600_000_000


def test_update_recording_sets_fields(store: Store) -> None:
    rid = store.create_recording(recording_meta())
    store.update_recording(
        rid,
        status="failed",
        ended_at=1_700_000_009.0,
        exit_code=1,
        exception_type="builtins.ValueError",
        exception_message="bad",
        exception_step=77,
        steps=80,
        config={"changed": True},
    )
    row = store.recording(rid)
    assert row["status"] == "failed"
    assert row["exit_code"] == 1
    assert row["exception_step"] == 77
    assert row["config"] == {"changed": True}
    store.update_recording(rid)  # nothing to do is fine


def test_recordings_are_listed_in_id_order(store: Store) -> None:
    assert store.latest_recording_id() is None
    ids = [store.create_recording(recording_meta(name=f"r{i}")) for i in range(3)]
    assert [r["id"] for r in store.recordings()] == ids
    assert [r["name"] for r in store.recordings()] == ["r0", "r1", "r2"]
    assert store.latest_recording_id() == ids[-1]


def test_parent_recording_is_kept(store: Store) -> None:
    parent = store.create_recording(recording_meta())
    child = store.create_recording(recording_meta(parent_id=parent, pid=5000, ppid=4242))
    assert store.recording(child)["parent_id"] == parent


def test_unknown_recording_is_a_no_recording_error(store: Store) -> None:
    with pytest.raises(NoRecordingError, match="has no recording 9"):
        store.recording(9)
    with pytest.raises(NoRecordingError):
        store.update_recording(9, status="ok")
    with pytest.raises(NoRecordingError):
        store.add_batch(9, recording={"steps": 3})


def test_recording_fields_are_checked(store: Store) -> None:
    with pytest.raises(ValueError, match="format_version"):
        store.create_recording({"name": "x"})
    with pytest.raises(TypeError, match="colour"):
        store.create_recording({"format_version": 1, "colour": "red"})
    rid = store.create_recording(recording_meta())
    with pytest.raises(TypeError, match="id"):
        store.update_recording(rid, id=5)


# -- a full batch --------------------------------------------------------------------------


def test_a_batch_is_readable_through_every_read_api(store: Store) -> None:
    # GIVEN a recording of two threads: main calls f (which raises and handles), thread 2 runs g
    rid = store.create_recording(recording_meta())
    source = "def f():\n    try:\n        1 / 0\n    except ZeroDivisionError:\n        pass\n"
    # WHEN one batch writes its chunks and index rows
    store.add_batch(
        rid,
        chunks=[chunk(1, 0, 1, 10), chunk(2, 0, 11, 5), chunk(1, 1, 16, 10)],
        functions=[
            {
                "function_id": 1,
                "file_id": 1,
                "name": "<module>",
                "qualname": "<module>",
                "firstlineno": 1,
            },
            {"function_id": 2, "file_id": 1, "name": "f", "qualname": "f", "firstlineno": 1},
        ],
        files=[
            {
                "file_id": 1,
                "path": "/src/prog.py",
                "sha256": "ab" * 32,
                "size": len(source),
                "source": source.encode(),
            }
        ],
        threads=[
            {
                "thread_id": 1,
                "ident": 139_900_000_000_001,
                "name": "MainThread",
                "first_step": 1,
                "last_step": 25,
            },
            {
                "thread_id": 2,
                "ident": 139_900_000_000_002,
                "name": "worker",
                "first_step": 11,
                "last_step": 15,
            },
        ],
        calls=[
            call_row(1, 1, 25),
            call_row(2, 3, 9, parent_id=1, function_id=2, depth=1),
            call_row(3, 11, 15, thread_id=2),
        ],
        exceptions=[
            {
                "step": 5,
                "thread_id": 1,
                "call_id": 2,
                "kind": "raise",
                "type": "builtins.ZeroDivisionError",
                "message": "division by zero",
                "line": 3,
            },
            {
                "step": 6,
                "thread_id": 1,
                "call_id": 2,
                "kind": "handled",
                "type": "builtins.ZeroDivisionError",
                "message": "division by zero",
                "line": 4,
            },
        ],
        recording={"steps": 25},
    )
    # THEN each read API returns it
    assert store.recording(rid)["steps"] == 25
    assert [t["name"] for t in store.threads(rid)] == ["MainThread", "worker"]
    assert store.threads(rid)[0]["ident"] == 139_900_000_000_001
    assert store.thread_ids(rid) == [1, 2]
    assert store.functions(rid)[2]["qualname"] == "f"
    assert set(store.functions(rid)) == {1, 2}
    assert store.files(rid) == {
        1: {
            "recording_id": rid,
            "file_id": 1,
            "path": "/src/prog.py",
            "sha256": "ab" * 32,
            "size": len(source),
        }
    }
    assert store.source(rid, 1) == source.encode()
    assert store.source(rid, 99) is None
    assert [c["call_id"] for c in store.calls(rid)] == [1, 2, 3]
    assert store.call(rid, 2)["parent_id"] == 1
    assert store.call(rid, 99) is None
    assert store.count_calls(rid) == 3
    assert [e["kind"] for e in store.exceptions(rid)] == ["raise", "handled"]
    assert store.step_count(rid) == 25
    index = store.chunk_index(rid)
    assert [(c.thread_id, c.seq, c.first_step, c.last_step) for c in index] == [
        (1, 0, 1, 10),
        (1, 1, 16, 25),
        (2, 0, 11, 15),
    ]
    assert all(isinstance(c, ChunkInfo) and c.recording_id == rid for c in index)
    assert store.read_chunk(index[1].id) == line_events(16, 10)
    assert [c.seq for c in store.chunk_index(rid, thread_id=1)] == [0, 1]


def test_recordings_do_not_see_each_others_rows(store: Store) -> None:
    first = store.create_recording(recording_meta())
    second = store.create_recording(recording_meta())
    store.add_batch(first, chunks=[chunk(1, 0, 1, 10)], calls=[call_row(1, 1, 10)])
    store.add_batch(second, chunks=[chunk(1, 0, 1, 4)], calls=[call_row(1, 1, 4)])
    assert store.step_count(first) == 10
    assert store.step_count(second) == 4
    assert store.call(second, 1)["last_step"] == 4
    assert len(store.chunk_index(first)) == 1
    assert store.step_count(12345) == 0
    assert store.thread_ids(12345) == []


def test_empty_batch_is_a_no_op(store: Store) -> None:
    rid = store.create_recording(recording_meta())
    store.add_batch(rid)
    assert store.chunk_index(rid) == []


def test_a_failing_batch_writes_nothing(store: Store) -> None:
    # GIVEN a stored chunk (thread 1, seq 0)
    rid = store.create_recording(recording_meta())
    store.add_batch(rid, chunks=[chunk(1, 0, 1, 10)])
    # WHEN a batch with new functions repeats that chunk's (thread, seq)
    with pytest.raises(StoreError) as failed:
        store.add_batch(
            rid,
            functions=[{"function_id": 7, "name": "g"}],
            calls=[call_row(1, 1, 10)],
            chunks=[chunk(1, 1, 11, 10), chunk(1, 0, 21, 10)],
        )
    # THEN it is a StoreError naming the file, and none of the batch was kept
    assert str(store.path) in str(failed.value)
    assert store.functions(rid) == {}
    assert store.calls(rid) == []
    assert len(store.chunk_index(rid)) == 1


def test_bad_rows_are_refused_before_writing(store: Store) -> None:
    rid = store.create_recording(recording_meta())
    with pytest.raises(TypeError, match="no column"):
        store.add_batch(rid, functions=[{"function_id": 1, "name": "f", "colour": 1}])
    with pytest.raises(ValueError, match="first_step"):
        store.add_batch(rid, calls=[{"call_id": 1, "function_id": 1, "thread_id": 1, "depth": 0}])
    assert store.functions(rid) == {}


# -- upserts -------------------------------------------------------------------------------


def test_a_call_written_at_start_is_completed_at_its_end(store: Store) -> None:
    # GIVEN a call written when it started
    rid = store.create_recording(recording_meta())
    store.add_batch(rid, calls=[call_row(1, 1, None, generator=True)])
    assert store.call(rid, 1)["last_step"] is None
    # WHEN it is written again when it ends, by an exception
    store.add_batch(rid, calls=[call_row(1, 1, 40, exception=True, generator=True)])
    # THEN one row holds the end
    assert store.count_calls(rid) == 1
    row = store.call(rid, 1)
    assert (row["last_step"], row["exception"], row["generator"]) == (40, True, True)
    # AND a late "still running" write never erases a known end
    store.add_batch(rid, calls=[call_row(1, 1, None)])
    assert store.call(rid, 1)["last_step"] == 40


def test_threads_update_their_name_and_last_step(store: Store) -> None:
    rid = store.create_recording(recording_meta())
    store.add_batch(
        rid,
        threads=[{"thread_id": 2, "ident": 7, "name": "Thread-1", "first_step": 5, "last_step": 9}],
    )
    store.add_batch(
        rid, threads=[{"thread_id": 2, "name": "renamed", "first_step": 50, "last_step": 60}]
    )
    store.add_batch(rid, threads=[{"thread_id": 2, "last_step": 70}])
    (thread,) = store.threads(rid)
    assert (thread["ident"], thread["name"], thread["first_step"], thread["last_step"]) == (
        7,
        "renamed",
        5,
        70,
    )


def test_functions_and_files_are_replaced_by_key(store: Store) -> None:
    rid = store.create_recording(recording_meta())
    store.add_batch(
        rid,
        functions=[{"function_id": 1, "name": "f", "firstlineno": 1}],
        files=[{"file_id": 1, "path": "a.py", "source": b"old"}],
    )
    store.add_batch(
        rid,
        functions=[{"function_id": 1, "name": "f", "firstlineno": 2}],
        files=[{"file_id": 1, "path": "a.py", "source": b"new"}],
    )
    assert store.functions(rid)[1]["firstlineno"] == 2
    assert store.source(rid, 1) == b"new"


# -- sources -------------------------------------------------------------------------------


def test_sources_are_stored_compressed_and_read_back_raw(store: Store) -> None:
    # GIVEN sources given as bytes, as str, already compressed, and not kept
    rid = store.create_recording(recording_meta())
    text = "x = 'é'\n" * 200
    store.add_batch(
        rid,
        files=[
            {"file_id": 1, "path": "a.py", "source": text.encode()},
            {"file_id": 2, "path": "b.py", "source": text},
            {"file_id": 3, "path": "c.py", "source": compress_blob(b"raw \xff bytes")},
            {"file_id": 4, "path": "d.py"},
        ],
    )
    # THEN each reads back as the file's bytes
    assert store.source(rid, 1) == text.encode()
    assert store.source(rid, 2) == text.encode()
    assert store.source(rid, 3) == b"raw \xff bytes"
    assert store.source(rid, 4) is None
    # AND the column holds zstd frames, much smaller than the text
    conn = sqlite3.connect(store.path)
    blob = conn.execute("SELECT source FROM files WHERE file_id = 1").fetchone()[0]
    conn.close()
    assert blob.startswith(b"\x28\xb5\x2f\xfd")
    assert len(blob) < len(text) / 10


# -- calls queries -------------------------------------------------------------------------


CALL_TREE = [
    call_row(1, 1, None),
    call_row(2, 3, 20, parent_id=1, function_id=2, depth=1),
    call_row(3, 5, 10, parent_id=2, function_id=3, depth=2),
    call_row(4, 30, None, parent_id=1, function_id=2, depth=1),
    call_row(5, 4, 12, thread_id=2, function_id=4),
]


@pytest.fixture(params=["rows", "blocks", "blocks-one-by-one"])
def call_tree(store: Store, request: pytest.FixtureRequest) -> int:
    """main (1) calls a (2) which calls b (3); then main calls a again (4), still running.

    Thread 2 has its own root call (5). Function ids: main 1, a 2, b 3, thread root 4.
    Stored as rows of `calls`, or with the ended calls in call blocks (one batch, or one batch
    per call): every query must answer the same.
    """
    rid = store.create_recording(recording_meta())
    if request.param == "rows":
        store.add_batch(rid, calls=CALL_TREE)
        return rid
    running = [row for row in CALL_TREE if row["last_step"] is None]
    ended = [row for row in CALL_TREE if row["last_step"] is not None]
    if request.param == "blocks":
        store.add_batch(rid, calls=running, ended_calls=ended)
    else:
        store.add_batch(rid, calls=running)
        for row in ended:
            store.add_batch(rid, ended_calls=[row])
    return rid


def test_call_tree_reads_back_whole(store: Store, call_tree: int) -> None:
    assert store.count_calls(call_tree) == 5
    for row in CALL_TREE:
        assert store.call(call_tree, row["call_id"]) == {
            "recording_id": call_tree,
            "exception": False,
            "generator": False,
            **row,
        }
    assert store.call(call_tree, 6) is None
    assert store.call(call_tree, 0) is None


def test_calls_filters(store: Store, call_tree: int) -> None:
    rid = call_tree

    def ids(**kwargs: object) -> list[int]:
        return [c["call_id"] for c in store.calls(rid, **kwargs)]

    assert ids() == [1, 2, 5, 3, 4]  # by first_step
    assert ids(parent_id=ANY) == [1, 2, 5, 3, 4]
    assert ids(parent_id=None) == [1, 5]  # roots
    assert ids(parent_id=1) == [2, 4]
    assert ids(parent_id=1, limit=1) == [2]
    assert ids(thread_id=2) == [5]
    assert ids(function_id=2) == [2, 4]
    assert ids(parent_id=None, thread_id=1) == [1]
    assert ids(parent_id=3) == []


@pytest.mark.parametrize(
    ("thread_id", "step", "expected"),
    [
        (1, 1, 1),  # the root's first step
        (1, 4, 2),  # inside a
        (1, 5, 3),  # b's first step
        (1, 10, 3),  # b's last step
        (1, 11, 2),  # back in a
        (1, 25, 1),  # back in main
        (1, 10_000, 4),  # a second call to a, still running (last_step NULL)
        (2, 4, 5),
        (2, 13, None),  # thread 2's call is over
        (3, 5, None),  # no such thread
    ],
)
def test_call_at_finds_the_innermost_call(
    store: Store, call_tree: int, thread_id: int, step: int, expected: int | None
) -> None:
    found = store.call_at(call_tree, thread_id, step)
    assert (found and found["call_id"]) == expected


def test_exceptions_by_kind(store: Store) -> None:
    rid = store.create_recording(recording_meta())
    kinds = ["raise", "unwind", "raise", "handled", "uncaught"]
    store.add_batch(
        rid,
        exceptions=[
            {"step": 10 - i, "thread_id": 1, "call_id": 1, "kind": kind, "type": "E"}
            for i, kind in enumerate(kinds)
        ],
    )
    assert [e["step"] for e in store.exceptions(rid)] == [6, 7, 8, 9, 10]
    assert [e["kind"] for e in store.exceptions(rid, kinds={"raise"})] == ["raise", "raise"]
    assert [e["kind"] for e in store.exceptions(rid, kinds=["uncaught", "handled"])] == [
        "uncaught",
        "handled",
    ]
    assert store.exceptions(rid, kinds=[]) == []


# -- chunks --------------------------------------------------------------------------------


@pytest.fixture
def chunked(store: Store) -> int:
    """Thread 1: chunks [1,10] [11,20] [21,30]; thread 2: one chunk [5,25]."""
    rid = store.create_recording(recording_meta())
    store.add_batch(
        rid,
        chunks=[
            chunk(1, 0, 1, 10),
            chunk(1, 1, 11, 10),
            chunk(1, 2, 21, 10),
            chunk(2, 0, 5, 21),
        ],
    )
    return rid


@pytest.mark.parametrize(
    ("first", "last", "thread_id", "expected"),
    [
        (10, 10, None, [(1, 0), (2, 0)]),  # last step of a chunk
        (11, 11, None, [(1, 1), (2, 0)]),  # first step of the next
        (10, 11, 1, [(1, 0), (1, 1)]),  # a range straddling the boundary
        (1, 30, None, [(1, 0), (1, 1), (1, 2), (2, 0)]),
        (26, 30, None, [(1, 2)]),  # after thread 2's chunk
        (0, 0, None, []),  # before the first step
        (31, 99, None, []),  # after the last
        (4, 4, 2, []),  # thread 2 starts at 5
        (25, 25, 2, [(2, 0)]),
    ],
)
def test_chunks_covering_boundaries(
    store: Store, chunked: int, first: int, last: int, thread_id: int | None, expected: list
) -> None:
    found = store.chunks_covering(chunked, first, last, thread_id=thread_id)
    assert [(c.thread_id, c.seq) for c in found] == expected


def test_chunks_read_back_their_events(store: Store, chunked: int) -> None:
    for info in store.chunk_index(chunked):
        events = store.read_chunk(info.id)
        assert len(events) == info.n_events
        assert (events[0][1], events[-1][1]) == (info.first_step, info.last_step)
    assert store.step_count(chunked) == 30
    assert store.thread_ids(chunked) == [1, 2]


def test_a_damaged_chunk_is_reported_with_file_and_chunk(store: Store) -> None:
    rid = store.create_recording(recording_meta())
    store.add_batch(rid, chunks=[ChunkWrite(1, 0, 1, 1, 1, b"RPEV\x01not zstd at all")])
    (info,) = store.chunk_index(rid)
    with pytest.raises(StoreError, match=rf"{store.path}: chunk {info.id}: .*corrupted"):
        store.read_chunk(info.id)
    with pytest.raises(StoreError, match="has no chunk 999"):
        store.read_chunk(999)


# -- checkpoints ---------------------------------------------------------------------------


def test_nearest_checkpoint_is_the_latest_at_or_before_the_step(store: Store) -> None:
    rid = store.create_recording(recording_meta())
    store.add_checkpoints(
        rid,
        [
            {"thread_id": 1, "step": 100, "data": b"s100"},
            {"thread_id": 1, "step": 200, "data": b"s200"},
            {"thread_id": 2, "step": 150, "data": b"t150"},
        ],
    )
    store.add_batch(rid, checkpoints=[{"thread_id": 1, "step": 200, "data": b"s200 v2"}])
    assert store.nearest_checkpoint(rid, 1, 99) is None
    assert store.nearest_checkpoint(rid, 1, 100) == (100, b"s100")
    assert store.nearest_checkpoint(rid, 1, 199) == (100, b"s100")
    assert store.nearest_checkpoint(rid, 1, 10**9) == (200, b"s200 v2")
    assert store.nearest_checkpoint(rid, 2, 160) == (150, b"t150")
    assert store.nearest_checkpoint(rid, 3, 160) is None


# -- threads and processes sharing a Store -------------------------------------------------


def test_threads_share_one_store(store: Store) -> None:
    # GIVEN one recording per thread, 4 threads writing 20 batches each at once
    ids = [store.create_recording(recording_meta()) for _ in range(4)]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def write(rid: int) -> None:
        try:
            barrier.wait()
            for n in range(20):
                store.add_batch(rid, chunks=[chunk(1, n, n * 10 + 1, 10)])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(rid,)) for rid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN every batch is there
    assert errors == []
    assert [len(store.chunk_index(rid)) for rid in ids] == [20] * 4


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("call_after_fork", [True, False])
def test_forked_child_can_write_after_fork(tmp_path: Path, call_after_fork: bool) -> None:
    # GIVEN a store already used by this process (its pool holds a connection)
    with Store.open(tmp_path / "s.db", mode="w") as store:
        rid = store.create_recording(recording_meta())
        store.add_batch(rid, chunks=[chunk(1, 0, 1, 10)])
        # WHEN a forked child writes through it (with or without after_fork)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                if call_after_fork:
                    store.after_fork()
                store.add_batch(rid, chunks=[chunk(1, 1, 11, 10)])
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        # THEN the child succeeded and the parent keeps using its own connections
        assert os.waitstatus_to_exitcode(status) == 0
        assert [c.seq for c in store.chunk_index(rid)] == [0, 1]
        store.add_batch(rid, chunks=[chunk(1, 2, 21, 10)])
        assert store.step_count(rid) == 30


def test_encode_events_output_is_what_chunks_store(store: Store) -> None:
    rid = store.create_recording(recording_meta())
    events = [(0, 1, 0, 1, 1, (1, None), (("a", 1),), None), (2, 2, 5, 1, 2, None, None, ("a",))]
    store.add_batch(rid, chunks=[ChunkWrite(1, 0, 1, 2, 2, encode_events(events))])
    assert store.read_chunk(store.chunk_index(rid)[0].id) == events
