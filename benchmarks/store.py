"""Long recordings for the engine's speed-and-memory benchmark (issue 3): make one of N steps.

`python -m benchmarks.store --steps 10000000 [--python 3.12] [--store PATH]` records
`workloads/long_run.py` with `replay record` in the benchmark venv, at the size that gives about
N steps, and prints the store's path and its step count. How: long_run.py's step count is linear
in its size, so the maker records two small sizes, reads `SELECT steps FROM recordings` from
each, solves steps = a + b * size for the size giving N, records that, and checks the count
(within 1%). The recording is cached in benchmarks/.cache/recordings/, keyed by the step count,
the Python version and a hash of the recorder and store sources, so it is remade when the
recorder or the format changes and reused otherwise.

This module is the hook for issue 3's benchmark: its measurements (open and stand at the first
step, step / reverse-step, goto, continue to `milestone()` half the recording away, the value
history of `balance`, peak RSS of the reader) open the path `make_recording()` returns.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks import CACHE_DIR, REPO_ROOT, WORKLOADS_DIR
from benchmarks.environments import SetupError, ensure_venv, find_python
from benchmarks.measure import read_store, run_command
from benchmarks.overhead import child_env, log
from benchmarks.tracers import Venv

LONG_RUN = WORKLOADS_DIR / "long_run.py"
CALIBRATION_SIZES = (2_000, 6_000)


class RecordingError(Exception):
    """The recording could not be made (replay failed, or its step count is unreadable)."""


def recorder_hash() -> str:
    """A hash of the sources that decide what a recording contains and how it is stored."""
    digest = hashlib.sha256()
    for top in (REPO_ROOT / "replay", REPO_ROOT / "storage"):
        for path in sorted(top.rglob("*")):
            if path.suffix in {".py", ".c", ".h", ".pyx"} and path.is_file():
                digest.update(str(path.relative_to(REPO_ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def record(venv: Venv, size: int, store: Path, timeout: float = 3600.0) -> int:
    """Record long_run.py at `size` into `store` (replaced); return the recorded steps."""
    for stale in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        stale.unlink(missing_ok=True)
    argv = [venv.bin("replay"), "record", "--store", str(store), str(LONG_RUN), str(size)]
    with tempfile.TemporaryDirectory(prefix="replay-bench-store-") as tmp:
        run = run_command(
            argv, cwd=WORKLOADS_DIR, env=child_env(venv, {}), timeout=timeout, out_dir=Path(tmp)
        )
    failure = run.failure(None)
    if failure:
        raise RecordingError(f"replay record long_run.py {size}: {failure}")
    stats = read_store(store)
    if stats.steps is None:
        raise RecordingError(f"cannot count the steps of {store}: {stats.error}")
    return stats.steps


def size_for(steps: int, venv: Venv, workdir: Path) -> int:
    """The long_run.py size that records about `steps` steps, from two calibration recordings."""
    small, large = CALIBRATION_SIZES
    steps_small = record(venv, small, workdir / "calibrate-small.db")
    steps_large = record(venv, large, workdir / "calibrate-large.db")
    per_iteration = (steps_large - steps_small) / (large - small)
    if per_iteration <= 0:
        raise RecordingError(f"step counts do not grow with size: {steps_small}, {steps_large}")
    fixed = steps_small - per_iteration * small
    return max(1, math.ceil((steps - fixed) / per_iteration))


def make_recording(
    steps: int = 10_000_000, version: str = "3.12", store: Path | None = None, *, reuse: bool = True
) -> tuple[Path, int]:
    """A recording of about `steps` steps: (path, exact steps). Cached unless reuse is False."""
    found = find_python(version)
    if found is None:
        raise SetupError(f"Python {version} not found")
    setup = ensure_venv(version, found[0], found[1], log)
    if setup.project_error:
        raise SetupError(setup.project_error)
    cached = CACHE_DIR / "recordings" / f"long_run-{steps}-py{version}-{recorder_hash()}.db"
    if reuse and cached.exists():
        stats = read_store(cached)
        if stats.steps is not None:
            return _deliver(cached, store), stats.steps
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="replay-bench-calibrate-") as tmp:
        size = size_for(steps, setup.venv, Path(tmp))
    log(f"recording long_run.py {size} for about {steps:,} steps")
    recorded = record(setup.venv, size, cached)
    if abs(recorded - steps) > steps / 100:
        raise RecordingError(f"asked for {steps:,} steps, recorded {recorded:,}")
    return _deliver(cached, store), recorded


def _deliver(cached: Path, store: Path | None) -> Path:
    if store is None:
        return cached
    shutil.copyfile(cached, store)
    wal = Path(f"{cached}-wal")
    if wal.exists():
        shutil.copyfile(wal, Path(f"{store}-wal"))
    return store


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.store`: make (or reuse) a long recording and print where it is."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store", description=__doc__)
    parser.add_argument("--steps", type=int, default=10_000_000)
    parser.add_argument("--python", default="3.12", metavar="X.Y")
    parser.add_argument("--store", type=Path, help="copy the recording here (default: the cache)")
    parser.add_argument("--fresh", action="store_true", help="record anew even if cached")
    args = parser.parse_args(argv)
    try:
        path, steps = make_recording(args.steps, args.python, args.store, reuse=not args.fresh)
    except (SetupError, RecordingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{path}\t{steps} steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
