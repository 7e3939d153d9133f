"""`replay record --max-overhead`: hot code recorded at call level, each demotion shown as a gap.

A real program whose hot function costs the recorder far more than the program itself runs
under a small budget (real subprocesses, a real store). The program must behave exactly as
untraced; the recording must hold a GAP step with reason `budget` naming the function; after
it, that function's calls still have their CALL and RETURN (arguments and results) but no
lines; and `show` and `export` present the gap. Timing decides *when* a function is demoted, so
the assertions are about what a demotion looks like, never about when it happened.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

import pytest
from conftest import assert_one_line_error, clean_env, python, replay, write
from replay.storage import Store

from replay.events import CALL, GAP, LINE, RESUME, RETURN, YIELD
from replay.recorder.budget import (
    CALLS,
    LINES,
    OFF,
    REVIEW_NS,
    CostMeter,
    OverheadBudget,
    parse_max_overhead,
)
from replay.recorder.scope import Scope
from replay.recorder.state import FrameState, RecordingState

# Both backends, each with both cores (the C one and the pure-Python fallback): settrace alone
# on 3.11, which has no sys.monitoring.
BACKENDS = ["sysmon", "settrace"] if sys.version_info >= (3, 12) else ["settrace"]
CORES = ["c", "python"]

PROGRAM = """
    import sys
    import time

    def hot(i):
        a = i * 3
        b = sum(range(2000)) % 7  # some of the program's own time per call: fewer steps
        c = a + b
        return c

    def main(n, seconds):
        # At least n calls, and for at least `seconds`: when the budget demotes `hot` depends on
        # the machine's speed and load, and calls must go on after it whenever that is.
        total = 0
        i = 0
        end = time.perf_counter() + seconds
        while i < n or time.perf_counter() < end:
            total += hot(i)
            i += 1
        print("at least", n, "calls")
        return total

    main(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
"""


def _events(store: Path) -> list[tuple]:
    """Every stored event of the store's one recording, in step order."""
    with Store.open(store, mode="r") as opened:
        recording = opened.recordings()[0]["id"]
        chunks = sorted(opened.chunk_index(recording), key=lambda c: c.first_step)
        events = [event for info in chunks for event in opened.read_chunk(info.id)]
    return sorted(events, key=lambda e: e[1])


def _record_under_budget(
    tmp_path: Path, store: Path, source: str, budget: str, args: list[str], backend: str, core: str
) -> tuple[list[tuple], dict[int, str]]:
    """Run `source` untraced, then recorded under `budget`: the program must behave the same.
    The recording's events in step order, and function id -> qualified name."""
    program = write(tmp_path / "program.py", source)
    untraced = python(str(program), *args, cwd=tmp_path)
    done = replay(
        "record", "--store", str(store), "--backend", backend, "--max-overhead", budget, "-q",
        str(program), *args, cwd=tmp_path, env=clean_env(REPLAY_CORE=core),
    )  # fmt: skip
    assert done.returncode == untraced.returncode == 0, done.stderr.decode()
    assert done.stdout == untraced.stdout
    with Store.open(store, mode="r") as opened:
        recording = opened.recordings()[0]["id"]
        functions = {i: f["qualname"] for i, f in opened.functions(recording).items()}
    return _events(store), functions


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_hot_function_goes_to_call_level_with_a_gap(
    tmp_path: Path, store: Path, backend: str, core: str
) -> None:
    events, functions = _record_under_budget(
        tmp_path, store, PROGRAM, "10%", ["2000", "0.4"], backend, core
    )
    gaps = [e for e in events if e[0] == GAP]
    assert gaps, "a 10% budget must demote the hot function"
    reasons = {e[5][0] for e in gaps}
    assert reasons == {"budget"}
    # Each gap belongs to the recorded call that was running where the budget decided.
    assert all(e[3] for e in gaps), gaps
    assert any(e[5][1].startswith("hot recorded at call level") for e in gaps), gaps

    # After the gap naming `hot`, its calls keep CALL and RETURN (with the argument and the
    # result) and have no LINE steps.
    gap_step = next(e[1] for e in gaps if e[5][1].startswith("hot "))
    hot_calls = {
        e[3] for e in events if e[0] == CALL and e[1] > gap_step and functions.get(e[5][0]) == "hot"
    }
    assert hot_calls, "hot keeps being called after its demotion"
    later = [e for e in events if e[3] in hot_calls]
    assert not [e for e in later if e[0] == LINE]
    calls = [e for e in later if e[0] == CALL]
    returns = [e for e in later if e[0] == RETURN]
    assert len(calls) == len(returns) == len(hot_calls)
    assert all(dict(e[6] or ())["i"] is not None for e in calls)
    assert all(isinstance(e[5], int) for e in returns)

    shown = replay("show", "--store", str(store), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr.decode()
    assert "gap (budget): hot recorded at call level" in shown.stdout.decode()

    exported = replay("export", "--store", str(store), "--format", "json", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr.decode()
    doc = json.loads(exported.stdout)
    gap_docs = [s["gap"] for s in doc["steps"] if s["kind"] == "gap"]
    assert any(g["reason"] == "budget" and g["detail"].startswith("hot ") for g in gap_docs)


TINY = """
    import sys
    import time

    def tiny(i):
        return i + 1

    def main(seconds):
        # A function far cheaper than recording even its calls: at call level the recorder
        # still costs many times the program, so the budget turns it off.
        total = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for i in range(200):
                total += tiny(i)
        print("done", total > 0)

    main(float(sys.argv[1]))
"""


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_what_costs_too_much_at_call_level_is_turned_off(
    tmp_path: Path, store: Path, backend: str, core: str
) -> None:
    events, functions = _record_under_budget(tmp_path, store, TINY, "20%", ["0.8"], backend, core)
    details = [e[5][1] for e in events if e[0] == GAP]
    assert all(e[3] for e in events if e[0] == GAP), details
    assert any(d.startswith("tiny recorded at call level from here") for d in details), details
    off = [e for e in events if e[0] == GAP and e[5][1].startswith("tiny not recorded from here")]
    assert len(off) == 1, details
    # No call of `tiny` starts after the gap; each one recorded before it has its RETURN.
    tiny_calls = [e for e in events if e[0] == CALL and functions.get(e[5][0]) == "tiny"]
    assert tiny_calls
    assert max(e[1] for e in tiny_calls) < off[0][1]
    returned = {e[3] for e in events if e[0] == RETURN}
    assert {e[3] for e in tiny_calls} <= returned

    shown = replay("show", "--store", str(store), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr.decode()
    assert "gap (budget): tiny not recorded from here" in shown.stdout.decode()


def test_no_budget_no_gaps(tmp_path: Path, store: Path) -> None:
    program = write(tmp_path / "hot.py", PROGRAM)
    done = replay("record", "--store", str(store), "-q", str(program), "3000", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert not [e for e in _events(store) if e[0] == GAP]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-overhead", "lots"], "takes a percentage such as 50% or a factor such as 2x"),
        (["--max-overhead", "0%"], "must be above 0%"),
        (["--max-overhead", "1x"], "must be above 0%"),
    ],
)
def test_bad_budget_is_one_line(tmp_path: Path, store: Path, args: list[str], message: str) -> None:
    program = write(tmp_path / "hot.py", PROGRAM)
    done = replay("record", "--store", str(store), *args, str(program), "10", cwd=tmp_path)
    assert message in assert_one_line_error(done)
    assert not store.exists()


def test_parse_max_overhead() -> None:
    assert parse_max_overhead("50%") == 0.5
    assert parse_max_overhead("2x") == 1.0
    assert parse_max_overhead(" 150 ") == 1.5
    assert parse_max_overhead("1.25X") == 0.25


def test_review_demotes_the_hottest_until_within_budget() -> None:
    budget = OverheadBudget(0.5)
    # 100 ms window: the recorder spent 60 ms, the program 40 ms (allowed: 20 ms).
    costs = [
        ("a", "a", 10_000_000, LINES),
        ("b", "b", 45_000_000, LINES),
        ("c", "c", 5_000_000, LINES),
    ]
    demoted = budget.review(100_000_000, costs)
    assert [(d.code, d.level) for d in demoted] == [("b", CALLS)]
    assert "b recorded at call level" in demoted[0].detail
    assert budget.review(100_000_000, [("a", "a", 10_000_000, LINES)]) == []


def test_review_turns_off_what_costs_too_much_even_at_call_level() -> None:
    budget = OverheadBudget(0.5)
    # "b" is at call level already and still costs 45 ms of 100: one level further down, off.
    costs = [("a", "a", 10_000_000, LINES), ("b", "b", 45_000_000, CALLS)]
    (demotion,) = budget.review(100_000_000, costs)
    assert (demotion.code, demotion.level) == ("b", OFF)
    assert demotion.detail.startswith("b not recorded from here: recording its calls alone took")
    # Code that is off is never a candidate again.
    assert budget.review(100_000_000, [("b", "b", 45_000_000, OFF)]) == []


def test_review_counts_the_writers_time_as_the_recorders() -> None:
    # 100 ms window: callbacks 30 ms, the writer 30 ms, so the program had 40 ms (allowed at
    # 50%: 20 ms). Callbacks alone would be within a budget of 100%; with the writer they are not.
    writer_ns = [0]
    costs = [("a", "a", 20_000_000, LINES), ("b", "b", 10_000_000, LINES)]
    alone = OverheadBudget(1.0)
    assert alone.review(100_000_000, costs) == []
    budget = OverheadBudget(1.0, lambda: writer_ns[0])
    writer_ns[0] += 30_000_000
    demoted = budget.review(100_000_000, costs)
    # Excess 60 - 40 = 20 ms; "a" costs 20 ms of callbacks and its 20 ms share of the writer.
    assert [d.code for d in demoted] == ["a"]
    assert "40% of the run time" in demoted[0].detail
    # The writer's time is counted once: the next window sees only what it spent since.
    assert budget.review(100_000_000, [("b", "b", 10_000_000, LINES)]) == []
    # A window with no callback time demotes nothing, whatever the writer did.
    writer_ns[0] += 90_000_000
    assert budget.review(100_000_000, []) == []


GENERATORS = """
    import sys
    import time

    def numbers(n):
        for i in range(n):
            yield i * 2

    def consume(seconds):
        # Short generators started all along, and one started first that runs to the end:
        # whatever the budget turns off, the one already running must end as recorded.
        total = 0
        end = time.perf_counter() + seconds
        long_lived = numbers(10**9)
        while time.perf_counter() < end:
            for x in numbers(50):
                total += x
            total += next(long_lived)
        print("done", total > 0)

    consume(float(sys.argv[1]))
"""


TINY_THEN_ASK = TINY.replace(
    'print("done", total > 0)',
    """tool = next((t for t in range(6) if sys.monitoring.get_tool(t) == "replay"), None)
        print("done", total > 0, "events", sys.monitoring.get_local_events(tool, tiny.__code__))""",
)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring needs Python 3.12+")
def test_code_turned_off_stops_calling_back_once_its_recorded_calls_ended(
    tmp_path: Path, store: Path
) -> None:
    # GIVEN a function the budget turns off (TINY), which the program goes on calling
    program = write(tmp_path / "program.py", TINY_THEN_ASK)
    # WHEN it is recorded by the C sysmon core
    done = replay(
        "record", "--store", str(store), "--backend", "sysmon", "--max-overhead", "20%", "-q",
        str(program), "0.8", cwd=tmp_path, env=clean_env(REPLAY_CORE="c"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    details = [e[5][1] for e in _events(store) if e[0] == GAP]
    assert any(d.startswith("tiny not recorded from here") for d in details), details
    # THEN sys.monitoring no longer calls the recorder back for it at all: no local events are
    # left on its code (each return of each new call cost a callback and two clock reads that
    # recorded nothing: a fifth of a demoted richards' run)
    assert done.stdout.decode().split() == ["done", "True", "events", "0"]


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_demoted_generators_keep_every_recorded_call_whole(
    tmp_path: Path, store: Path, backend: str, core: str
) -> None:
    events, functions = _record_under_budget(
        tmp_path, store, GENERATORS, "20%", ["0.6"], backend, core
    )
    started = {e[3]: e for e in events if e[0] == CALL}
    # Every step belongs to a call whose start was recorded: a generator resumed after its
    # code was demoted is one that started before.
    assert {e[3] for e in events} <= set(started)
    off = [e[1] for e in events if e[0] == GAP and e[5][1].startswith("numbers not recorded")]
    if off:  # how far the budget goes depends on the machine's speed
        later = [c for c in started.values() if c[1] > off[0]]
        assert not [c for c in later if functions.get(c[5][0]) == "numbers"]
    # The long-lived generator's call is whole: each YIELD is followed by its RESUME or is last.
    (long_lived,) = [c[3] for c in started.values() if dict(c[6] or ()).get("n") == 10**9]
    kinds = [e[0] for e in events if e[3] == long_lived and e[0] in (YIELD, RESUME)]
    assert kinds and kinds[0] == YIELD
    assert all(a != b for a, b in itertools.pairwise(kinds))

    exported = replay("export", "--store", str(store), "--format", "json", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr.decode()
    assert json.loads(exported.stdout)["steps"]


def test_the_meter_reviews_only_inside_a_recorded_call() -> None:
    # The Python cores' meter: a window that ends as the last recorded frame returns (the
    # thread's stack empty) is reviewed at the next callback inside a recorded call, so that
    # each budget gap belongs to a call.
    def hot() -> None:
        pass

    state = RecordingState(Scope("/nonexistent-scope"), lambda name, value: value)
    state.register_code(hot.__code__)
    meter = CostMeter(OverheadBudget(0.01), state)
    ts = state.thread_state()
    time.sleep(1.5 * REVIEW_NS / 1e9)  # a window is over
    late = time.perf_counter_ns() - REVIEW_NS  # a callback that took a whole window
    meter.charge(hot.__code__, late)
    assert meter.levels == {}
    assert not [e for e in ts.events if e[0] == GAP]
    ts.stack.append(FrameState(7, 0, hot.__code__))
    ts.stack[-1].line = 3
    meter.charge(hot.__code__, late)
    assert meter.levels == {id(hot.__code__): CALLS}
    (gap,) = [e for e in ts.events if e[0] == GAP]
    assert (gap[3], gap[4], gap[5][0]) == (7, 3, "budget")
