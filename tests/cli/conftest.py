"""Helpers for the command-line tests: real subprocesses, real stores in tmp_path.

Every test runs `python -m replay ...` with the interpreter running pytest, next to the same
program run by plain `python`, and compares what a user would see. Nothing of replay is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from replay.storage import Store

REPLAY = [sys.executable, "-m", "replay"]
TIMEOUT = 60


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without replay's own variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAY_")}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def run(
    argv: Sequence[str],
    cwd: Path,
    *,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    stderr_fd: int | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command to completion, capturing bytes (stderr to `stderr_fd` if given)."""
    return subprocess.run(
        list(argv),
        cwd=cwd,
        input=stdin if stdin is not None else b"",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stderr_fd is None else stderr_fd,
        env=env or clean_env(),
        timeout=TIMEOUT,
        check=False,
    )


def replay(*args: str, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """`python -m replay ARGS...`."""
    return run([*REPLAY, *args], cwd, **kwargs)


def replay_all(
    commands: Sequence[Sequence[str]], cwd: Path
) -> list[subprocess.CompletedProcess[bytes]]:
    """Several independent `python -m replay ...` at once (each costs an interpreter start)."""
    env = clean_env()
    started = [
        (
            list(command),
            subprocess.Popen(
                [*REPLAY, *command],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ),
        )
        for command in commands
    ]
    done = []
    for command, process in started:
        out, err = process.communicate(timeout=TIMEOUT)
        done.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return done


def python(*args: str, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Plain `python ARGS...`: the untraced reference."""
    return run([sys.executable, *args], cwd, **kwargs)


def write(path: Path, source: str) -> Path:
    """Write a program (dedented) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def ls_json(store: Path, cwd: Path) -> list[dict[str, Any]]:
    """`replay ls --json` of a store."""
    done = replay("ls", "--json", "--store", str(store), cwd=cwd)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def rows(store: Path) -> list[dict[str, Any]]:
    """The store's recordings rows, read here through the Store API (no interpreter start)."""
    with Store.open(store, mode="r") as opened:
        return opened.recordings()


def assert_one_line_error(done: subprocess.CompletedProcess[bytes]) -> str:
    """Bad input: non-zero exit, exactly one line on stderr, no traceback, nothing on stdout."""
    err = done.stderr.decode()
    assert done.returncode != 0, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert err.startswith("replay: error: "), err
    return err


def wait_for_line(process: subprocess.Popen[bytes], text: bytes, timeout: float = 20) -> None:
    """Read the process's stdout until a line holds `text`."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if text in line:
            return
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"never printed {text!r}")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store path in the test's directory (not created)."""
    return tmp_path / "test.db"
