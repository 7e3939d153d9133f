"""Real processes sharing one store: concurrent creation and writing, and SIGKILL mid-write."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from replay.storage import Store
from storage_testkit import integrity_check, line_events

WRITER = Path(__file__).with_name("store_writer_process.py")


WAYS = ["store", "recorder"]
"""The two ways into a store for writing: `Store` (SQLAlchemy) and `RecordingWriter` (sqlite3)."""


def start_writers(
    tmp_path: Path, store: Path, count: int, batches: int, way: str = "store"
) -> list[subprocess.Popen]:
    """Start `count` writer processes and release them together once all are ready."""
    go = tmp_path / "go"
    processes = []
    for worker in range(count):
        ready = tmp_path / f"ready-{worker}"
        command = [
            sys.executable,
            str(WRITER),
            str(store),
            str(worker),
            str(batches),
            str(go),
            str(ready),
            way,
        ]
        processes.append(
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready-{w}").exists() for w in range(count)):
        assert time.monotonic() < deadline, "writer processes did not start"
        time.sleep(0.005)
    go.touch()
    return processes


def assert_batches(store: Store, recording_id: int, count: int) -> None:
    """Batches 0..count-1 of store_writer_process are all there, each complete."""
    chunks = store.chunk_index(recording_id)
    assert [c.seq for c in chunks] == list(range(count))
    for info in chunks:
        assert store.read_chunk(info.id) == line_events(info.first_step, 10)
    assert store.count_calls(recording_id) == count
    assert len(store.exceptions(recording_id)) == count
    assert store.step_count(recording_id) == count * 10
    assert store.recording(recording_id)["steps"] == count * 10


@pytest.mark.parametrize("way", WAYS)
def test_processes_creating_and_writing_one_new_store_lose_nothing(
    tmp_path: Path, way: str
) -> None:
    # GIVEN 4 processes that open the same not-yet-existing store at the same moment
    store_path = tmp_path / "shared.db"
    processes = start_writers(tmp_path, store_path, count=4, batches=50, way=way)
    # WHEN each writes 50 batches into its own recording
    for process in processes:
        _out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    # THEN the store holds 4 complete recordings, and SQLite finds it sound
    assert integrity_check(store_path) == "ok"
    with Store.open(store_path) as store:
        recordings = store.recordings()
        assert len(recordings) == 4
        assert sorted(r["pid"] for r in recordings) == [0, 1, 2, 3]
        for recording in recordings:
            assert_batches(store, recording["id"], 50)
    # AND no temporary file of the creation race was left behind
    assert not list(tmp_path.glob(".shared.db.*"))


@pytest.mark.parametrize("way", WAYS)
def test_a_writer_killed_mid_write_leaves_its_committed_batches(tmp_path: Path, way: str) -> None:
    # GIVEN a process writing batches without end
    store_path = tmp_path / "killed.db"
    (process,) = start_writers(tmp_path, store_path, count=1, batches=0, way=way)
    assert process.stdout is not None
    committed = -1
    for line in process.stdout:
        if line.startswith("committed "):
            committed = int(line.split()[1])
            if committed >= 30:
                break
    # WHEN it is killed with SIGKILL in the middle of writing
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    # THEN the store is sound and readable, with every batch it reported committed
    assert integrity_check(store_path) == "ok"
    with Store.open(store_path) as store:
        (recording,) = store.recordings()
        kept = len(store.chunk_index(recording["id"]))
        assert kept >= committed + 1  # the batch in flight may have committed too
        assert_batches(store, recording["id"], kept)
        assert recording["status"] == "running"  # nobody closed the recording
    # AND a new writer can open it and carry on
    with Store.open(store_path, mode="w") as store:
        store.update_recording(recording["id"], status="killed")
        assert store.recording(recording["id"])["status"] == "killed"
