"""Run one command and measure it: wall time, peak RSS, the workload's checksum, a replay store.

Wall time is taken in this (parent) process with time.perf_counter() around the child, from
spawn to reaping, so it includes interpreter start-up and whatever a tracer does at exit (viztracer
writing its JSON, replay flushing its store). Peak RSS comes from os.wait4()'s rusage for that
child, which on Linux is the largest resident set of the child and of the descendants it waited
for (so `replay record -- python ...` reports its recorded Python child if that is the largest).
Workloads also report their own in-process time on stderr (`inner-seconds: X`): the hot part
alone, without start-up or exit work.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CHECKSUM = re.compile(r"^checksum: (.+)$", re.MULTILINE)
INNER = re.compile(r"^inner-seconds: ([0-9.]+)$", re.MULTILINE)
# pytest -q ends with e.g. "2044 passed, 3 skipped in 1.92s": the counts are the checksum.
PYTEST_SUMMARY = re.compile(r"^=*\s*(\d+ passed[^\n]*?)(?: in [0-9.]+s.*)?\s*=*$", re.MULTILINE)
PYTEST_TIME = re.compile(r"^=*\s*\d+ passed.* in ([0-9.]+)s\b", re.MULTILINE)
VIZTRACER_WRAPPED = "Circular buffer is full"


@dataclass
class Run:
    """One measured run of one command."""

    wall: float
    """Seconds, spawn to reap, measured by the parent."""
    maxrss_kib: int
    """Peak resident set size of the child (or its largest waited-for descendant), KiB."""
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def inner(self) -> float | None:
        """The workload's own in-process time, if it printed one (or pytest's session time)."""
        found = INNER.findall(self.stderr)
        if found:
            return float(found[-1])
        session = PYTEST_TIME.findall(self.stdout)
        return float(session[-1]) if session else None

    @property
    def checksum(self) -> str | None:
        """The workload's `checksum:` line, or pytest's pass/skip counts."""
        found = CHECKSUM.findall(self.stdout)
        if found:
            return found[-1].strip()
        summary = PYTEST_SUMMARY.findall(self.stdout)
        return summary[-1].strip() if summary else None

    def failure(self, expected_checksum: str | None) -> str | None:
        """Why this run does not count, or None when it is good."""
        if self.timed_out:
            return f"timed out after {self.wall:.0f} s"
        if self.returncode != 0:
            return f"exit {self.returncode}: {last_line(self.stderr) or last_line(self.stdout)}"
        if self.checksum is None:
            return f"no checksum in the output: {last_line(self.stderr) or last_line(self.stdout)}"
        if expected_checksum is not None and self.checksum != expected_checksum:
            return f"checksum {self.checksum!r} differs from the untraced {expected_checksum!r}"
        return None


def last_line(text: str) -> str:
    """The last non-blank line, cut to 200 characters (for error cells)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def run_command(
    argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float, out_dir: Path
) -> Run:
    """Run argv to completion (or kill its process group at `timeout`) and measure it."""
    out_path, err_path = out_dir / "stdout.txt", out_dir / "stderr.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        child = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # the group this Popen started, by id

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return Run(
        wall=wall,
        maxrss_kib=usage.ru_maxrss,
        returncode=child.returncode,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        timed_out=timed_out.is_set(),
    )


@dataclass
class StoreStats:
    """What a replay store holds after a run."""

    bytes: int
    """Size on disk: the database file plus any -wal file left beside it."""
    steps: int | None = None
    recordings: int | None = None
    error: str | None = None
    """Why steps could not be read (e.g. no store yet, or no recordings.steps column)."""


def read_store(path: Path) -> StoreStats:
    """File size and total steps (SELECT steps FROM recordings) of a replay store."""
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    if not path.exists():
        return StoreStats(bytes=0, error=f"no store was written at {path.name}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT steps FROM recordings").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return StoreStats(bytes=size, error=f"cannot read steps: {exc}")
    steps = [r[0] for r in rows if r[0] is not None]
    if not rows:
        return StoreStats(bytes=size, recordings=0, error="the store holds no recording")
    return StoreStats(bytes=size, steps=sum(steps), recordings=len(rows))


def file_size(path: Path | None) -> int | None:
    """Size of a tracer's output file, if it wrote one."""
    if path is None or not path.exists():
        return None
    return path.stat().st_size
