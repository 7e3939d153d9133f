"""A long, regular program for making recordings of a chosen length (benchmarks/store.py).

Its step count is linear in SIZE (a fixed number of steps per iteration, plus a constant), so a
recording of about N steps is made by measuring two small sizes and solving for SIZE. Each
iteration calls a few functions, rebinds locals, mutates a list and a dict, and every 97th
iteration raises and catches an exception, so a recording of it has calls, returns, line steps,
changing variables and exceptions spread evenly along it. Landmarks for the engine benchmarks:

- `milestone()` runs once, at iteration SIZE // 2: a breakpoint on its body is about half the
  recording away from either end;
- `balance` in `run()` changes on every iteration: a value history across the whole recording.

Usage: python long_run.py [SIZE]; prints `checksum: ...` and, on stderr, `inner-seconds: ...`.
"""

from __future__ import annotations

import sys
import time

DEFAULT_SIZE = 10000


class Overdraft(Exception):
    """A transfer that would leave an account below zero."""


def fee(amount: int) -> int:
    """A small fee on every transfer."""
    return 1 + amount // 100


def transfer(accounts: dict[str, int], source: str, dest: str, amount: int) -> int:
    """Move `amount` (plus a fee) between accounts; raise Overdraft when it does not fit."""
    cost = amount + fee(amount)
    if accounts[source] < cost:
        raise Overdraft(source)
    accounts[source] -= cost
    accounts[dest] += amount
    return cost


def milestone(iteration: int) -> int:
    """Runs once, half-way: the engine benchmark's far-away breakpoint."""
    reached = iteration
    return reached


def run(size: int) -> str:
    """`size` iterations of transfers between three accounts."""
    accounts = {"a": 10_000, "b": 10_000, "c": 10_000}
    names = ["a", "b", "c"]
    log: list[int] = []
    balance = 0
    failures = 0
    half = size // 2
    for i in range(size):
        source = names[i % 3]
        dest = names[(i + 1) % 3]
        amount = 20_000 if i % 97 == 0 else (i * 37) % 200
        try:
            cost = transfer(accounts, source, dest, amount)
        except Overdraft:
            failures += 1
            cost = 0
        balance = accounts["a"] - accounts["b"]
        log.append(cost)
        if len(log) > 16:
            log.pop(0)
        if i == half:
            milestone(i)
        accounts[names[i % 3]] += 3
    return f"{balance}/{failures}/{sum(log)}"


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
