"""Start-up and shut-down only: a program that does (almost) nothing.

Its wall time under a tracer is the tracer's fixed cost per process (imports, setting up,
writing its output at exit), which the other workloads' wall-time ratios include and their
in-process ratios leave out.

Usage: python startup.py [SIZE]; prints `checksum: ...` and, on stderr, `inner-seconds: ...`.
"""

from __future__ import annotations

import sys
import time

DEFAULT_SIZE = 1


def run(size: int) -> int:
    """Add up `size` numbers."""
    total = 0
    for i in range(size):
        total += i
    return total


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
