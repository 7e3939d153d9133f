"""Loops, recursion, comprehensions, closures, with, try/finally, del, mutation."""

import ast  # noqa: F401  (imports a stdlib module while recording: trap 1)

TABLE = {key: [value * 2 for value in range(3)] for key in ("a", "b")}


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def make_counter(start):
    count = start

    def bump(step):
        nonlocal count
        count += step
        return count

    return bump


class Resource:
    def __init__(self, name):
        self.name = name
        self.open = False

    def __enter__(self):
        self.open = True
        return self

    def __exit__(self, *exc):
        self.open = False
        return False


def main():
    total = 0
    for i in range(5):
        total += i
    squares = [i * i for i in range(4)]
    evens = {i for i in squares if i % 2 == 0}
    lookup = {str(i): i for i in range(3)}
    bump = make_counter(10)
    first = bump(1)
    second = bump(2)
    items = []
    items.append(first)
    items.append(second)
    lookup["new"] = 99
    with Resource("db") as res:
        state = res.open
    try:
        ratio = total / len(items)
    finally:
        done = True
    temp = "x" * 3
    del temp
    nested = {"list": [1, [2, [3, [4, [5]]]]], "tuple": (1, 2)}
    long_text = "y" * 2000
    return fib(6), squares, evens, lookup, state, ratio, done, nested, len(long_text)


result = main()
