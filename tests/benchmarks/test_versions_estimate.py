"""benchmarks/versions_estimate.py on a real recording: what a versioned writer would keep.

The program below changes one body of a list of bodies, held by two names, on every line of a
loop (nbody's shape). Today each change stores the trees of all three names; with versions it
is one small version of the body's list and no entry for the names, whose objects stay the same.
The estimate must say so, and count what it read.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
def advance(bodies, pairs, n):
    for _ in range(n):
        for (p1, v1), (p2, v2) in pairs:
            v1[0] += p2[0] * 0.5
            v2[1] -= p1[1] * 0.25


def main():
    bodies = [([float(i), 1.0], [0.0, 0.0]) for i in range(4)]
    pairs = [(a, b) for i, a in enumerate(bodies) for b in bodies[i + 1 :]]
    advance(bodies, pairs, 200)


main()
"""


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_estimate_of_a_recording_with_values_held_twice(tmp_path: Path) -> None:
    script = tmp_path / "bodies.py"
    script.write_text(PROGRAM)
    store = tmp_path / "bodies.db"
    record = _run(["-m", "replay", "record", "-q", "--store", str(store), str(script)], tmp_path)
    assert record.returncode == 0, record.stderr
    run = _run(["-m", "benchmarks.versions_estimate", str(store)], REPO_ROOT)
    assert run.returncode == 0, run.stderr
    found = re.search(
        r"(\d+) steps, stored ([\d.]+) B/step; values today ([\d.]+) B/step, versioned "
        r"([\d.]+) B/step; store estimate ([\d.]+) B/step; (\d+) changed values \((\d+) "
        r"containers and objects\) -> (\d+) entries \+ (\d+) versions",
        run.stdout,
    )
    assert found, run.stdout
    steps, changed, nodes, entries, versions = (int(found[i]) for i in (1, 6, 7, 8, 9))
    today, versioned, estimate, stored = (float(found[i]) for i in (3, 4, 5, 2))
    assert steps > 200 * 6 * 3  # 200 rounds of 6 pairs, three lines each at least
    # Each in-place change of v1 or v2 re-records bodies and pairs today: three values per line.
    assert changed > 2 * 200 * 6 * 2
    assert nodes > 10 * changed
    # Versioned: the names keep their objects (a few entries: the bindings), one small version
    # per change of a body's list, and the values' bytes fall.
    assert entries < changed / 2
    assert versions < nodes / 10
    assert versioned < today / 2
    assert estimate < stored
