"""replay's benchmark suite: overhead of `replay record` against untraced runs and peer tracers.

Run it with `python -m benchmarks` from the repository root (see benchmarks/README.md). The
package is a harness only: the programs it measures are the scripts in `workloads/`, each run in
its own subprocess, and nothing here is imported by `replay` itself.
"""

from __future__ import annotations

from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
"""benchmarks/ itself."""
REPO_ROOT = BENCH_DIR.parent
"""The repository root: the project installed (editable) into each benchmark venv."""
WORKLOADS_DIR = BENCH_DIR / "workloads"
"""The workload scripts; also the current directory they run in, so they are in replay's scope."""
RESULTS_DIR = BENCH_DIR / "results"
"""results.json and results.md (gitignored)."""
CACHE_DIR = BENCH_DIR / ".cache"
"""Downloaded sdists and extracted test suites (gitignored)."""
VENVS_DIR = BENCH_DIR / ".venvs"
"""One venv per Python version, py3.X (gitignored)."""
