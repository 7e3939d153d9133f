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
) -> subprocess.CompletedProcess[bytes]:
    """Run a command to completion, capturing bytes."""
    return subprocess.run(
        list(argv),
        cwd=cwd,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=env or clean_env(),
        timeout=TIMEOUT,
        check=False,
    )


def replay(*args: str, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """`python -m replay ARGS...`."""
    return run([*REPLAY, *args], cwd, **kwargs)


def python(*args: str, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Plain `python ARGS...`: the untraced reference."""
    return run([sys.executable, *args], cwd, **kwargs)


def write(path: Path, source: str) -> Path:
    """Write a program (dedented) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def recordings(store: Path, cwd: Path) -> list[dict[str, Any]]:
    """`replay ls --json` of a store."""
    done = replay("ls", "--json", "--store", str(store), cwd=cwd)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


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
