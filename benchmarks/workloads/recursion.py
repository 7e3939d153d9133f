"""Recursion: naive Fibonacci, building and walking binary trees, and recursive permutations.

Deep call stacks and many short frames: the shape where per-call cost (frame entry, arguments,
return value) dominates a recorder's work.

Usage: python recursion.py [SIZE]; prints `checksum: ...` and, on stderr, `inner-seconds: ...`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

DEFAULT_SIZE = 8


def fib(n: int) -> int:
    """Naive doubly recursive Fibonacci."""
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


@dataclass
class Node:
    """A binary tree node."""

    value: int
    left: Node | None = None
    right: Node | None = None


def build(depth: int, value: int) -> Node:
    """A complete binary tree of the given depth, values numbered as in a heap."""
    if depth == 0:
        return Node(value)
    return Node(value, build(depth - 1, 2 * value), build(depth - 1, 2 * value + 1))


def checksum_tree(node: Node | None) -> int:
    """Walk the tree recursively, combining values in order."""
    if node is None:
        return 0
    return (checksum_tree(node.left) * 3 + node.value + checksum_tree(node.right)) % 1_000_003


def depth_of(node: Node | None) -> int:
    """The height of the tree."""
    if node is None:
        return 0
    return 1 + max(depth_of(node.left), depth_of(node.right))


def permutations(items: list[int]) -> list[list[int]]:
    """All permutations, built recursively."""
    if len(items) <= 1:
        return [items]
    result = []
    for index, item in enumerate(items):
        rest = items[:index] + items[index + 1 :]
        for tail in permutations(rest):
            result.append([item, *tail])
    return result


def run(size: int) -> str:
    """Repeat fib(18), a depth-10 tree and the permutations of 6 items `size` times."""
    fibs = trees = perms = 0
    for round_ in range(size):
        fibs += fib(18 + round_ % 2)
        tree = build(10, round_ + 1)
        trees = (trees + checksum_tree(tree) + depth_of(tree)) % 1_000_003
        perms += sum(p[0] * p[-1] for p in permutations(list(range(6))))
    return f"{fibs}/{trees}/{perms}"


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
