"""Object records in the store (REPLAY_VALUE_MODEL=records): what they save, how they stay whole.

The parity suite (test_core_parity.py) and the fidelity suite check that a recording of object
records reads back as the very events of a recording of trees. Here: the records are what the
store holds (a change in place is one small record, not a tree per name that reaches it), each
chunk holds every record its entries need even where the writer's ticks cut a slow thread's
list and where a hand-off keeps events back for the next list, and bad input is refused in one
line.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from replay.storage import Store

from replay.events import LINE, V_ERROR, V_SEQ
from replay.object_records import (
    R_GROWN,
    R_MAP,
    R_SEQ,
    V_OREF,
    ExpansionLimits,
    apply_record,
    expand_events,
    grown,
)
from replay.reader import open_recording
from replay.recorder import csettrace
from replay.recorder.csysmon import _ctracer
from replay.recorder.versions import carry_records

REPLAY = (sys.executable, "-m", "replay")
CORES = ["python"] + (["c"] if csettrace.available() is None else [])
LIMITS = ExpansionLimits(max_depth=4, max_items=64, max_attrs=64, max_nodes=1024)

# Three names reach each body: a change to one velocity changes the trees of `v`, `bodies`
# and `pairs`, which a recording of trees writes whole, and a recording of records as one list.
CASCADE = """
bodies = [([float(i), 1.0, 2.0], [0.5, 0.25, 0.125], 5.0 + i) for i in range(5)]
pairs = [(bodies[i], bodies[j]) for i in range(5) for j in range(i + 1, 5)]
for _ in range(300):
    for (p1, v1, m1), (p2, v2, m2) in pairs:
        d = (p1[0] - p2[0]) * 0.001
        v1[0] -= d * m2
        v2[0] += d * m1
print(round(bodies[0][1][0], 9))
"""

# A thread slower than the writer's tick (0.5 s): the writer asks it to cut its list rather
# than cutting it between an event's records and its append. A worker that ends while its
# list is partial is cut by the writer itself.
SLOW = """
import threading, time
shared = {"items": [1, 2], "more": {"x": [3]}}
def worker(box):
    box.append([len(box)])
    box[-1].append(0)
t = threading.Thread(target=worker, args=([["w"]],))
t.start(); t.join()
for round_ in range(3):
    shared["items"].append(round_)
    shared["more"]["x"].append([round_])
    time.sleep(0.6)
    shared["more"]["x"][-1].append("after")
print(len(shared["items"]))
"""


def record(tmp_path: Path, source: str, values: str, name: str, core: str = "python") -> Path:
    program = tmp_path / f"{name}.py"
    program.write_text(textwrap.dedent(source))
    store = tmp_path / f"{name}-{values}-{core}.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAY_")}
    done = subprocess.run(
        [*REPLAY, "record", "-q", "--store", str(store), str(program)],
        cwd=tmp_path,
        env={**env, "PYTHONHASHSEED": "0", "REPLAY_CORE": core, "REPLAY_VALUE_MODEL": values},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "internal fault" not in done.stderr
    return store


def record_both(tmp_path: Path, source: str, name: str, core: str) -> tuple[Path, Path]:
    """The program recorded as trees, then as object records, by `core`."""
    return (
        record(tmp_path, source, "trees", name, core),
        record(tmp_path, source, "records", name, core),
    )


def stored_bytes(store: Path) -> int:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT sum(length(data)) FROM chunks").fetchone()[0]


def events_of(store: Path) -> list[tuple[int, tuple]]:
    with open_recording(str(store)) as reader:
        return list(reader.raw_events())


def lost_values(events: list[tuple[int, tuple]]) -> list[tuple[int, str]]:
    """(step, name) of every value the reader showed as lost or failed (a `V_ERROR` tree)."""
    return [
        (e[1], n) for _t, e in events for n, t in e[6] or () if type(t) is tuple and t[0] == V_ERROR
    ]


def named_values(events: list[tuple[int, tuple]]) -> list[tuple[int, str, Any]]:
    """(step, name, tree without object ids) of every change: ids are serials per run."""

    def scrub(v: Any) -> Any:
        if type(v) is tuple and v and v[0] in (5, 6, 7, 8, 9):  # tags that carry an obj id
            return (v[0], *map(scrub, v[2:]))
        if type(v) in (list, tuple):
            return type(v)(map(scrub, v))
        if type(v) is dict:
            return {k: scrub(x) for k, x in v.items()}
        return v

    return [
        (event[1], name, scrub(tree))
        for _tid, event in events
        for name, tree in event[6] or ()
        if name not in ("_", "t")  # the Thread object: its state depends on the scheduler
    ]


@pytest.mark.parametrize("core", CORES)
def test_a_change_in_place_is_stored_once_not_in_every_name_that_reaches_it(
    tmp_path: Path, core: str
) -> None:
    trees, records = record_both(tmp_path, CASCADE, "cascade", core)
    # The same changes read back (the parity suite checks every field of every event) ...
    assert named_values(events_of(records)) == named_values(events_of(trees))
    # ... from a store that holds each velocity list's new version, not three trees.
    assert stored_bytes(records) < 0.6 * stored_bytes(trees)
    with Store.open(str(records), mode="r") as store:
        rid = store.latest_recording_id()
        raw = [e for info in store.chunk_index(rid) for e in store.read_chunk(info.id)]
    line_changes = [dict(e[6]) for e in raw if e[0] == LINE and e[6]]
    # a velocity line: the list's record under its obj id, and the names as references
    moved = next(c for c in line_changes if "pairs" in c and "bodies" in c)
    assert moved["pairs"][0] == V_OREF and moved["bodies"][0] == V_OREF
    assert [k for k in moved if type(k) is int], "the changed list's record is in the event"
    assert all(v[0] == R_SEQ for k, v in moved.items() if type(k) is int)


@pytest.mark.parametrize("core", CORES)
def test_every_chunk_holds_the_records_its_entries_need_across_writer_ticks(
    tmp_path: Path, core: str
) -> None:
    trees, records = record_both(tmp_path, SLOW, "slow", core)
    with Store.open(str(records), mode="r") as store:
        chunks = store.chunk_index(store.latest_recording_id())
    assert len(chunks) >= 3, "the writer's ticks cut the main thread's list"
    got = events_of(records)
    assert lost_values(got) == []
    assert named_values(got) == named_values(events_of(trees))


def test_events_kept_back_at_a_hand_off_take_their_records_along() -> None:
    # A list handed off with two records (a list holding another), and kept-back events whose
    # entry refers to the outer list without its record: the records the list made before.
    inner = (R_SEQ, "list", 1, [7])
    outer = (R_SEQ, "list", 2, [1, (V_OREF, 2)])
    handed = [
        (LINE, 1, 0, 1, 1, None, ((2, inner), (1, outer), ("xs", (V_OREF, 1))), None),
        (LINE, 2, 0, 1, 2, None, (("n", 3),), None),
    ]
    kept = [
        (LINE, 3, 0, 1, 3, None, None, None),
        (LINE, 4, 0, 1, 4, None, (("ys", (V_OREF, 1)),), None),
    ]
    alone = expand_events(list(kept), LIMITS)
    assert alone[1][6][0][1][0] == V_ERROR  # without the carry: lost, said so, no crash
    carry_records(handed, kept)
    assert kept[1] == (LINE, 4, 0, 1, 4, None, (("ys", (V_OREF, 1)),), None)
    expanded = expand_events(kept, LIMITS)
    assert expanded[0][6] is None  # records alone change no name
    assert expanded[1][6] == (("ys", (V_SEQ, 1, "list", 2, [1, (V_SEQ, 2, "list", 1, [7])])),)


def test_bad_settings_and_unreadable_recordings_are_one_line_errors(tmp_path: Path) -> None:
    program = tmp_path / "p.py"
    program.write_text("x = [1]\nx.append(2)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAY_")}
    for extra in ({"REPLAY_VALUE_MODEL": "graphs"}, {"REPLAY_VALUE_MODEL": "tree"}):
        done = subprocess.run(
            [*REPLAY, "record", "-q", "--store", str(tmp_path / "bad.db"), str(program)],
            cwd=tmp_path,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "REPLAY_VALUE_MODEL" in done.stderr
    # A recording of records whose metadata lost its capture limits cannot be expanded:
    # readers say so rather than guess trees.
    store = record(tmp_path, "x = [1]\nx.append(2)\n", "records", "small")
    with sqlite3.connect(store) as db:
        db.execute("UPDATE recordings SET config = json_remove(config, '$.limits')")
    before = store.read_bytes()
    done = subprocess.run(
        [*REPLAY, "export", "--store", str(store), "--format", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert (
        done.stderr.strip().splitlines() == [done.stderr.strip()]
        and "capture limits" in done.stderr
    )
    assert store.read_bytes() == before


GROWN = [pytest.param(grown, id="python")]
if _ctracer is not None and hasattr(_ctracer, "_grown"):
    GROWN.append(pytest.param(_ctracer._grown, id="c"))


@pytest.mark.parametrize("grown", GROWN)
def test_a_list_or_dict_that_grows_is_written_as_what_it_gained(grown: Any) -> None:
    old = (R_SEQ, "list", 2, [1, (V_OREF, 5)])
    longer = (R_SEQ, "list", 3, [1, (V_OREF, 5), "x"])
    assert grown(old, longer) == (R_GROWN, 3, ["x"])
    past_max_items = (R_SEQ, "list", 900, [1, (V_OREF, 5)])
    assert grown(old, past_max_items) == (R_GROWN, 900, [])
    changed = (R_SEQ, "list", 2, [2, (V_OREF, 5)])
    assert grown(old, changed) is changed  # an item replaced: the whole record
    assert grown(old, (R_SEQ, "tuple", 3, [1, (V_OREF, 5), 0]))[0] == R_SEQ  # another type
    pairs = (R_MAP, "dict", 1, [("a", 1)])
    assert grown(pairs, (R_MAP, "dict", 2, [("a", 1), ("b", 2)])) == (R_GROWN, 2, [("b", 2)])
    table = {7: old}
    apply_record(table, 7, (R_GROWN, 3, ["x"]))
    assert table[7] == longer
    apply_record(table, 8, (R_GROWN, 3, ["x"]))  # nothing to grow: dropped, shown as lost
    assert 8 not in table
    inner = (R_SEQ, "list", 1, [0])
    events = [
        (LINE, 1, 0, 1, 1, None, ((5, inner), (7, old), ("xs", (V_OREF, 7))), None),
        (LINE, 2, 0, 1, 2, None, ((7, (R_GROWN, 3, ["x"])), ("xs", (V_OREF, 7))), None),
    ]
    xs = expand_events(events, LIMITS)[1][6][0][1]
    assert xs == (V_SEQ, 7, "list", 3, [1, (V_SEQ, 5, "list", 1, [0]), "x"])


def test_events_kept_back_with_a_growth_take_the_record_it_grows() -> None:
    old = (R_SEQ, "list", 1, [(V_OREF, 2)])
    handed = [
        (LINE, 1, 0, 1, 1, None, ((2, (R_SEQ, "list", 0, [])), (1, old), ("xs", (V_OREF, 1))), None)
    ]
    kept = [(LINE, 2, 0, 1, 2, None, ((1, (R_GROWN, 2, [3])), ("xs", (V_OREF, 1))), None)]
    carry_records(handed, kept)
    expanded = expand_events(kept, LIMITS)
    assert expanded[0][6] == (("xs", (V_SEQ, 1, "list", 2, [(V_SEQ, 2, "list", 0, []), 3])),)


# A thread that records a little, then waits: the writer's ticks must still write what it
# recorded, as they do for trees, so that a process killed while it waits keeps it.
IDLE = """
import sys, time
orders = {"a": [1, 2]}
for n in range(40):
    orders["a"].append(n)
    orders[f"k{n}"] = [n]
print("started", flush=True)
time.sleep(60)
"""


# The Python cores' threads cut their own lists (at their next event): a thread of a recording
# of object records that waits keeps its list until it wakes (docs/internals.md).
WAITING = [("python", "trees")] + ([("c", "trees"), ("c", "records")] if "c" in CORES else [])


@pytest.mark.parametrize(("core", "values"), WAITING)
def test_a_thread_that_waits_has_its_list_written_before_it_is_killed(
    tmp_path: Path, core: str, values: str
) -> None:
    # GIVEN a recording whose only thread recorded, then went to sleep
    program = tmp_path / "idle.py"
    program.write_text(textwrap.dedent(IDLE))
    store = tmp_path / "idle.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAY_")}
    process = subprocess.Popen(
        [*REPLAY, "record", "-q", "--store", str(store), str(program)],
        cwd=tmp_path,
        env={**env, "REPLAY_CORE": core, "REPLAY_VALUE_MODEL": values},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"started\n"
        # WHEN it is killed outright after a few of the writer's ticks (0.5 s each)
        deadline = time.monotonic() + 10
        steps = 0
        while time.monotonic() < deadline and steps == 0:
            time.sleep(0.5)
            with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
                steps = db.execute("SELECT coalesce(sum(n_events), 0) FROM chunks").fetchone()[0]
    finally:
        process.kill()
        process.communicate(timeout=30)
    # THEN the store holds every step it recorded before it slept, each value whole
    assert steps > 0, "the sleeping thread's list was never written"
    got = events_of(store)
    assert lost_values(got) == []
    last = [tree for _t, e in got for n, tree in e[6] or () if n == "orders"][-1]
    assert last[3] == 41  # the dict's length: "a" and k0..k39


# Threads that pause between short bursts, sharing one dict: the writer takes their lists while
# they pause (take_idle_list), each list must still hold every record its entries need, and no
# event may be lost or written twice.
PAUSING = """
import threading, time
shared = {"hits": []}
lock = threading.Lock()
def work(name):
    mine = []
    for n in range(300):
        mine.append([n])
        with lock:
            shared["hits"].append(name)
            seen = len(shared["hits"])
        time.sleep(0.005)
    return mine, seen
threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(shared["hits"]))
"""


@pytest.mark.parametrize("core", ["c"] if "c" in CORES else [])
def test_lists_taken_from_pausing_threads_hold_every_step_and_record(
    tmp_path: Path, core: str
) -> None:
    store = record(tmp_path, PAUSING, "records", "pausing", core)
    with Store.open(str(store), mode="r") as db:
        rid = db.latest_recording_id()
        chunks = db.chunk_index(rid)
    got = events_of(store)
    steps = [event[1] for _tid, event in got]
    assert len(steps) == len(set(steps)), "a step written twice"
    assert sorted(steps) == list(range(1, len(steps) + 1)), "a step lost"
    assert lost_values(got) == []
    # the workers' lists went to the store while the workers ran, not only when they ended
    by_thread: dict[int, int] = {}
    for info in chunks:
        by_thread[info.thread_id] = by_thread.get(info.thread_id, 0) + 1
    assert max(by_thread.values()) >= 3
    lengths = [t[3] for _t, e in got for n, t in e[6] or () if n == "mine"]
    assert max(lengths) == 300
