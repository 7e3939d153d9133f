"""Out of scope: the hot loop runs in a library, the user's code is a few lines around it.

The library is `benchmarks/library/hotlib.py` (pure Python, outside the current directory when
the suite runs this from `benchmarks/workloads/`, so outside replay's default scope), plus the
standard library's `json`, `re` and `sorted`. A recorder that switches itself off for out-of-scope
code should cost almost nothing here (the target is at most 1.1x).

Usage: python library_hot_loop.py [SIZE]; prints `checksum: ...` and, on stderr,
`inner-seconds: ...`.
"""

from __future__ import annotations

import json
import re
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "library"))

import hotlib  # found through the sys.path entry above

DEFAULT_SIZE = 60


def run(size: int) -> int:
    """Make, parse and aggregate `size` batches of 5,000 CSV rows in the library, then dump."""
    checksum = 0
    for batch in range(size):
        text = hotlib.make_csv(5000, seed=batch)
        totals = hotlib.aggregate(hotlib.parse_csv(text))
        notes = sorted(re.findall(r'"note, (\d+)"', text), key=int)
        dumped = json.dumps(totals, sort_keys=True) + notes[-1]
        checksum = zlib.crc32(dumped.encode(), checksum)
    return checksum


def main() -> None:
    """Run with the size from argv[1]; print the checksum (stdout) and in-process time (stderr)."""
    size = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SIZE
    start = time.perf_counter()
    checksum = run(size)
    elapsed = time.perf_counter() - start
    print(f"checksum: {checksum}")
    print(f"inner-seconds: {elapsed:.6f}", file=sys.stderr)


if __name__ == "__main__":
    main()
