"""Corner cases for the C core's parity with the Python core (tests/recorder/test_core_parity.py).

Left out on purpose, because the Python core changes the program there on 3.12 and the C core
does not (so their events differ, the C core's being the faithful ones): `del` of a local whose
finalizer runs in-scope code (3.12's frame.f_locals dict, read by the Python core, keeps the
object alive until the frame's next event), and `locals()` in a function (on 3.12 it returns that
same dict, which the Python core's reads update).
"""

import json
import os.path
import secrets
import textwrap

SQUARES = [n * n for n in range(4)]  # a module-level inlined comprehension (hidden locals, 3.12)
BIG = 10**40
NEG = -(10**25)
LONG_TEXT = "z" * 1500
BLOB = b"\x00\x01" * 700
api_token = "hunter2"  # a secret-looking global: redacted


class Meters(float):
    pass


class Name(str):
    pass


class Counter:
    total = 0
    labels = [c for c in "ab"]  # a comprehension in a class body

    def __init__(self):
        self.items = []

    def add(self, x):
        self.items.append(x)
        Counter.total += 1
        return len(self.items)


def closures(start):
    count = start
    password = "s3cret"  # redacted local

    def bump(step=1):
        nonlocal count
        count += step
        return count

    a = bump()
    b = bump(2)
    del a
    a = b
    return count, password, bump, a


def cell_arg(x, y):
    def inner():
        return x + y

    x = x * 2
    return inner()


def shuffle(n):
    a, b, c = 1, 2, 3
    for _ in range(n):
        a, b, c = c, a, b
    del b
    b = "back"
    z = None
    del z, c
    return a, b


def values():
    f = float("nan")
    m = Meters(1.5)
    s = Name("abc")
    big = BIG
    neg = NEG
    text = LONG_TEXT
    blob = BLOB
    t = (1, (2, [3]))
    d = {"k": [1, 2], 3: "v", "session_id": "abc"}
    d["k"].append(3)
    t[1][1].append(4)
    return f, m, s, big, neg, text, blob, t, d


def externals():
    path = os.path.join("a", "b")
    text = textwrap.dedent("  x\n  y\n")
    try:
        json.loads("{bad")
    except ValueError as exc:
        err = str(exc)[:10]
    try:
        int("nope")
    except ValueError:
        err2 = "int"
    ordered = sorted([3, 1, 2], key=lambda v: -v)
    mapped = list(map(os.path.basename, ["/x/y", "/z"]))
    n = len(ordered) + abs(-3)
    return path, text, err, err2, ordered, mapped, n


def get_password():
    return "pw-" + "x"  # a secret-looking function: its return value is redacted


def secret_flow():
    token = secrets.token_hex(4)  # a secret-looking callee: its value is redacted
    plain = os.path.basename("/a/plain")  # a library str bound to a plain name: kept
    db_password = os.path.join("a", "b")  # bound to a secret name: its EXTERNAL step redacted
    mine = get_password()
    api_key = mine.upper()
    return len(token) + len(plain) + len(db_password) + len(api_key)


def gen(n):
    total = 0
    try:
        for i in range(n):
            got = yield i
            total += got or 0
    except KeyError:
        total = -1
    finally:
        done = True  # noqa: F841
    return total


def drive():
    g = gen(5)
    first = next(g)
    second = g.send(10)
    try:
        g.throw(KeyError("k"))
    except StopIteration as stop:
        result = stop.value
    abandoned = gen(3)
    next(abandoned)
    early = any(x > 1 for x in range(10))
    return first, second, result, early


def deep(n):
    if n == 0:
        raise LookupError("bottom")
    return deep(n - 1)


def unwinding():
    try:
        deep(4)
    except LookupError as e:
        caught = e
    return caught


def one_line_loops(xs):
    total = 0
    # fmt: off
    for x in xs: total += x  # noqa: E701  (one line: LINE events come from JUMP)
    while total > 10: total -= 3  # noqa: E701
    # fmt: on
    squares = [x * x for x in xs]
    return total, squares


def main():
    c = Counter()
    c.add(1)
    c.add("two")
    out = [
        closures(10),
        cell_arg(1, 2),
        shuffle(4),
        values(),
        externals(),
        secret_flow(),
        drive(),
        unwinding(),
        one_line_loops([1, 2, 3, 4, 5]),
    ]
    return len(out)


result = main()
for k in range(3):
    result = (result, k)
del k
