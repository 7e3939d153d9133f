"""The C sysmon core carries its fingerprinter's log of parts from one event to the next.

Between two events of a thread that only a quiet line separates (state.quiet_lines: loads,
local stores, calls, operators, comparisons), the program cannot have changed an object a value
shows, so the next event's walks copy what the last one's learnt instead of walking it again
(_fingerprint.h, fp_carry_into). What must hold for that: the lines are classified right, a line
that can change an object is never quiet, and no other thread of the program could have run in
between. Whether the recorded values stay exact is checked by the parity suite
(parity_programs/carried_memo.py: a container replaced at a dead one's address on a quiet line).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from replay.recorder import csysmon
from replay.recorder.state import quiet_lines

needs_c_sysmon = pytest.mark.skipif(
    csysmon.available() is not None, reason=f"no C sysmon core here: {csysmon.available()}"
)

# Records `run()` of the program in `sys.argv[1]` with the C sysmon core, events dropped (as
# benchmarks/core_only.py does), and prints the tracer's counters as JSON. With `--writer`, a
# thread that waits meanwhile is announced as the recorder's writer (set_writer_thread).
HARNESS = textwrap.dedent(
    """
    import json, runpy, sys, threading
    from replay.recorder.core import make_core
    from replay.recorder.identity import IdentityMap
    from replay.recorder.redaction import Redactor
    from replay.recorder.scope import Scope
    from replay.recorder.snapshot import CaptureLimits, SnapshotEncoder
    from replay.recorder.state import RecordingState

    path, mode = sys.argv[1], sys.argv[2]
    program = runpy.run_path(path)
    encoder = SnapshotEncoder(CaptureLimits(), Redactor(), IdentityMap())
    state = RecordingState(Scope(path.rsplit("/", 1)[0]), encoder.encode_named)
    state.max_pending = 0
    state.on_backlog = lambda: state.handoff.clear()
    core = make_core("c-sysmon", state, encoder.encode_exception)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait) if mode != "alone" else None
    if other is not None:
        other.start()
        if mode == "writer":
            state.set_writer_thread(other.ident)
    core.start()
    try:
        program["run"]()
    finally:
        core.stop()
        stop.set()
        if other is not None:
            other.join()
    print(json.dumps(core._tracer.counters()))
    """
)

PROGRAM = textwrap.dedent(
    """
    class Node:
        def __init__(self, value, child=None):
            self.value = value
            self.child = child

        def depth(self):
            child = self.child
            if child is None:
                return 1
            return 1 + child.depth()


    def run():
        tree = Node(1, Node(2, Node(3, Node(4))))
        total = 0
        for _ in range(200):
            top = tree
            n = top.depth()
            total = total + n
        return total
    """
)


def counters(tmp_path: Path, mode: str) -> dict[str, int]:
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    harness = tmp_path / "harness.py"
    harness.write_text(HARNESS)
    done = subprocess.run(
        [sys.executable, str(harness), str(program), mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


@needs_c_sysmon
def test_quiet_lines_carry_the_log_from_event_to_event(tmp_path: Path) -> None:
    # GIVEN a program whose lines between calls only load, call, compare and rebind locals
    # WHEN it is recorded with no other thread of its own
    carried = counters(tmp_path, "alone")["logs_carried"]
    # THEN most of its events take the log of the one before
    assert carried > 1000


@needs_c_sysmon
def test_no_log_is_carried_while_another_thread_of_the_program_lives(tmp_path: Path) -> None:
    # GIVEN the same program, with a second thread of its own alive (waiting) meanwhile: it
    # could run between any two events and change what the last walks saw
    # WHEN it is recorded
    # THEN no event takes the log of the one before
    assert counters(tmp_path, "thread")["logs_carried"] == 0


@needs_c_sysmon
def test_the_recorders_writer_thread_does_not_count_as_the_programs(tmp_path: Path) -> None:
    # GIVEN the second thread announced as the recorder's writer (it runs no program code)
    # WHEN the program is recorded
    # THEN the log is carried as when the program is alone
    assert counters(tmp_path, "writer")["logs_carried"] > 1000


def _lines(source: str) -> frozenset[int]:
    code = compile(textwrap.dedent(source), "<test>", "exec")
    function = next(c for c in code.co_consts if hasattr(c, "co_code"))
    return frozenset(line - function.co_firstlineno for line in quiet_lines(function))


def test_lines_that_may_change_or_make_a_container_are_not_quiet() -> None:
    # GIVEN a function mixing quiet lines with every kind of line that may change an object
    # in place, or make a container a value could show, without a call the core sees
    quiet = _lines(
        """
        def f(xs, d, o, g, k):
            a = xs                 # 1 quiet: a local rebound
            b = a + xs             # 2 quiet: a new list, from an operator (checked by its tag)
            c = o.attr == k        # 3 quiet: an attribute read, a comparison
            n = len(xs)            # 4 quiet: a call (an event of its own)
            if a is not None and k in d:  # 5 quiet: identity and containment tests
                pass
            xs += b                # 7 extends xs in place
            o.attr = 1             # 8 sets an attribute
            d[k] = 2               # 9 sets an item
            e = d[k]               # 10 a subscript: a defaultdict inserts the key
            t = [a, b]             # 11 builds a list
            for x in g:            # 12 iterates: a generator's code runs without an event
                pass               # 13 quiet: the jump back, then the loop's line (an event)
            del d[k]               # 14 deletes an item
            return a               # 15 quiet
        """
    )
    # THEN exactly the lines that only load, call, compute and rebind locals are quiet (0: the
    # `def` line, the prologue)
    assert quiet == {0, 1, 2, 3, 4, 5, 6, 13, 15}


LIBRARY = textwrap.dedent(
    """
    class Box:
        def __init__(self, items, callback):
            self.items = items
            self.callback = callback

        @property
        def grown(self):
            self.items[0].append(len(self.items[0]))
            return self.callback(self.items)
    """
)

APP = textwrap.dedent(
    """
    import sys

    sys.path.insert(0, sys.argv[1])
    from watched import Box


    def seen(items):
        return len(items)


    def main():
        items = [[0]]
        box = Box(items, seen)
        for _ in range(4):
            view = items
            n = box.grown
        return n


    main()
    """
)


@needs_c_sysmon
def test_code_out_of_scope_between_a_caller_and_its_callee_stops_the_carry(
    tmp_path: Path,
) -> None:
    # GIVEN a quiet line whose attribute load runs a library's property (out of scope: no
    # event), which changes an object inside a list the caller's last event walked, then calls
    # back into the program with that list
    lib, app = tmp_path / "lib", tmp_path / "app"
    lib.mkdir()
    app.mkdir()
    (lib / "watched.py").write_text(LIBRARY)
    (app / "main.py").write_text(APP)
    store = tmp_path / "s.db"
    # WHEN the program is recorded with the C sysmon core
    record = [sys.executable, "-m", "replay", "record", "-q", "--backend", "sysmon"]
    subprocess.run(
        [*record, "--store", str(store), "main.py", str(lib)],
        cwd=app,
        env={**os.environ, "REPLAY_CORE": "c"},
        check=True,
        capture_output=True,
        timeout=120,
    )
    exported = subprocess.run(
        [sys.executable, "-m", "replay", "export", "--store", str(store)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    # THEN each call of the callback shows the list as the property left it: the callee's walk
    # did not take the caller's, since code out of scope ran between them
    calls = [
        step["changes"]["items"]
        for step in json.loads(exported.stdout)["steps"]
        if step["function"] == "seen" and step["kind"] == "call"
    ]
    inner = [[item["repr"] for item in value["items"][0]["items"]] for value in calls]
    assert inner == [["0", "1"], ["0", "1", "2"], ["0", "1", "2", "3"], ["0", "1", "2", "3", "4"]]
