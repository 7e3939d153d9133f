"""`replay debug` end to end: scripted sessions on stdin and with -c, errors as one line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from test_engine_breakpoints import line_of


def debug(store, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "replay", "debug", "--store", str(store), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_scripted_session_on_stdin(recordings):
    line = line_of("recursion", "total += item.price")
    script = "\n".join(
        [
            "n",
            "s",
            f"b recursion.py:{line} if total > 5",
            "c",
            "p total",
            "p order.items[3].price",
            "bt",
            "locals",
            "history total",
            "origin total",
            "list",
            "finish",
            "rf",
            "up",
            "args",
            "info breakpoints",
            "delete 1",
            "c",
            "rc",
            "goto 10",
            "help",
            "q",
            "n",  # after q: not run
        ]
    )
    done = debug(recordings[("recursion", "small")], stdin=script)
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert out.startswith("recording 1: ")
    assert "step 2  recursion.py:1 in <module>()" in out
    assert f"Breakpoint 1: line recursion.py:{line} if total > 5" in out
    assert f"recursion.py:{line} in checkout()" in out
    assert "\n9\n9\n" in out  # p total (0, 3, then 9 > 5), p order.items[3].price
    assert "#0   checkout(order=<__main__.Order" in out
    assert "total in checkout() (call " in out
    assert f"total = 9: set by line {line}, seen at step" in out
    assert "(no arguments)" in out  # main() takes none
    assert f"{line:>5} -> " in out  # list marks the current line
    assert "[return 30]" in out
    assert "(no breakpoint hit)" in out
    assert "step 10  " in out
    assert "reverse-continue" in out  # help
    assert out.count("(no breakpoint hit)") == 2  # c and rc after `delete 1`; `n` after q never ran


def test_commands_option(recordings):
    done = debug(
        recordings[("exceptions", "small")],
        "-c",
        'exception; bt; p n; b exception OrderError; rc; p "a;b"',
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "raised KeyError: 'key'" in out
    assert out.count(" deep(n=") == 4
    assert "\n0\n" in out
    assert "Breakpoint 1: exception exception OrderError" in out
    assert "in validate()" in out
    assert "'a;b'" in out


def test_errors_are_one_line_and_the_session_goes_on(recordings):
    commands = ["frobnicate", "p (", "p nosuch", "p __import__('os')", "goto 999999"]
    commands += ["thread 42", "b nowhere.py:3", "up 99", "n"]
    script = "\n".join(commands) + "\n"
    done = debug(recordings[("recursion", "small")], stdin=script)
    errors = done.stderr.splitlines()
    assert "Traceback" not in done.stderr + done.stdout
    assert errors == [
        "error: unknown command 'frobnicate' (type `help`)",
        "error: cannot parse '(': '(' was never closed",
        "error: 'nosuch' is not bound in this frame",
        errors[3],
        errors[4],
        "error: no thread 42 in the recording (threads: 1)",
        errors[6],
        "error: already at the outermost frame",
    ]
    assert "cannot call __import__" in errors[3]
    assert "outside the recording" in errors[4]
    assert "no recorded file matches 'nowhere.py'" in errors[6]
    assert "step 2  " in done.stdout  # the `n` after the errors ran
    assert done.returncode == 1  # a script with failed commands says so


def test_eof_and_empty_input(recordings):
    done = debug(recordings[("threads", "small")], stdin="")
    assert done.returncode == 0
    assert "4 threads" in done.stdout.splitlines()[0]


def test_thread_option_and_commands(recordings):
    done = debug(recordings[("threads", "small")], "--thread", "3", "-c", "thread; n; info threads")
    assert done.returncode == 0, done.stderr
    assert "thread 3" in done.stdout
    assert "* 3  " in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("7",), "no recording 7"),
        (("abc",), "is not a recording"),
    ],
)
def test_unknown_recording(recordings, args, message):
    done = debug(recordings[("recursion", "small")], *args)
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("replay: error: ") and message in lines[0]


def test_missing_store(tmp_path):
    done = debug(tmp_path / "none.db")
    assert done.returncode != 0
    assert len(done.stderr.splitlines()) == 1 and "does not exist" in done.stderr


def test_a_caller_shows_the_list_its_callee_changed(tmp_path):
    # GIVEN a recording of a callee appending to a list its caller holds, directly and in a dict
    (tmp_path / "app.py").write_text(
        "def append_one(xs):\n"
        "    xs.append(1)\n"
        "    return len(xs)\n"
        "\n"
        "\n"
        "def main():\n"
        "    items = []\n"
        "    order = {'items': items}\n"
        "    return append_one(items), order\n"
        "\n"
        "\n"
        "main()\n"
    )
    store = tmp_path / "app.db"
    recorded = subprocess.run(
        [sys.executable, "-m", "replay", "record", "-q", "--store", str(store), "app.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert recorded.returncode == 0, recorded.stderr
    # WHEN the debugger stops in the callee after the append and looks at the caller
    done = debug(store, "-c", "b app.py:3; c; p xs; up; p items; p order")
    # THEN the caller's variables show the list as the callee left it, not as they were at
    # the caller's own latest step (the call line)
    assert done.returncode == 0, done.stderr
    assert "[1]\n#1  main() at app.py:9\n[1]\n{'items': [1]}\n" in done.stdout, done.stdout
