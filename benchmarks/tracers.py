"""The tracers the suite compares: how each one wraps a workload's command line.

Each tracer turns a Target (a script or a module, with arguments) into an Invocation: the argv
to run, the environment variables it adds, and where it writes its output (a temporary directory
the harness makes per run and removes after measuring). The untraced run is a tracer too, the
baseline. Columns in results.md follow the order of TRACERS.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import BENCH_DIR
from benchmarks.suite import Target, Workload


@dataclass(frozen=True)
class Venv:
    """A benchmark venv: one Python version with the project and the peers installed."""

    version: str
    """Major.minor, e.g. "3.12"."""
    root: Path
    full_version: str = ""
    """e.g. "3.12.1"."""

    @property
    def python(self) -> str:
        """The venv's interpreter."""
        return str(self.root / "bin" / "python")

    def bin(self, name: str) -> str:
        """A console script installed in the venv."""
        return str(self.root / "bin" / name)

    @property
    def version_tuple(self) -> tuple[int, int]:
        """(3, 12) for "3.12"."""
        major, minor = self.version.split(".")[:2]
        return int(major), int(minor)


@dataclass(frozen=True)
class Invocation:
    """A command line ready to run."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    """Added to the run's environment."""
    store: Path | None = None
    """The replay store this run writes, read back for steps and size."""
    trace_file: Path | None = None
    """Another tracer's output file, whose size is recorded."""


Builder = Callable[[Venv, Target, Path], Invocation]


@dataclass(frozen=True)
class Tracer:
    """One column of the results table."""

    name: str
    label: str
    description: str
    build: Builder
    applies: Callable[[Workload], bool] = lambda _w: True
    replay: bool = False
    """A replay recording: its store is read for steps, bytes per step and size."""
    needs: str | None = None
    """A `replay record --help` word this tracer needs (e.g. "--keep"); skipped when missing."""
    in_quick: bool = True
    """Run in --quick (unless --tracers names it)."""
    capped: bool = False
    """Stopped at --max-ratio times the untraced run. Only replay's columns are: a recorder
    under development can be thousands of times slower, the peers are known and measured whole."""


def coverage_core(venv: Venv) -> str:
    """coverage.py's fastest core on this version: sysmon on 3.12+, the C tracer before."""
    return "sysmon" if venv.version_tuple >= (3, 12) else "ctrace"


def _untraced(venv: Venv, target: Target, _tmp: Path) -> Invocation:
    return Invocation([venv.python, *target.python_args()])


def _replay_argv(venv: Venv, target: Target, store: Path, options: list[str]) -> list[str]:
    argv = [venv.bin("replay"), "record", "--store", str(store), *options]
    if target.script is not None:
        return [*argv, str(target.script), *target.args]
    # A module workload (the test suite) is wrapped as a command: every Python process it starts
    # is recorded, as a user would run `replay record -- python -m pytest`.
    return [*argv, "--", venv.python, *target.python_args()]


def _replay(venv: Venv, target: Target, tmp: Path) -> Invocation:
    store = tmp / "replay.db"
    return Invocation(_replay_argv(venv, target, store, []), store=store)


def _replay_python(venv: Venv, target: Target, tmp: Path) -> Invocation:
    store = tmp / "replay.db"
    argv = _replay_argv(venv, target, store, [])
    return Invocation(argv, env={"REPLAY_CORE": "python"}, store=store)


def _replay_records(venv: Venv, target: Target, tmp: Path) -> Invocation:
    store = tmp / "replay.db"
    argv = _replay_argv(venv, target, store, [])
    return Invocation(argv, env={"REPLAY_VALUE_MODEL": "records"}, store=store)


def _replay_keep_failed(venv: Venv, target: Target, tmp: Path) -> Invocation:
    store = tmp / "replay.db"
    return Invocation(_replay_argv(venv, target, store, ["--keep", "failed"]), store=store)


def _replay_budget(venv: Venv, target: Target, tmp: Path) -> Invocation:
    store = tmp / "replay.db"
    argv = _replay_argv(venv, target, store, ["--max-overhead", "100%"])
    return Invocation(argv, store=store)


def _cprofile(venv: Venv, target: Target, _tmp: Path) -> Invocation:
    return Invocation([venv.python, "-m", "cProfile", "-o", os.devnull, *target.python_args()])


def _coverage(venv: Venv, target: Target, tmp: Path) -> Invocation:
    data = tmp / ".coverage"
    argv = [venv.python, "-m", "coverage", "run", f"--data-file={data}", *target.python_args()]
    return Invocation(argv, env={"COVERAGE_CORE": coverage_core(venv)}, trace_file=data)


def _viztracer(venv: Venv, target: Target, tmp: Path) -> Invocation:
    out = tmp / "viztracer.json"
    return Invocation(
        [venv.bin("viztracer"), "-o", str(out), *target.python_args()], trace_file=out
    )


def _pysnooper(venv: Venv, target: Target, _tmp: Path) -> Invocation:
    runner = str(BENCH_DIR / "snoop_runner.py")
    return Invocation([venv.python, runner, str(target.script), *target.args])


UNTRACED = Tracer("untraced", "untraced", "python w.py", _untraced)

TRACERS: tuple[Tracer, ...] = (
    Tracer(
        "replay",
        "replay",
        "replay record --store S w.py (full recording, default core)",
        _replay,
        replay=True,
        capped=True,
    ),
    Tracer(
        "replay-py",
        "replay (py core)",
        "REPLAY_CORE=python replay record ... (the pure-Python fallback core)",
        _replay_python,
        replay=True,
        in_quick=False,
        capped=True,
    ),
    Tracer(
        "replay-records",
        "replay (records)",
        "REPLAY_VALUE_MODEL=records replay record ... (object records, not yet the default)",
        _replay_records,
        replay=True,
        in_quick=False,
        capped=True,
    ),
    Tracer(
        "replay-keep-failed",
        "replay --keep failed",
        "replay record --keep failed ... (request workloads only)",
        _replay_keep_failed,
        applies=lambda w: w.requests,
        replay=True,
        capped=True,
        needs="--keep",
    ),
    Tracer(
        "replay-budget",
        "replay --max-overhead 100%",
        "replay record --max-overhead 100% ... (request workloads only: hot code at call level, "
        "then off)",
        _replay_budget,
        applies=lambda w: w.requests,
        replay=True,
        capped=True,
    ),
    Tracer("cprofile", "cProfile", "python -m cProfile -o /dev/null w.py", _cprofile),
    Tracer(
        "coverage",
        "coverage.py",
        "COVERAGE_CORE=sysmon (3.12+) or ctrace (3.11) python -m coverage run w.py",
        _coverage,
    ),
    Tracer(
        "viztracer",
        "viztracer",
        "viztracer -o out.json w.py (defaults: 1M-entry ring buffer, JSON written at exit)",
        _viztracer,
    ),
    Tracer(
        "pysnooper",
        "PySnooper",
        "pysnooper.snoop(depth=40) around the workload's run(), output to /dev/null",
        _pysnooper,
        applies=lambda w: w.snoop and w.script is not None,
    ),
)


def select(names: list[str] | None, quick: bool = False) -> list[Tracer]:
    """The tracers to run: the named ones, else all (in --quick, those marked in_quick).

    The untraced baseline always runs and is not in this list.
    """
    if not names:
        return [t for t in TRACERS if t.in_quick or not quick]
    known = {t.name: t for t in TRACERS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown tracer(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names]
