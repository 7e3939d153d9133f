"""Processes: children each become a recording of their own; signals end a recording cleanly.

`replay record -- COMMAND` and a recorded program's own children (subprocess, multiprocessing
with spawn and fork, os.fork) each write their own recording into the one store, linked to the
recording of the process that started them. SIGTERM, SIGINT and SIGKILL leave a readable store
and the exit status an untraced run would have.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import REPLAY, clean_env, ls_json, replay, rows, wait_for_line, write

FAMILY = """
    import multiprocessing as mp
    import os
    import subprocess
    import sys

    def work(n):
        total = n * 2
        return total

    def in_child(queue):
        queue.put(work(5))

    if __name__ == "__main__":
        if sys.argv[1:] == ["sub"]:
            subprocess.run([sys.executable, "-c", "print('grandchild')"], check=True)
            raise SystemExit(0)
        subprocess.run([sys.executable, __file__, "sub"], check=True)
        for method in ("spawn", "fork"):
            context = mp.get_context(method)
            queue = context.Queue()
            process = context.Process(target=in_child, args=(queue,))
            process.start()
            print(method, queue.get())
            process.join()
        pid = os.fork()
        if pid == 0:
            work(7)
            os._exit(0)
        os.waitpid(pid, 0)
        print("done")
"""

LOOP = """
    import time

    def tick(n):
        step = n + 1
        return step

    print("started", flush=True)
    n = 0
    while True:
        n = tick(n)
        if n % 50 == 0:
            time.sleep(0.001)
"""


def by_role(recs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    roles: dict[str, list[dict[str, Any]]] = {}
    for rec in recs:
        command = rec["command"]
        if "resource_tracker" in command:
            role = "helper"
        elif rec["parent_id"] is None:
            role = "top"
        elif "spawn_main" in command:
            role = "spawn"
        elif command.endswith("family.py sub"):
            role = "sub"
        elif "grandchild" in command:
            role = "grandchild"
        else:
            role = "fork"
        roles.setdefault(role, []).append(rec)
    return roles


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["command", "script"])
def test_every_python_process_is_its_own_recording(tmp_path: Path, store: Path, mode: str) -> None:
    write(tmp_path / "family.py", FAMILY)
    target = ["--", sys.executable, "family.py"] if mode == "command" else ["family.py"]
    done = replay("record", "--store", str(store), *target, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == ["grandchild", "spawn", "10", "fork", "10", "done"]
    recs = ls_json(store, tmp_path)
    roles = by_role(recs)
    [top], [sub], [grandchild], [spawn] = (roles[r] for r in ("top", "sub", "grandchild", "spawn"))
    forks = roles["fork"]
    assert len(forks) == 2, recs  # multiprocessing's fork worker and the os.fork child
    assert sub["parent_id"] == spawn["parent_id"] == top["id"]
    assert grandchild["parent_id"] == sub["id"]
    assert all(fork["parent_id"] == top["id"] for fork in forks)
    assert len({rec["pid"] for rec in recs}) == len(recs)
    for rec in [top, sub, grandchild, spawn, *forks]:
        assert (rec["status"], rec["exit_code"]) == ("ok", 0), rec
    for rec in [top, spawn, *forks]:
        assert rec["steps"] > 0, rec


def test_command_exit_status_and_recording(tmp_path: Path, store: Path) -> None:
    write(tmp_path / "child.py", "import sys\nprint(sys.argv[1:])\nraise SystemExit(4)\n")
    done = replay(
        "record", "--store", str(store), "--", sys.executable, "child.py", "--x", cwd=tmp_path
    )
    assert done.returncode == 4
    assert done.stdout == b"['--x']\n"
    assert done.stderr == b""
    [rec] = rows(store)
    assert (rec["status"], rec["exit_code"], rec["parent_id"]) == ("failed", 4, None)
    assert rec["command"].endswith("child.py --x")


def _default_sigint() -> None:
    # A test suite started in the background by a non-interactive shell (`(make test &)`)
    # inherits SIGINT ignored, and Python keeps an inherited SIG_IGN: the program under test
    # would never see the SIGINT these tests send. Start it as a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_sigint,  # noqa: PLW1509 - the test process starts no threads
    )


def stop(process: subprocess.Popen[bytes], signum: int, after: float = 0.3) -> tuple[int, bytes]:
    wait_for_line(process, b"started")
    time.sleep(after)
    process.send_signal(signum)
    _out, err = process.communicate(timeout=30)
    return process.returncode, err


@pytest.mark.slow
def test_sigterm_finishes_the_recording_and_exits_as_untraced(tmp_path: Path, store: Path) -> None:
    write(tmp_path / "loop.py", LOOP)
    untraced, _ = stop(start([sys.executable, "loop.py"], tmp_path), signal.SIGTERM)
    traced, err = stop(
        start([*REPLAY, "record", "--store", str(store), "loop.py"], tmp_path), signal.SIGTERM
    )
    assert untraced == traced == -signal.SIGTERM
    assert err == b""
    [rec] = rows(store)
    assert (rec["status"], rec["exit_code"]) == ("killed", 128 + signal.SIGTERM)
    assert rec["steps"] > 0


@pytest.mark.slow
def test_command_mode_forwards_sigterm_and_sigint(tmp_path: Path, store: Path) -> None:
    write(tmp_path / "loop.py", LOOP)
    command = [*REPLAY, "record", "--store", str(store), "--", sys.executable, "loop.py"]
    status, _ = stop(start(command, tmp_path), signal.SIGTERM)
    assert status == 128 + signal.SIGTERM  # the shell convention for a child killed by N
    status, err = stop(start(command, tmp_path), signal.SIGINT)
    assert status == 128 + signal.SIGINT
    assert err.decode().rstrip().endswith("KeyboardInterrupt")
    term, interrupted = rows(store)
    assert term["status"] == "killed"
    assert interrupted["status"] == "killed"
    assert interrupted["exception_type"] == "KeyboardInterrupt"


def test_the_programs_own_sigterm_handler_wins(tmp_path: Path, store: Path) -> None:
    write(
        tmp_path / "handler.py",
        """
        import signal, sys, time

        def handler(signum, frame):
            print("cleaning up", flush=True)
            sys.exit(0)

        signal.signal(signal.SIGTERM, handler)
        print("started", flush=True)
        while True:
            time.sleep(0.01)
        """,
    )
    process = start([*REPLAY, "record", "--store", str(store), "handler.py"], tmp_path)
    wait_for_line(process, b"started")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out, err) == (0, b"cleaning up\n", b"")
    [rec] = rows(store)
    assert (rec["status"], rec["exit_code"]) == ("ok", 0)


@pytest.mark.slow
def test_sigkill_leaves_a_readable_store(tmp_path: Path, store: Path) -> None:
    write(tmp_path / "loop.py", LOOP)
    process = start([*REPLAY, "record", "--store", str(store), "loop.py"], tmp_path)
    wait_for_line(process, b"started")
    time.sleep(2.5)  # more than the writer's flush interval (about a second)
    process.kill()
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db.close()
    [rec] = ls_json(store, tmp_path)
    assert rec["status"] == "incomplete"
    assert rec["steps"] > 0


def test_replays_own_command_line_is_never_recorded(tmp_path: Path, store: Path) -> None:
    done = replay(
        "record", "--store", str(store), "--", *REPLAY, "ls", "--store", str(store), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert b"No recordings" in done.stdout
    assert rows(store) == []
