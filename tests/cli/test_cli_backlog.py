"""`replay record --on-backlog block|drop`, end to end, with a writer that falls behind on purpose.

The test hook REPLAY_INJECT_WRITER_DELAY makes the writer sleep per chunk it writes (a slow disk),
so the traced program outruns it. Under `drop` the program must run exactly as untraced, and the
recording must say where and why events are missing: GAP steps with their reason, an
`events_dropped` that counts exactly the missing steps, and `show`, `export` and `debug` that
present the gaps, on a recording still readable end to end. Under `block` nothing is missing.
Real subprocesses and real stores; the stored events are read back through the Store API.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_one_line_error, clean_env, python, replay, rows, write
from replay.storage import Store

from replay.engine import Engine
from replay.events import GAP

PROGRAM = """
    import os
    import sys
    import time

    def leaf(i):
        x = i * 3
        y = x % 7
        return x + y

    def middle(n):
        total = 0
        for i in range(n):
            total += leaf(i)
        return total

    def numbers(n):
        for i in range(n):
            yield i * i

    def main(rounds, fail):
        acc = 0
        for r in range(rounds):
            acc += middle(40)
            acc += sum(numbers(4))
        print("checksum", acc)
        time.sleep(float(os.environ.get("SETTLE", "0")))
        if fail:
            acc = acc / (acc - acc)
        return acc

    main(int(sys.argv[1]), len(sys.argv) > 2)
"""
ROUNDS = "500"  # about 155,000 steps: 38 chunks
DELAY = "0.1"  # seconds per chunk: 4 s of writing under block; far behind the program under drop
# Seconds the failing run waits before it fails, so that the failure lands in the thread's last
# (partial) list, which is never dropped: without it, the list holding the exception could be
# the last one handed off, and dropped while the writer is busy (what `drop` does to any list).
# The writer catches up within about 2 s (its queue holds at most about twice the bound of 8
# lists, written at DELAY each).
SETTLE = "4"

# The C core where it exists (3.12+), and the pure-Python core; on 3.11 both are settrace's.
CORES = ["default"] + (["python"] if sys.version_info >= (3, 12) else [])


def stored(store: Path) -> tuple[dict[str, Any], dict[int, list[tuple]]]:
    """The latest recording's row and every thread's events in step order (Store API)."""
    with Store.open(store, mode="r") as opened:
        rec = opened.latest_recording_id()
        assert rec is not None
        meta = opened.recording(rec)
        threads: dict[int, list[tuple]] = {}
        for info in sorted(opened.chunk_index(rec), key=lambda c: c.first_step):
            threads.setdefault(info.thread_id, []).extend(opened.read_chunk(info.id))
    return meta, threads


def record(cwd: Path, store: Path, *args: str, **env: str) -> Any:
    environment = clean_env(REPLAY_INJECT_WRITER_DELAY=DELAY, **env)
    return replay("record", "--store", str(store), *args, cwd=cwd, env=environment)


@pytest.fixture(scope="module", params=CORES)
def dropped(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, Any, Any]:
    """(cwd, store, recorded run, untraced run) of the program failing at the end, under drop."""
    cwd = tmp_path_factory.mktemp("drop")
    write(cwd / "prog.py", PROGRAM)
    store = cwd / "drop.db"
    env = {"REPLAY_CORE": "python"} if request.param == "python" else {}
    env["SETTLE"] = SETTLE
    done = record(cwd, store, "--on-backlog", "drop", "prog.py", ROUNDS, "fail", **env)
    untraced = python("prog.py", ROUNDS, "fail", cwd=cwd)
    return cwd, store, done, untraced


def test_drop_leaves_the_program_alone_and_counts_exactly_the_missing_steps(
    dropped: tuple[Path, Path, Any, Any],
) -> None:
    # GIVEN a program recorded under --on-backlog drop with a writer slower than the program
    _cwd, store, done, untraced = dropped
    # THEN the program's output, errors and exit status are the untraced ones
    assert untraced.returncode == 1
    assert (done.returncode, done.stdout, done.stderr) == (
        untraced.returncode,
        untraced.stdout,
        untraced.stderr,
    )
    # AND events were dropped, and each dropped run is one GAP step with its reason
    meta, threads = stored(store)
    assert meta["config"]["on_backlog"] == "drop"
    assert meta["status"] == "failed"
    assert meta["events_dropped"] > 0
    events = [event for thread in threads.values() for event in thread]
    gaps = [event for event in events if event[0] == GAP]
    assert gaps
    for gap in gaps:
        reason, detail = gap[5]
        assert reason == "backlog"
        assert re.fullmatch(r"[\d,]+ events dropped: the writer fell behind", detail), detail
        assert gap[6] is None and gap[7] is None  # a gap changes no variable
    # AND steps still increase in every thread, and are unique across threads
    for thread in threads.values():
        steps = [event[1] for event in thread]
        assert steps == sorted(set(steps))
    assert len({event[1] for event in events}) == len(events)
    # AND events_dropped is exactly the number of steps without an event (a GAP stands at the
    # first step of its run), and the sum of what the GAPs say
    recorded = {event[1] for event in events if event[0] != GAP}
    missing = set(range(1, meta["steps"] + 1)) - recorded
    assert len(missing) == meta["events_dropped"]
    assert {gap[1] for gap in gaps} <= missing
    said = sum(int(gap[5][1].split()[0].replace(",", "")) for gap in gaps)
    assert said == meta["events_dropped"]
    # AND the calls that ran after a gap still have their rows (their CALL was kept)
    with Store.open(store, mode="r") as opened:
        known = {row["call_id"] for row in opened.calls(meta["id"])}
    assert {event[3] for event in events if event[0] != GAP} <= known


def test_drop_gaps_are_shown_by_show_export_and_debug(
    dropped: tuple[Path, Path, Any, Any],
) -> None:
    # GIVEN the recording with gaps
    cwd, store, _done, _untraced = dropped
    meta, threads = stored(store)
    gaps = [event for thread in threads.values() for event in thread if event[0] == GAP]
    first = gaps[0]
    # WHEN it is exported THEN every gap is a `gap` step with its reason and detail
    exported = replay("export", "--store", str(store), "--format", "json", cwd=cwd)
    assert exported.returncode == 0, exported.stderr.decode()
    doc = json.loads(exported.stdout)
    assert doc["recording"]["events_dropped"] == meta["events_dropped"]
    gap_steps = [step for step in doc["steps"] if step["kind"] == "gap"]
    assert [step["step"] for step in gap_steps] == sorted(gap[1] for gap in gaps)
    assert gap_steps[0]["gap"] == {"reason": "backlog", "detail": first[5][1]}
    assert len(doc["steps"]) == meta["steps"] - meta["events_dropped"] + len(gaps)
    # WHEN shown THEN the header counts the dropped events, and the gaps are listed with
    # their reason; the exception's frame that lived through them says so
    shown = replay("show", "--store", str(store), cwd=cwd)
    assert shown.returncode == 0, shown.stderr.decode()
    text = shown.stdout.decode()
    assert f"dropped   {meta['events_dropped']:,} events in {len(gaps):,} gap(s)" in text
    assert f"Gaps ({len(gaps):,}): events are missing" in text
    assert f"step {first[1]:,}" in text
    assert f"gap (backlog): {first[5][1]}" in text
    failure = text[text.index("Uncaught ZeroDivisionError") :]
    main = failure[failure.index("  main  prog.py") :]
    assert "while it ran, backlog:" in main
    # WHEN debugged THEN a gap step says what is missing and why, a jump into the missing steps
    # names the gap, and `info gaps` lists them all
    debugged = replay(
        "debug",
        "--store",
        str(store),
        "-c",
        f"info gaps; goto {first[1] - 1}; step; goto {first[1] + 1}; info recording",
        cwd=cwd,
    )
    assert debugged.returncode == 0, debugged.stderr.decode()
    out = debugged.stdout.decode()
    assert f"{meta['events_dropped']:,} events dropped: see `info gaps`" in out
    assert out.count("gap (backlog): ") >= len(gaps) + 1
    assert f"step {first[1]}  prog.py" in out
    assert f"[gap (backlog): {first[5][1]}]" in out
    assert f"step {first[1] + 1} was not recorded: lost in the gap at step {first[1]}" in out
    assert f"{meta['events_dropped']:,} events dropped, in {len(gaps):,} gap(s)" in out


def test_drop_recording_is_readable_end_to_end_by_the_engine(
    dropped: tuple[Path, Path, Any, Any],
) -> None:
    # GIVEN the recording with gaps, opened by the engine
    _cwd, store, _done, _untraced = dropped
    with Engine.open(store, persist_index=False) as engine:
        # WHEN its whole index is built and every gap is visited and stepped across
        engine.build_index()
        gaps = engine.gaps()
        assert gaps and all(gap.reason == "backlog" for gap in gaps)
        for gap in gaps:
            engine.goto(gap.step)
            assert engine.cursor.gap == gap
            assert engine.stack()  # the frame the gap fell in, and its callers
            engine.goto(gap.step - 1)
            if engine.cursor.step == gap.step - 1:
                stop = engine.step()  # stepping onto the gap
                assert (stop.step, engine.cursor.kind) == (gap.step, "gap")
            else:
                # The step before fell in the previous gap, which ends where this one starts
                # (the writer took that run before the next list was dropped): goto stands
                # on the first recorded step after it, this gap.
                assert gaps.index(gap) > 0
                assert (engine.cursor.step, engine.cursor.kind) == (gap.step, "gap")
            after = engine.step()  # and across it
            assert after.step > gap.step
            frames = engine.stack()
            assert all(frame.function != "?" for frame in frames)
            assert [frame.function for frame in frames][-2:] == ["main", "<module>"]
            assert frames[-1].gap is None  # <module> was waiting in main() all along
            engine.goto(gap.step - 1)
            if engine.cursor.kind == "line":  # a next in the frame stops at the gap
                stop = engine.next()
                assert (stop.step, stop.reason) == (gap.step, "gap")
        # THEN the uncaught exception is still where it was raised, after the gaps
        stop = engine.goto_exception()
        assert engine.cursor.kind == "exception"
        assert stop.step > gaps[-1].step


def test_block_waits_for_the_slow_writer_and_loses_nothing(tmp_path: Path) -> None:
    # GIVEN the same program and the same slow writer, under the default policy (block)
    write(tmp_path / "prog.py", PROGRAM)
    store = tmp_path / "block.db"
    done = record(tmp_path, store, "prog.py", ROUNDS)
    untraced = python("prog.py", ROUNDS, cwd=tmp_path)
    # THEN the program ran as untraced
    assert (done.returncode, done.stdout, done.stderr) == (0, untraced.stdout, untraced.stderr)
    # AND every step is there: no gap, nothing dropped
    meta, threads = stored(store)
    assert meta["config"]["on_backlog"] == "block"
    assert meta["events_dropped"] == 0
    events = [event for thread in threads.values() for event in thread]
    assert not [event for event in events if event[0] == GAP]
    assert sorted(event[1] for event in events) == list(range(1, meta["steps"] + 1))
    shown = replay("show", "--store", str(store), cwd=tmp_path).stdout.decode()
    assert "dropped" not in shown and "Gaps" not in shown


def test_the_policy_reaches_child_processes_through_the_environment(tmp_path: Path) -> None:
    # GIVEN REPLAY_ON_BACKLOG=drop, and a command that runs the program as a child process
    write(tmp_path / "prog.py", PROGRAM)
    store = tmp_path / "child.db"
    done = record(
        tmp_path, store, "--", sys.executable, "prog.py", ROUNDS, REPLAY_ON_BACKLOG="drop"
    )
    assert done.returncode == 0, done.stderr.decode()
    # THEN the child was recorded under drop, and shows its gaps
    (row,) = rows(store)
    assert row["config"]["on_backlog"] == "drop"
    assert row["events_dropped"] > 0
    _meta, threads = stored(store)
    assert any(event[0] == GAP for thread in threads.values() for event in thread)


@pytest.mark.parametrize(
    ("args", "env", "where"),
    [
        (["--on-backlog", "sometimes"], {}, "--on-backlog"),
        ([], {"REPLAY_ON_BACKLOG": "never"}, "REPLAY_ON_BACKLOG"),
    ],
)
def test_a_bad_policy_is_one_line_before_anything_runs(
    tmp_path: Path, args: list[str], env: dict[str, str], where: str
) -> None:
    write(tmp_path / "prog.py", "print('ran')\n")
    done = replay(
        "record", "--store", str(tmp_path / "x.db"), *args, "prog.py",
        cwd=tmp_path, env=clean_env(**env),
    )  # fmt: skip
    err = assert_one_line_error(done)
    assert f"{where} must be one of block, drop" in err
    assert done.returncode == 2
    assert b"ran" not in done.stdout
    assert not (tmp_path / "x.db").exists()
