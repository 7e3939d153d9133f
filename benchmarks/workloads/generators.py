"""Generators and coroutines: a pipeline of generators, then an asyncio gather of small coroutines.

The pipeline exercises generator suspend/resume (`yield`, `yield from`, generator expressions and a
`send()`-driven accumulator); the asyncio part exercises coroutine suspend/resume on one event loop
(many small tasks gathered, a producer/consumer queue). The event loop itself is standard library
(out of a recorder's default scope); the coroutines are the user's code.

Usage: python generators.py [SIZE]; prints `checksum: ...` and, on stderr, `inner-seconds: ...`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Generator, Iterable, Iterator

DEFAULT_SIZE = 40


def numbers(count: int, seed: int) -> Iterator[int]:
    """A deterministic stream of pseudo-random integers (a linear congruential generator)."""
    state = seed
    for _ in range(count):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        yield state % 1000


def evens_squared(values: Iterable[int]) -> Iterator[int]:
    """Keep the even values, squared."""
    for value in values:
        if value % 2 == 0:
            yield value * value


def windows(values: Iterable[int], width: int) -> Iterator[tuple[int, ...]]:
    """Sliding windows of `width` consecutive values."""
    window: list[int] = []
    for value in values:
        window.append(value)
        if len(window) > width:
            del window[0]
        if len(window) == width:
            yield tuple(window)


def chained(*streams: Iterable[int]) -> Iterator[int]:
    """Concatenate streams with `yield from`."""
    for stream in streams:
        yield from stream


def accumulator() -> Generator[int, int, None]:
    """A coroutine-style generator: send() it values, it yields the running total."""
    total = 0
    while True:
        value = yield total
        total = (total + value) % 1_000_000_007


def pipeline(count: int, seed: int) -> int:
    """Run one pipeline of generators and return its total."""
    squares = evens_squared(numbers(count, seed))
    sums = (sum(window) for window in windows(squares, 4))
    acc = accumulator()
    next(acc)
    total = 0
    for value in chained(sums, numbers(count // 4, seed + 1)):
        total = acc.send(value)
    acc.close()
    return total


async def small_task(index: int) -> int:
    """A small coroutine that suspends a few times."""
    value = index
    for step in range(3):
        await asyncio.sleep(0)
        value = (value * 31 + step) % 10007
    return value


async def producer(queue: asyncio.Queue[int | None], count: int) -> None:
    """Put `count` items on the queue, then a sentinel."""
    for item in range(count):
        await queue.put(item)
    await queue.put(None)


async def consumer(queue: asyncio.Queue[int | None]) -> int:
    """Sum the items from the queue until the sentinel."""
    total = 0
    while True:
        item = await queue.get()
        if item is None:
            return total
        total += item * item % 97


async def gather_many(count: int) -> int:
    """Gather `count` small tasks, then run a producer/consumer pair."""
    results = await asyncio.gather(*(small_task(i) for i in range(count)))
    queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=64)
    _, consumed = await asyncio.gather(producer(queue, count), consumer(queue))
    return sum(results) + consumed


def run(size: int) -> str:
    """Run `size` pipelines of 2,000 numbers and gather 60 * size coroutines."""
    generated = sum(pipeline(2000, seed) for seed in range(size))
    gathered = asyncio.run(gather_many(60 * size))
    return f"{generated}/{gathered}"


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
