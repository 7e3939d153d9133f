"""The sys.settrace backend, with its C core and its Python core, where a program meets it.

What the event-for-event parity test (tests/recorder/test_core_parity.py) cannot show: a program
that takes the trace function away and puts it back, and code that runs on a frame's behalf
without being called by it (the garbage collector's finalizers). Real subprocesses, a real store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import clean_env, replay, write

from replay.events import CALL, EXTERNAL
from replay.reader import open_recording
from replay.recorder import csettrace

CORES = [
    pytest.param(
        "c",
        marks=pytest.mark.skipif(
            csettrace.available() is not None, reason=f"no C core: {csettrace.available()}"
        ),
    ),
    "python",
]


def _record(tmp_path: Path, store: Path, core: str) -> list[tuple]:
    done = replay(
        "record", "--backend", "settrace", "--store", str(store), "app.py",
        cwd=tmp_path, env=clean_env(REPLAY_CORE=core),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"2 3\n"
    with open_recording(str(store)) as reader:
        return [event for _tid, event in reader.raw_events()]


@pytest.mark.parametrize("core", CORES)
def test_a_program_that_puts_the_trace_function_back_is_recorded_again(
    tmp_path: Path, store: Path, core: str
) -> None:
    # GIVEN a program that saves sys.gettrace(), turns tracing off for one call, then restores
    # it (what coverage.py and debuggers do)
    write(
        tmp_path / "app.py",
        """
        import sys

        def inc(x):
            return x + 1

        saved = sys.gettrace()
        sys.settrace(None)
        a = inc(1)
        sys.settrace(saved)
        b = inc(2)
        print(a, b)
        """,
    )
    # WHEN it is recorded THEN it runs as it would alone, and the call made with tracing off is
    # missing while the call after the restore is there, with its argument
    events = _record(tmp_path, store, core)
    calls = [dict(e[6] or ()) for e in events if e[0] == CALL]
    assert {"x": 2} in calls
    assert {"x": 1} not in calls


@pytest.mark.parametrize("core", CORES)
def test_what_the_garbage_collector_runs_is_not_a_call_of_the_program(
    tmp_path: Path, store: Path, core: str
) -> None:
    # GIVEN out-of-scope code (a library beside the program's directory) whose finalizer runs
    # when the garbage collector frees a reference cycle, while an in-scope frame runs
    library = tmp_path / "lib"
    write(
        library / "finalized.py",
        """
        class Cycle:
            def __init__(self):
                self.me = self

            def __del__(self):
                pass
        """,
    )
    app = tmp_path / "app"
    write(
        app / "app.py",
        f"""
        import gc, sys
        sys.path.insert(0, {str(library)!r})
        import finalized

        def churn():
            for _ in range(3):
                finalized.Cycle()
            gc.collect()
            return 2

        print(churn(), 3)
        """,
    )
    # WHEN recorded THEN the finalizer shows as no step of the program's
    events = _record(app, store, core)
    externals = [e[5][0] for e in events if e[0] == EXTERNAL]
    assert "finalized.Cycle.__init__" in externals  # what the program called, it shows
    assert not [name for name in externals if "__del__" in name], externals
    assert [e for e in events if e[0] == CALL]
