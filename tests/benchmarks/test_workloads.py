"""Sanity tests of the benchmark suite: its programs work, its results table renders as intended.

No timing here, and nothing is asserted about speed: these check that every workload script runs
at a tiny size, exits 0 and prints the checksum it always prints (so a benchmark can't silently
measure a broken program), that the harness parses what it measures, and that the Markdown
renderer turns a fixed results document into the expected table.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _import_benchmarks() -> ModuleType:
    """Import the benchmarks package from the repository without adding the root to sys.path
    (which would also make `storage` and `tui` importable as top-level names)."""
    if "benchmarks" in sys.modules:
        return sys.modules["benchmarks"]
    package_dir = REPO_ROOT / "benchmarks"
    spec = importlib.util.spec_from_file_location(
        "benchmarks", package_dir / "__init__.py", submodule_search_locations=[str(package_dir)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmarks"] = module
    spec.loader.exec_module(module)
    return module


benchmarks = _import_benchmarks()
from benchmarks import measure, report, suite  # noqa: E402

# (script, tiny arguments) -> the checksum it prints; the same on 3.11, 3.12 and 3.13.
EXPECTED = {
    ("startup.py", ("10",)): "45",
    ("richards.py", ("1",)): "9297/23246/1",
    ("deltablue.py", ("2",)): "446808",
    ("nbody.py", ("200",)): "-0.169075164/-0.169026909",
    ("raytrace.py", ("8",)): "9224",
    ("go.py", ("1",)): "5",
    ("generators.py", ("2",)): "695600514/638890",
    ("recursion.py", ("1",)): "2584/562778/4080",
    ("strings.py", ("2",)): "2524644544",
    ("json_requests.py", ("100",)): "200:18,201:73,400:6,404:2,500:1/863948347",
    ("orders.py", ("5",)): "6028.60/20",
    ("library_hot_loop.py", ("1",)): "558900841",
    ("long_run.py", ("1000",)): "-1561/11/1592",
}


def run_script(script: str, args: tuple[str, ...], hash_seed: str) -> subprocess.CompletedProcess:
    """Run a workload as the suite does: by path, from workloads/, with a clean environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "REPLAY_"))}
    env["PYTHONHASHSEED"] = hash_seed
    return subprocess.run(
        [sys.executable, str(benchmarks.WORKLOADS_DIR / script), *args],
        cwd=benchmarks.WORKLOADS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(("script", "args"), sorted(EXPECTED), ids=str)
def test_workload_prints_its_checksum(script: str, args: tuple[str, ...]) -> None:
    # The suite runs with PYTHONHASHSEED=0; the checksum must not depend on it either.
    for hash_seed in ("0", "12345"):
        done = run_script(script, args, hash_seed)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == f"checksum: {EXPECTED[(script, args)]}"
        parsed = measure.Run(0.0, 0, done.returncode, done.stdout, done.stderr)
        assert parsed.checksum == EXPECTED[(script, args)]
        assert parsed.inner is not None and parsed.inner >= 0


def test_every_workload_script_has_an_expected_checksum() -> None:
    scripts = {path.name for path in benchmarks.WORKLOADS_DIR.glob("*.py")}
    assert scripts == {script for script, _ in EXPECTED}
    for workload in suite.WORKLOADS:
        if workload.script is not None:
            assert (workload.script, workload.tiny) in EXPECTED, workload.name


def test_workload_registry_is_consistent() -> None:
    names = [w.name for w in suite.WORKLOADS]
    assert len(names) == len(set(names))
    for workload in suite.WORKLOADS:
        assert (workload.script is None) != (workload.module is None), workload.name
        assert workload.description
    assert any(w.snoop for w in suite.WORKLOADS)
    assert any(not w.cpu_bound and w.name == "library_hot_loop" for w in suite.WORKLOADS)
    quick = suite.select(None, quick=True)
    assert 0 < len(quick) < len(suite.WORKLOADS)
    with pytest.raises(ValueError, match="unknown workload"):
        suite.select(["no-such-workload"], quick=False)


def test_run_parses_pytest_summary_as_checksum_and_time() -> None:
    stdout = "....\n756 passed, 9 deselected, 11479 subtests passed in 3.38s\n"
    run = measure.Run(4.0, 1000, 0, stdout, "")
    assert run.checksum == "756 passed, 9 deselected, 11479 subtests passed"
    assert run.inner == pytest.approx(3.38)
    assert run.failure("756 passed, 9 deselected, 11479 subtests passed") is None
    assert "differs" in (run.failure("755 passed") or "")
    failed = measure.Run(1.0, 1000, 1, "F\n1 failed, 3 passed in 0.1s\n", "boom\n")
    assert failed.failure(None) == "exit 1: boom"


def test_read_store_counts_steps_and_survives_a_store_without_them(tmp_path: Path) -> None:
    missing = measure.read_store(tmp_path / "absent.db")
    assert missing.steps is None and "no store" in (missing.error or "")

    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE recordings (id INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO recordings (id) VALUES (1)")
    conn.close()
    stats = measure.read_store(old)
    assert stats.steps is None and "steps" in (stats.error or "") and stats.bytes > 0

    good = tmp_path / "good.db"
    with sqlite3.connect(good) as conn:
        conn.execute("CREATE TABLE recordings (id INTEGER PRIMARY KEY, steps INTEGER)")
        conn.executemany("INSERT INTO recordings (steps) VALUES (?)", [(1000,), (234,)])
    conn.close()
    stats = measure.read_store(good)
    assert (stats.steps, stats.recordings, stats.error) == (1234, 2, None)


def _cell(
    workload: str,
    tracer: str,
    wall: float | None,
    inner: float | None,
    rss: int | None = 20480,
    **extra: object,
) -> dict[str, object]:
    cell: dict[str, object] = {
        "python": "3.12",
        "workload": workload,
        "tracer": tracer,
        "wall": wall,
        "inner": inner,
        "maxrss_kib": rss,
        "error": None,
        "store": None,
        "output_bytes": None,
        "stopped_after": None,
        "notes": [],
        "runs": [],
    }
    cell.update(extra)
    return cell


RESULTS = {
    "schema": 1,
    "command": "python -m benchmarks --quick --python 3.12",
    "mode": "quick",
    "rounds": 3,
    "date": "2025-01-02 03:04 UTC",
    "duration_s": 61.2,
    "machine": {
        "cpu": "Test CPU",
        "cores": 2,
        "memory_gib": 23.5,
        "kernel": "6.1",
        "load_average_at_start": [0.5, 0.25, 0.0],
    },
    "pythons": {
        "3.12": {
            "version": "3.12.1",
            "packages": {"coverage": "7.17.5"},
            "coverage_core": "SysMonitor",
        }
    },
    "tracers": {
        "untraced": {"label": "untraced", "description": "python w.py"},
        "replay": {"label": "replay", "description": "replay record w.py"},
        "cprofile": {"label": "cProfile", "description": "python -m cProfile w.py"},
        "pysnooper": {"label": "PySnooper", "description": "snoop run()"},
    },
    "workloads": {
        "alpha": {"description": "a", "cpu_bound": True, "args": ["1"], "notes": []},
        "beta": {"description": "b", "cpu_bound": True, "args": ["2"], "notes": []},
        "gamma": {
            "description": "c",
            "cpu_bound": False,
            "args": ["3"],
            "notes": ["gamma: out of scope."],
        },
    },
    "cells": [
        _cell("alpha", "untraced", 0.5, 0.4),
        _cell(
            "alpha",
            "replay",
            1.5,
            1.0,
            rss=40960,
            store={"bytes": 2 * 1024 * 1024, "steps": 1_000_000, "recordings": 1, "error": None},
        ),
        _cell("alpha", "cprofile", 1.0, 0.8),
        _cell("beta", "untraced", 1.0, 0.8),
        _cell(
            "beta",
            "replay",
            None,
            None,
            rss=None,
            stopped_after=100.0,
            error="stopped after 100.0 s (--max-ratio: 100x the untraced warm-up's 1.00 s)",
        ),
        _cell("beta", "cprofile", 2.0, 3.2),
        _cell("gamma", "untraced", 0.25, 0.2),
        _cell(
            "gamma",
            "replay",
            0.5,
            0.22,
            store={
                "bytes": 4096,
                "steps": None,
                "recordings": 1,
                "error": "cannot read steps: no such column: steps",
            },
        ),
        _cell("gamma", "cprofile", None, None, error="exit 1: Boom"),
        _cell("gamma", "pysnooper", 25.0, 20.0, notes=["slow by design"]),
    ],
}

EXPECTED_MARKDOWN = """\
# replay benchmark results

- Machine: Test CPU, 2 cores, 23.5 GiB, Linux 6.1 (load average at start: 0.5 0.25 0.0)
- Date: 2025-01-02 03:04 UTC; mode: quick, median of 3 interleaved runs; took 61 s
- Command: `python -m benchmarks --quick --python 3.12`
- Pythons: 3.12.1

## Python 3.12.1

Installed: coverage 7.17.5; coverage.py core: SysMonitor.

### Wall time, traced / untraced

| workload | CPU-bound | untraced (s) | replay | cProfile | PySnooper |
| --- | --- | ---: | ---: | ---: | ---: |
| alpha | yes | 0.500 | 3.00x | 2.00x | - |
| beta | yes | 1.000 | >100x | 2.00x | - |
| gamma | no | 0.250 | 2.00x | n/a | 100.00x |
| **geometric mean, CPU-bound** |  |  | **3.00x** (1 of 2) | **2.00x** | - |

### In-process time (the workload's own timer), traced / untraced

| workload | CPU-bound | untraced (s) | replay | cProfile | PySnooper |
| --- | --- | ---: | ---: | ---: | ---: |
| alpha | yes | 0.400 | 2.50x | 2.00x | - |
| beta | yes | 0.800 | >100x | 4.00x | - |
| gamma | no | 0.200 | 1.10x | n/a | 100.00x |
| **geometric mean, CPU-bound** |  |  | **2.50x** (1 of 2) | **2.83x** | - |

### replay's recordings (full recording, default core)

| workload | steps | steps/s | bytes/step | store | peak RSS untraced | peak RSS replay \
| RSS delta |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| alpha | 1,000,000 | 666,667 | 2.10 | 2.0 MiB | 20.0 MiB | 40.0 MiB | +20.0 MiB |
| beta | n/a | n/a | n/a | n/a | 20.0 MiB | n/a | n/a |
| gamma | n/a | n/a | n/a | 4.0 KiB | 20.0 MiB | 20.0 MiB | +0.0 MiB |

### Notes

- replay on beta: stopped after 100.0 s (--max-ratio: 100x the untraced warm-up's 1.00 s)
- replay store n/a on gamma: cannot read steps: no such column: steps
- cProfile n/a on gamma: exit 1: Boom
- PySnooper on gamma: slow by design
- gamma: out of scope.

## Columns

- untraced (s): median wall time of `python w.py` (spawn to exit, measured by the parent), \
or of the workload's own timer in the in-process table.
- Ratios: median traced time / median untraced time, same workload, same Python, runs \
interleaved. The geometric mean covers the CPU-bound workloads.
- >Nx: the run was stopped at --max-ratio times the untraced wall time; N is the lower bound \
on the ratio (shown in both tables; not in the geometric mean).
- steps/s: recorded steps (`SELECT steps FROM recordings`) / replay's median wall time; \
bytes/step: store size on disk / steps; peak RSS: the recorded process (or its largest child), \
median over runs.
- replay: replay record w.py
- cProfile: python -m cProfile w.py
- PySnooper: snoop run()
"""


def test_renderer_produces_the_expected_markdown() -> None:
    results = copy.deepcopy(RESULTS)
    report.add_ratios(results)
    assert report.render_markdown(results) == EXPECTED_MARKDOWN


def test_add_ratios_and_geometric_mean() -> None:
    results = copy.deepcopy(RESULTS)
    report.add_ratios(results)
    by_key = {(c["workload"], c["tracer"]): c for c in results["cells"]}
    assert by_key[("alpha", "replay")]["ratio"] == pytest.approx(3.0)
    assert by_key[("beta", "replay")]["ratio"] is None
    assert by_key[("beta", "replay")]["ratio_above"] == pytest.approx(100.0)
    assert report.geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    assert report.geometric_mean([]) is None
