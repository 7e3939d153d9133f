"""A recorder stand-in run as a separate process by the storage tests.

    python store_writer_process.py STORE WORKER BATCHES GO_FILE READY_FILE [WAY]

Announces itself by creating READY_FILE, waits for GO_FILE (so all workers open the store at
the same moment), opens STORE for writing, creates one recording and writes BATCHES batches
(BATCHES = 0: forever), printing "committed N" after each batch returns. WAY is `store` (the
SQLAlchemy Store, the default) or `recorder` (the recorder's sqlite3 RecordingWriter).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from replay.storage import RecordingWriter, Store
from storage_testkit import chunk, recording_meta


def batch(store: Store | RecordingWriter, recording_id: int, worker: int, n: int) -> None:
    """Batch n: one chunk of 10 events, its call, an exception, the thread, the step count."""
    first = n * 10 + 1
    store.add_batch(
        recording_id,
        chunks=[chunk(1, n, first, 10)],
        calls=[
            {
                "call_id": n + 1,
                "function_id": 1,
                "thread_id": 1,
                "depth": 0,
                "first_step": first,
                "last_step": first + 9,
            }
        ],
        exceptions=[
            {
                "step": first + 5,
                "thread_id": 1,
                "call_id": n + 1,
                "kind": "raise",
                "type": "ValueError",
                "message": f"worker {worker} batch {n}",
                "line": 3,
            }
        ],
        functions=[{"function_id": 1, "file_id": 1, "name": "work", "qualname": "work"}],
        threads=[
            {
                "thread_id": 1,
                "ident": worker,
                "name": "MainThread",
                "first_step": 1,
                "last_step": first + 9,
            }
        ],
        recording={"steps": first + 9},
    )


def main() -> None:
    path, worker, batches, go, ready, *way = sys.argv[1:]
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.001)
    opened = RecordingWriter.open(path) if way == ["recorder"] else Store.open(path, mode="w")
    with opened as store:
        recording_id = store.create_recording(recording_meta(pid=int(worker)))
        print(f"recording {recording_id}", flush=True)
        n = 0
        while int(batches) == 0 or n < int(batches):
            batch(store, recording_id, int(worker), n)
            print(f"committed {n}", flush=True)
            n += 1


if __name__ == "__main__":
    main()
