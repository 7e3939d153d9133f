"""The overhead suite: every workload untraced and under each tracer, interleaved, per Python.

`python -m benchmarks [--quick] [--python 3.12 ...] [--workloads a,b] [--tracers x,y]` (from the
repository root, with any Python >= 3.11). For each Python version found it prepares the venv
(environments.py), then for each workload: one untraced warm-up run (which also fixes the
expected checksum), then N rounds; a round runs the untraced program first and then each tracer in
an order rotated by one each round, so that drift on a shared machine hits every column alike.
The median of each column's runs is compared with the median of the untraced runs. Results go to
benchmarks/results/results.json (every run) and results.md (report.py renders it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import RESULTS_DIR
from benchmarks import suite as suite_mod
from benchmarks import tracers as tracers_mod
from benchmarks.environments import (
    SUPPORTED,
    SetupError,
    VenvSetup,
    describe_machine,
    ensure_venv,
    fetch_test_suite,
    find_python,
)
from benchmarks.measure import VIZTRACER_WRAPPED, file_size, last_line, read_store, run_command
from benchmarks.report import add_ratios, render_markdown
from benchmarks.suite import Workload
from benchmarks.tracers import UNTRACED, Tracer, Venv, coverage_core

SCHEMA = 1
"""results.json layout version (report.py reads it)."""


@dataclass
class Options:
    """The command line, parsed."""

    quick: bool
    pythons: list[str]
    workloads: list[Workload]
    tracers: list[Tracer]
    rounds: int
    timeout: float
    cell_budget: float
    max_ratio: float
    min_timeout: float
    reinstall: bool
    output: Path


@dataclass
class Cell:
    """One workload under one tracer on one Python: its runs and what they measured."""

    python: str
    workload: str
    tracer: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    store: dict[str, Any] | None = None
    output_bytes: int | None = None
    notes: list[str] = field(default_factory=list)
    spent: float = 0.0
    stopped_after: float | None = None
    """Wall seconds at which a run was stopped for exceeding --max-ratio."""
    command: str | None = None
    """The last run's command line and added environment (temporary paths vary per run)."""

    def to_json(self) -> dict[str, Any]:
        """The cell with its medians, as stored in results.json."""
        walls = [r["wall"] for r in self.runs]
        inners = [r["inner"] for r in self.runs if r["inner"] is not None]
        rss = [r["maxrss_kib"] for r in self.runs]
        return {
            "python": self.python,
            "workload": self.workload,
            "tracer": self.tracer,
            "wall": statistics.median(walls) if walls else None,
            "inner": statistics.median(inners) if inners else None,
            "maxrss_kib": int(statistics.median(rss)) if rss else None,
            "error": self.error,
            "store": self.store,
            "output_bytes": self.output_bytes,
            "stopped_after": self.stopped_after,
            "command": self.command,
            "notes": self.notes,
            "runs": self.runs,
        }


def parse_args(argv: list[str] | None) -> Options:
    """Parse the command line into Options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer, smaller workloads, 3 rounds, replay's default core only "
        "(about 2 minutes a Python)",
    )
    parser.add_argument(
        "--python",
        action="append",
        metavar="X.Y",
        choices=SUPPORTED,
        help="a Python version to run (repeatable; default: all found)",
    )
    parser.add_argument(
        "--workloads",
        metavar="A,B",
        help="only these workloads, at the mode's size: "
        + ", ".join(w.name for w in suite_mod.WORKLOADS),
    )
    parser.add_argument(
        "--tracers",
        metavar="A,B",
        help="only these tracers (untraced always runs): "
        + ", ".join(t.name for t in tracers_mod.TRACERS),
    )
    parser.add_argument("--rounds", type=int, help="runs per column (default 3 quick, 5 full)")
    parser.add_argument(
        "--timeout",
        type=float,
        help="seconds before any run is stopped (default 300 quick, 1800 full)",
    )
    parser.add_argument(
        "--max-ratio",
        type=float,
        help="stop a traced run at this many times the untraced run's wall time "
        "(default 30 quick, 100 full; replay's columns only) and report it as '>Nx'",
    )
    parser.add_argument(
        "--cell-budget",
        type=float,
        help="stop adding runs to a column once its runs took this many seconds "
        "(default 30 quick, 120 full); at least one run is always made",
    )
    parser.add_argument("--reinstall", action="store_true", help="rebuild the benchmark venvs")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR, help="results directory")
    ns = parser.parse_args(argv)
    try:
        workloads = suite_mod.select(_names(ns.workloads), ns.quick)
        tracers = tracers_mod.select(_names(ns.tracers), ns.quick)
    except ValueError as exc:
        parser.error(str(exc))
    return Options(
        quick=ns.quick,
        pythons=ns.python or list(SUPPORTED),
        workloads=workloads,
        tracers=tracers,
        rounds=ns.rounds or (3 if ns.quick else 5),
        timeout=ns.timeout or (300.0 if ns.quick else 1800.0),
        # 30 s in --quick: replay's nbody column takes 9 to 11 s a run, and with 8 s it was
        # measured once, which moved the headline by several points from run to run.
        cell_budget=ns.cell_budget or (30.0 if ns.quick else 120.0),
        max_ratio=ns.max_ratio or (30.0 if ns.quick else 100.0),
        min_timeout=3.0 if ns.quick else 10.0,
        reinstall=ns.reinstall,
        output=ns.output,
    )


def _names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def log(message: str) -> None:
    """Progress on stderr."""
    print(message, file=sys.stderr, flush=True)


def child_env(venv: Venv, extra: dict[str, str]) -> dict[str, str]:
    """The environment of a measured run: this one, minus knobs that would change the run."""
    dropped = ("REPLAY_", "COVERAGE_", "PYTHON", "PYTEST_", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env["PATH"] = f"{venv.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv.root)
    env["PYTHONHASHSEED"] = "0"
    env.update(extra)
    return env


def probe_replay(setup: VenvSetup) -> tuple[str | None, str]:
    """(error, help text) of `replay record --help` in the venv: is the recorder there yet?"""
    if setup.project_error:
        return setup.project_error, ""
    venv = setup.venv
    try:
        done = subprocess.run(
            [venv.bin("replay"), "record", "--help"],
            capture_output=True,
            text=True,
            env=child_env(venv, {}),
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"replay record --help: {exc}", ""
    if done.returncode != 0:
        why = last_line(done.stderr) or last_line(done.stdout)
        return f"`replay record --help` exited {done.returncode}: {why}", ""
    return None, done.stdout


def coverage_core_in_use(venv: Venv) -> str:
    """The core coverage.py reports with our COVERAGE_CORE setting (e.g. SysMonitor, CTracer)."""
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as tmp:
        script = Path(tmp) / "x.py"
        script.write_text("x = 1\n")
        done = subprocess.run(
            [
                venv.python,
                "-m",
                "coverage",
                "run",
                f"--data-file={tmp}/.coverage",
                "--debug=sys",
                str(script),
            ],
            capture_output=True,
            text=True,
            cwd=tmp,
            env=child_env(venv, {"COVERAGE_CORE": coverage_core(venv)}),
            check=False,
        )
    for line in (done.stdout + done.stderr).splitlines():
        if line.strip().startswith("core:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


class WorkloadRunner:
    """Measures one workload on one venv: warm-up, then interleaved rounds."""

    def __init__(
        self,
        setup: VenvSetup,
        workload: Workload,
        options: Options,
        replay_error: str | None,
        replay_help: str,
    ) -> None:
        self.venv = setup.venv
        self.workload = workload
        self.options = options
        self.target = workload.target(workload.args(options.quick))
        self.tracers = [t for t in options.tracers if t.applies(workload)]
        self.cells = {
            t.name: Cell(self.venv.version, workload.name, t.name)
            for t in [UNTRACED, *self.tracers]
        }
        for tracer in self.tracers:
            if tracer.replay and replay_error:
                self.cells[tracer.name].error = replay_error
            elif tracer.needs and tracer.needs not in replay_help:
                self.cells[tracer.name].error = f"`replay record` has no {tracer.needs} option yet"
        self.expected: str | None = None
        self.warm_wall = 0.0

    def run(self) -> list[Cell]:
        """Warm up, run the rounds, return every cell (errors included)."""
        tag = f"[{self.venv.version}] {self.workload.name}"
        warm = self.measure(UNTRACED, record=False)
        if warm is not None:
            log(f"{tag}: warm-up failed: {warm}")
            for cell in self.cells.values():
                cell.error = cell.error or f"the untraced run failed: {warm}"
            return list(self.cells.values())
        for round_ in range(self.options.rounds):
            shift = round_ % max(1, len(self.tracers))
            order = self.tracers[shift:] + self.tracers[:shift]
            for tracer in [UNTRACED, *order]:
                cell = self.cells[tracer.name]
                if cell.error or (cell.runs and cell.spent >= self.options.cell_budget):
                    continue
                failure = self.measure(tracer, record=True)
                if failure:
                    cell.error = failure
                    log(f"{tag}: {tracer.name} failed: {failure}")
            log(f"{tag}: round {round_ + 1}/{self.options.rounds} {self._progress()}")
        for cell in self.cells.values():
            if cell.runs and len(cell.runs) < self.options.rounds and not cell.error:
                cell.notes.append(
                    f"{len(cell.runs)} of {self.options.rounds} runs (the column's time budget "
                    f"of {self.options.cell_budget:.0f} s was spent)"
                )
        return list(self.cells.values())

    def measure(self, tracer: Tracer, *, record: bool) -> str | None:
        """Run the workload under one tracer once; return why it failed, or None."""
        cell = self.cells[tracer.name]
        timeout = self.timeout_for(tracer) if record else self.options.timeout
        with tempfile.TemporaryDirectory(prefix=f"replay-bench-{tracer.name}-") as tmp:
            invocation = tracer.build(self.venv, self.target, Path(tmp))
            env_text = " ".join(f"{k}={v}" for k, v in invocation.env.items())
            cell.command = " ".join([*([env_text] if env_text else []), *invocation.argv])
            run = run_command(
                invocation.argv,
                cwd=self.workload.cwd(),
                env=child_env(self.venv, invocation.env),
                timeout=timeout,
                out_dir=Path(tmp),
            )
            if not record:
                # The warm-up: compiles bytecode, warms caches, and fixes the expected checksum.
                self.expected = run.checksum
                self.warm_wall = run.wall
                return run.failure(None)
            cell.spent += run.wall
            if run.timed_out and timeout < self.options.timeout:
                cell.stopped_after = run.wall
                return (
                    f"stopped after {run.wall:.1f} s (--max-ratio: {self.options.max_ratio:.0f}x "
                    f"the untraced warm-up's {self.warm_wall:.2f} s, at least "
                    f"{self.options.min_timeout:.0f} s)"
                )
            failure = run.failure(self.expected)
            if failure:
                return failure
            cell.runs.append({"wall": run.wall, "inner": run.inner, "maxrss_kib": run.maxrss_kib})
            if invocation.store is not None:
                stats = read_store(invocation.store)
                cell.store = {
                    "bytes": stats.bytes,
                    "steps": stats.steps,
                    "recordings": stats.recordings,
                    "error": stats.error,
                }
            cell.output_bytes = file_size(invocation.trace_file)
            if tracer.name == "viztracer" and VIZTRACER_WRAPPED in run.stdout + run.stderr:
                note = "ring buffer full: viztracer kept the last 1M entries and dropped the rest"
                if note not in cell.notes:
                    cell.notes.append(note)
        return None

    def timeout_for(self, tracer: Tracer) -> float:
        """The run's time limit: --max-ratio times the untraced warm-up, within the bounds."""
        if not tracer.capped or tracer is UNTRACED:
            return self.options.timeout
        capped = max(self.options.min_timeout, self.options.max_ratio * self.warm_wall)
        return min(self.options.timeout, capped)

    def _progress(self) -> str:
        base = self.cells["untraced"].runs
        if not base:
            return ""
        untraced = statistics.median(r["wall"] for r in base)
        parts = [f"untraced {untraced:.2f}s"]
        for tracer in self.tracers:
            cell = self.cells[tracer.name]
            if cell.runs:
                ratio = statistics.median(r["wall"] for r in cell.runs) / untraced
                parts.append(f"{tracer.name} {ratio:.2f}x")
            elif cell.stopped_after:
                parts.append(f"{tracer.name} >{cell.stopped_after / untraced:.0f}x")
            elif cell.error:
                parts.append(f"{tracer.name} n/a")
        return ", ".join(parts)


def run_python(version: str, options: Options, results: dict[str, Any]) -> None:
    """Set up one Python's venv and measure every workload on it."""
    found = find_python(version)
    if found is None:
        log(f"[{version}] not found (~/.pyenv/versions/{version}.* or python{version} on PATH)")
        results["pythons"][version] = {"error": "not found on this machine"}
        return
    executable, full_version = found
    log(f"[{version}] using {executable} ({full_version})")
    try:
        setup = ensure_venv(version, executable, full_version, log, reinstall=options.reinstall)
    except SetupError as exc:
        log(f"[{version}] venv setup failed: {exc}")
        results["pythons"][version] = {"version": full_version, "error": str(exc)}
        return
    replay_error, replay_help = probe_replay(setup)
    if replay_error:
        log(f"[{version}] replay columns will be n/a: {replay_error}")
    results["pythons"][version] = {
        "version": full_version,
        "executable": executable,
        "venv": str(setup.venv.root),
        "packages": setup.packages,
        "coverage_core": coverage_core_in_use(setup.venv),
        "replay_error": replay_error,
    }
    for workload in options.workloads:
        if workload.module is not None:
            try:
                fetch_test_suite(setup.venv, log)
            except SetupError as exc:
                log(f"[{version}] {workload.name}: {exc}")
                results["cells"].append(
                    Cell(version, workload.name, "untraced", error=str(exc)).to_json()
                )
                continue
        runner = WorkloadRunner(setup, workload, options, replay_error, replay_help)
        results["cells"].extend(cell.to_json() for cell in runner.run())
        write_results(results, options.output)


def write_results(results: dict[str, Any], output: Path) -> None:
    """results.json and results.md, rewritten after every workload (a crash keeps the rest)."""
    output.mkdir(parents=True, exist_ok=True)
    add_ratios(results)
    (output / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (output / "results.md").write_text(render_markdown(results))


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m benchmarks`."""
    options = parse_args(argv)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "command": " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)]),
        "mode": "quick" if options.quick else "full",
        "rounds": options.rounds,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": describe_machine(),
        "pythons": {},
        "tracers": {
            t.name: {"label": t.label, "description": t.description}
            for t in [UNTRACED, *options.tracers]
        },
        "workloads": {
            w.name: {
                "description": w.description,
                "cpu_bound": w.cpu_bound,
                "args": list(w.args(options.quick)),
                "notes": list(w.notes),
            }
            for w in options.workloads
        },
        "cells": [],
    }
    for version in options.pythons:
        run_python(version, options, results)
    results["duration_s"] = round(time.perf_counter() - started, 1)
    write_results(results, options.output)
    log(f"wrote {options.output / 'results.md'} and results.json in {results['duration_s']:.0f} s")
    return 0
