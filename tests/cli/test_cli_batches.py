"""The C core hands a thread's events to the writer sooner when they carry big values.

The writer's backlog is bounded in lists of events (MAX_PENDING_BATCHES lists of at most
BATCH_EVENTS), so events that each carry a large changed value would hold far more memory than
events of small ones. The C core also counts the value nodes it encodes and hands a list off
once they reach two per event of a full batch. Checked on real recordings: a program whose lines
change three nested lists is stored in smaller chunks; one whose lines change ints is stored in
chunks of whole lists of BATCH_EVENTS (one, or up to four joined when the writer is behind:
writer.MERGED_CHUNK_EVENTS), but for the partial list the writer takes at each of its ticks;
both record every step.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import clean_env, replay, write
from replay.storage import Store

from replay.recorder import csettrace
from replay.recorder.state import BATCH_EVENTS
from replay.recorder.writer import FLUSH_INTERVAL, MERGED_CHUNK_EVENTS

pytestmark = pytest.mark.skipif(
    csettrace.available() is not None, reason="the C cores' hand-off rule"
)

PROGRAM = """
    import sys

    def work(n, big):
        a, b, c = ([[[0.5] * 4 for _ in range(4)] for _ in range(4)] for _ in range(3))
        total = 0
        for i in range(n):
            total += i
            if big: a[i % 4][i % 3][i % 2] = b[i % 3][i % 2][i % 4] = c[i % 2][i % 4][i % 3] = i
        return total

    print(work(int(sys.argv[1]), sys.argv[2] == "big"))
"""


def _chunk_sizes(store: Path) -> tuple[list[int], int, float]:
    """The chunks' sizes, the recording's steps and how long it ran (seconds)."""
    with Store.open(store, mode="r") as opened:
        (recording,) = opened.recordings()
        sizes = [chunk.n_events for chunk in opened.chunk_index(recording["id"])]
        return sizes, recording["steps"], recording["ended_at"] - recording["started_at"]


@pytest.mark.parametrize("values", ["big", "small"])
def test_lists_of_events_with_big_values_are_handed_off_sooner(tmp_path: Path, values: str) -> None:
    write(tmp_path / "prog.py", PROGRAM)
    store = tmp_path / "replay.db"
    done = replay(
        "record", "-q", "--store", str(store), "prog.py", "12000", values,
        cwd=tmp_path, env=clean_env(REPLAY_CORE="c"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    sizes, steps, seconds = _chunk_sizes(store)
    assert sum(sizes) == steps > 12000 * 2
    full = sizes[1:-1]  # the first and last lists hold what was left at start-up and exit
    if values == "big":
        assert max(full) < BATCH_EVENTS * 3 // 4, sizes  # 2500 to 2750 here, not 4096
    else:
        # Whole lists, but for the partial list the writer takes from the thread at each of its
        # ticks (FLUSH_INTERVAL): on a loaded machine the run lasts several ticks.
        partial = [size for size in full if size % BATCH_EVENTS]
        assert len(partial) <= seconds / FLUSH_INTERVAL + 1, (sizes, seconds)
        assert max(full) <= MERGED_CHUNK_EVENTS, sizes
