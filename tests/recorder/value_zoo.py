"""Values of every shape the encoders know, for the tests that compare two ways of encoding them.

`CASES` names hand-picked values (cycles, shared parts, secrets, subclasses, slots, enums,
exceptions, the standard library's value types...) and `random_value` makes seeded random nested
values from the same parts. test_cencode.py compares the C encoder with the Python one on them,
test_object_records.py the object records' expansion with the Python encoder.
"""

from __future__ import annotations

import array
import dataclasses
import datetime
import decimal
import enum
import io
import itertools
import os
import pathlib
import random
import re
import sys
import threading
import uuid
from collections import Counter, defaultdict, deque, namedtuple
from typing import Any


class Plain:
    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)


class Other:
    pass


class Bag(list):
    pass


class Row(tuple):
    pass


class Registry(dict):
    pass


class Tagged(list):
    """A list subclass with instance attributes: shown as the list (the attributes are not)."""

    def __init__(self, *items: Any) -> None:
        super().__init__(items)
        self.tag = "t"


class Slotted:
    __slots__ = ("a",)

    def __init__(self) -> None:
        self.a = 1


class SlottedPair(Slotted):
    """Slots in two classes, one of them unset; a weak reference slot (not shown)."""

    __slots__ = ("__weakref__", "b", "password")


class WithDictToo(Slotted):
    """A subclass without `__slots__`: an instance dict, shown first, beside the slot."""


@dataclasses.dataclass(slots=True)
class Point:
    x: Any
    y: Any = None


class Rebound:
    __slots__ = ("kept", "replaced")


Rebound.replaced = "a class attribute now"  # no longer a slot: the encoder skips it


Point3 = namedtuple("Point3", "x y z")
Login = namedtuple("Login", "user password")


class Named(Point3):
    """A subclass of a namedtuple: still shown by its fields."""


def _namedtuples() -> list[Any]:
    inner = Point3([1], {"k": 2}, Plain(a=1))
    return [
        Point3(1, 2.5, "z"),
        inner,
        (inner, inner),  # the same namedtuple twice
        Login("ann", "hunter2"),  # a secret field
        Named(0, 0, 0),
        Point3(Point3(1, 2, 3), None, [Point3(4, 5, 6)]),
    ]


def _odd_uuid() -> uuid.UUID:
    """A UUID whose int is past 128 bits: the encoder shows `<uuid.UUID object>`."""
    odd = uuid.UUID(int=1)
    object.__setattr__(odd, "int", 1 << 130)
    return odd


class History(deque):
    """A subclass of deque whose own methods are Python: the deque is read as deque reads it."""

    def __iter__(self) -> Any:  # never called by either encoder
        raise AssertionError("the encoder ran the subclass's __iter__")

    def __len__(self) -> int:
        raise AssertionError("the encoder ran the subclass's __len__")


def _deques() -> list[Any]:
    shared = [1, 2]
    queue = deque([shared, "b", Plain(q=shared)], maxlen=5)
    queue.rotate(1)
    long = deque(range(200))
    long.appendleft("first")
    return [
        deque(),
        queue,
        long,  # past max_items: the first items, as deque iterates
        History(["h", 1, deque([2])]),
        {"waiters": deque([Plain(done=False)]), "token": deque(["secret"])},
    ]


class ProjectPath(type(pathlib.Path())):  # PosixPath: a subclass shows its own name
    """A subclass of the concrete path class, as projects make them."""


def _paths() -> list[Any]:
    cached = pathlib.Path("/srv/app/config.toml")
    str(cached)  # pathlib caches the text in a slot: the same text as before
    return [
        pathlib.Path("/srv/app"),
        pathlib.PurePosixPath("relative/x.py"),
        pathlib.Path("."),
        pathlib.Path("//net/share"),
        pathlib.Path("/a//b/./c/"),
        pathlib.Path("/srv") / "app" / "logs",
        cached,
        ProjectPath("/srv/project"),
        {pathlib.Path("/k"): [pathlib.Path("/k")]},
        pathlib.Path("/" + "d" * 2000),  # a text past max_string: cut as the encoder cuts it
    ]


def _datetimes() -> Plain:
    utc = datetime.UTC
    return Plain(
        day=datetime.date(2026, 11, 27),
        at=datetime.datetime(2026, 11, 27, 6, 30, 1, 250),
        aware=datetime.datetime(2026, 11, 27, 6, 30, tzinfo=utc),
        offset=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
        folded=datetime.datetime(2026, 11, 1, 1, 30, fold=1),
        clock=datetime.time(23, 59, 59, 999999),
        clock_utc=datetime.time(12, tzinfo=utc),
        took=datetime.timedelta(days=-1, seconds=5, microseconds=7),
        by_day={datetime.date(2026, 1, 1): 3, datetime.date(2026, 1, 2): 4},
    )


def _slotted() -> list[Any]:
    pair = SlottedPair()
    pair.b = [1, {"k": Slotted()}]
    pair.password = "hunter2"
    both = WithDictToo()
    both.extra = (1, 2)
    shadow = WithDictToo()
    shadow.__dict__["a"] = "from the dict"  # the slot `a` holds 1: the dict's value is shown
    loop = Point(1)
    loop.y = loop
    rebound = Rebound()
    rebound.kept = Slotted()
    return [Slotted(), pair, SlottedPair(), both, shadow, loop, Point([Point(2)]), rebound]


def _cycle() -> list[Any]:
    a: list[Any] = [1]
    a.append(a)
    return a


def _shared_list() -> list[Any]:
    shared = [1, 2]
    return [shared, shared, {"x": shared}]


def _odd_name() -> Plain:
    p = Plain(x=1)
    p.__dict__[1] = "one"  # a name that is not a str: skipped, the object marked truncated
    return p


def _obj_cycle() -> Plain:
    p = Plain(name="root")
    p.child = Plain(parent=p, items=[p, 2])
    return p


class Tags(set):
    pass


class Bare:
    """No instance dict, no slots: shown as `<...Bare object>` with an identity."""

    __slots__ = ()


def _iterators() -> Plain:
    data = {"a": 1, "b": [2]}
    shared = iter([1, 2])
    return Plain(
        chain=itertools.chain([1], [2]),
        it=shared,
        again=[shared, shared],
        mapped=map(str, [1]),
        zipped=zip([1], [2], strict=True),
        numbered=enumerate("ab"),
        keys=data.keys(),
        items=data.items(),
        bare=Bare(),
        array=array.array("i", [1, 2]),
        in_a_set={Bare()},
        token=iter(()),  # a secret name: redacted by the Python encoder
    )


class Colour(enum.Enum):
    RED = 1
    GREEN = "green"
    LONG = "x" * 5000


class Level(enum.IntEnum):
    LOW = 1


class Perm(enum.Flag):
    R = 4
    W = 2


class Pair(enum.Enum):
    ONE = (1, 2)  # not an atom value: left to the Python encoder


class Meta(type):
    pass


class WithMeta(metaclass=Meta):
    def method(self) -> None:
        pass


class _Name(str):
    """A str subclass: a module name the text does not show."""


def _function_in(module: Any) -> Any:
    def helper() -> None:
        pass

    helper.__module__ = module
    return helper


def _callables() -> Plain:
    obj = WithMeta()
    return Plain(
        odd_modules=[_function_in(m) for m in (None, 5, "builtins", _Name("m"), "")],
        func=_callables,
        lam=lambda: 1,
        cls=Plain,
        meta_cls=WithMeta,
        bound=obj.method,
        builtin=len,
        builtin_method=[].append,
        module=random,
        items=[sys, print, Plain, obj.method],
        password=_callables,
    )


def _gen() -> Any:
    yield 1


async def _coro() -> None:
    pass


async def _agen() -> Any:
    yield 1


def _generators() -> list[Any]:
    coro = _coro()
    coro.close()  # never awaited: closed so that no warning is printed
    return [_gen(), coro, _agen(), Plain(g=_gen())]


def _big_ints() -> list[Any]:
    # Past 64 bits the encoder keeps an int whole while it has fewer digits than
    # max_int_digits (1000 by default), else shows its leading digits (left to Python).
    return [2**63, -(2**63) - 1, 2**64, -(2**100), 10**30, 10**998, -(10**998), Plain(n=2**70)]


def _descriptors_and_code() -> Plain:
    obj = Plain()
    return Plain(
        code=_callables.__code__,
        lambda_code=(lambda: 0).__code__,
        member=Slotted.__dict__["a"],  # member_descriptor
        getset=type.__dict__["__name__"],  # getset_descriptor
        method=str.__dict__["join"],  # method_descriptor
        class_method=dict.__dict__["fromkeys"],  # classmethod_descriptor
        slot=object.__dict__["__init__"],  # wrapper_descriptor
        bound_slot=obj.__setattr__,  # method-wrapper, bound to a Python object
        bound_int_slot=(7).__add__,  # bound to an int
        again=[obj.__setattr__, Slotted.__dict__["a"]],
    )


IO_PARTS = sys.version_info >= (3, 12)
"""io's classes are heap types from 3.12 on (on 3.11, static types: the walk leaves them to
Python, as every static C type that is not a container)."""


def _files() -> list[Any]:
    # A WSGI server's environ holds its input and error streams. io objects show their C
    # members (`raw`, `_blksize`, `_finalizing`...) beside their instance dict.
    return [
        {"wsgi.input": open(os.devnull, "rb"), "wsgi.errors": io.TextIOWrapper(io.BytesIO())},
        open(os.devnull, "rb", buffering=0),
        io.BytesIO(b"body"),
        io.StringIO("text"),
    ]


def _locks() -> list[Any]:
    held = threading.Lock()
    held.acquire()
    return [threading.Lock(), held, threading.RLock(), threading.Event(), threading.Condition()]


class AppError(Exception):
    """An exception of the program's own, with attributes of its own."""

    def __init__(self, message: str, code: int, token: str) -> None:
        super().__init__(message)
        self.code = code
        self.token = token  # a secret name: redacted as any attribute


class SlottedError(Exception):
    """An exception with slots of its own: shown after its instance dict, as any slot is."""

    __slots__ = ("code",)


def _app_error(rng: random.Random) -> AppError:
    error = AppError("e", rng.randint(0, 3), "t")
    if rng.random() < 0.5:
        error.extra = [rng.randint(0, 3)]
    return error


def _exceptions() -> list[Any]:
    looped = ValueError("looped")
    looped.args = (looped, 1)  # args holding the exception itself: a back reference
    caused = AppError("failed", 3, "t0k")
    caused.detail = {"inner": KeyError("k"), "items": [1, 2]}
    no_args = RuntimeError()
    no_args.args = ()
    slotted = SlottedError("slotted")
    slotted.code = [4, 5]
    return [
        ValueError("bad", 3),
        # C fields shown as slots (Py_T_OBJECT members of the builtin classes)
        StopIteration(7),
        StopIteration(),
        OSError(2, "x", "f"),
        SystemExit(3),
        AttributeError("a", name="n", obj=[1]),
        slotted,
        SlottedError(),  # its slot unset: not shown
        KeyError("missing"),
        caused,
        looped,
        no_args,
        [TypeError("a"), TypeError("a")],
        {"error": ZeroDivisionError("division by zero")},
    ]


def _holey_set() -> set[int]:
    # Deleted slots of the hash table hold a dummy key, skipped as set.__iter__ skips them.
    s = set(range(40))
    for i in range(0, 40, 3):
        s.discard(i)
    return s


def _subclass_cycle() -> Bag:
    bag = Bag([1])
    bag.append(Registry(back=bag))
    return bag


CASES = {
    "atoms in a list": [1, -2, 2**62, 1.5, True, None, "s", b"b"],
    "long str and bytes": ["x" * 5000, b"y" * 5000],
    "nested containers": {"a": [1, (2, 3), {"b": [4, [5, [6, [7, [8]]]]]}]},
    "dict with tuple keys": {(1, 2): "pair", 3: "three", None: 0.5},
    "secret dict keys": {"password": "hunter2", "api_key": [1, 2], "name": "x"},
    "secret bytes key": {b"token": "t", b"plain": 1},
    "secret pairs in a list": [("Authorization", "Bearer x"), ["password", 3], ("host", "h")],
    "a cycle": _cycle(),
    "an object cycle": _obj_cycle(),
    "objects": Plain(a=1, b=[1, 2], c={"k": Plain(d="e")}, secret="s", token=b"t"),
    "the same list twice": _shared_list(),
    "empty ones": [[], (), {}, Plain()],
    "wide list": list(range(300)),
    "wide dict": {f"k{i}": i for i in range(300)},
    "wide object": Plain(**{f"a{i}": i for i in range(100)}),
    "budget spent": [[list(range(60)) for _ in range(20)] for _ in range(3)],
    "an overdrawn budget": [("password", 1)] * 21 + [{}, [], ()],
    "non-str attribute name": _odd_name(),
    "subclasses of list, tuple and dict": Bag([Row((1, Bag())), Registry(a=Bag([2]), b=Row())]),
    "defaultdict and Counter": [defaultdict(list, {"k": [1]}), Counter("abca")],
    "a subclass with attributes": Tagged(1, Plain(x=Tagged())),
    "a subclass cycle": _subclass_cycle(),
    "secret keys in a dict subclass": Registry(password="p", user="u"),
    "sets and frozensets": [{1, "a", (2, 3)}, frozenset({4.5, None}), set(), Plain(s=frozenset())],
    "a set after deletions": _holey_set(),
    "secret pairs in a set": {("password", "x"), ("user", "u")},
    "a wide set": set(range(300)),
    "a set subclass": Tags({"x", ("token", 1)}),
    "functions, classes, methods, builtins, modules": _callables(),
    "code objects, descriptors and bound slot wrappers": _descriptors_and_code(),
    "ints past 64 bits": _big_ints(),
    "exceptions": _exceptions(),
    "locks, events and conditions": _locks(),
    **({"files and in-memory streams": _files()} if IO_PARTS else {}),
    "generators and coroutines": _generators(),
    "iterators, views and other objects named by their class": _iterators(),
    "objects with slots": _slotted(),
    "dates, times and durations": _datetimes(),
    "namedtuples": _namedtuples(),
    "paths": _paths(),
    "deques": _deques(),
    "patterns and matches": [
        re.compile(r"a+(b)"),
        re.compile(rb"\d+", re.IGNORECASE),
        re.compile("x" * 300),  # a long text: cut as the encoder cuts it
        re.match(r"a+(b)", "aab"),
        re.search(rb"\d+", b"x123"),
        {"found": re.fullmatch("(?P<k>v)", "v"), "none": re.match("z", "a")},
    ],
    "uuids": {
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "zero": uuid.UUID(int=0),
        "max": uuid.UUID(int=(1 << 128) - 1),
        "by_id": {uuid.UUID(int=7): [uuid.UUID(int=7)]},
    },
    "values shown by their C repr": [
        decimal.Decimal("1.50"),
        decimal.Decimal("-0"),
        {"price": decimal.Decimal("1E+3"), "n": complex(1, -2)},
        range(0, 10, 3),
        ...,
        NotImplemented,
        datetime.timezone(datetime.timedelta(hours=-5)),
        "x" * 2000,
        decimal.Decimal("1" * 2000),  # a text past max_string: cut as the encoder cuts it
    ],
    "enum members": Plain(
        colour=Colour.RED,
        others=[Colour.GREEN, Colour.LONG, Level.LOW, Perm.R, Perm.R | Perm.W, Colour],
        token=Colour.RED,
    ),
}


def random_value(rng: random.Random, depth: int, pool: list[Any]) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.35:
        return rng.choice(
            [
                rng.randint(-(2**63), 2**63 - 1),
                rng.choice([1, -1]) * rng.getrandbits(rng.choice([64, 65, 200, 3318])),
                rng.randint(-5, 300),
                rng.random(),
                rng.choice([True, False, None]),
                "s" * rng.choice([0, 1, 10, 1024, 1025, 3000]),
                b"b" * rng.choice([0, 5, 1025]),
                rng.choice(["password", "token", "user", b"secret"]),
                rng.choice([len, Plain, sys, _callables, [].append, WithMeta, Colour.RED, Perm.W]),
                rng.choice([iter([1]), itertools.count(), {}.keys(), Bare()]),
                rng.choice(_slotted()),
                rng.choice([ValueError("v", rng.randint(0, 9)), KeyError("k"), _app_error(rng)]),
                rng.choice(_namedtuples()),
                decimal.Decimal(rng.randint(0, 9)) / 4,
                uuid.UUID(int=rng.getrandbits(128)),
                pathlib.PurePosixPath("/srv", str(rng.randint(0, 9))),
                rng.choice(
                    [datetime.date(2026, 1, rng.randint(1, 28)), datetime.timedelta(rng.random())]
                ),
            ]
        )
    if pool and roll < 0.45:
        return rng.choice(pool)  # sharing and, through the pool, cycles
    n = rng.choice([0, 1, 2, 2, 3, 5, 8, 70 if depth == 0 else 4])
    kind = rng.choice(["list", "tuple", "dict", "object", "pair", "subclass"])
    if kind == "subclass":
        maker = rng.choice(["bag", "row", "registry", "counter", "set", "deque"])
        if maker == "row":
            return Row(random_value(rng, depth + 1, pool) for _ in range(n))
        if maker == "set":
            members: set[Any] = set()
            pool.append(members)
            members.update(rng.choice([i, f"s{i}", ("t", i), frozenset({i})]) for i in range(n))
            return members
        if maker == "counter":
            return Counter({f"c{i}": i for i in range(n)})
        if maker == "deque":
            queue: deque[Any] = deque(maxlen=rng.choice([None, 3]))
            pool.append(queue)  # so that its items can hold it: a cycle through a deque
            queue.extend(random_value(rng, depth + 1, pool) for _ in range(n))
            return queue
        sub: Any = Bag() if maker == "bag" else Registry()
        pool.append(sub)  # so that its items can hold it: a cycle through a subclass
        for i in range(n):
            if maker == "bag":
                sub.append(random_value(rng, depth + 1, pool))
            else:
                sub[rng.choice([f"k{i}", i, "token"])] = random_value(rng, depth + 1, pool)
        return sub
    if kind == "pair":
        return (rng.choice(["password", "x", b"api_key"]), random_value(rng, depth + 1, pool))
    if kind == "tuple":
        return tuple(random_value(rng, depth + 1, pool) for _ in range(n))
    if kind == "list":
        out: list[Any] = []
        pool.append(out)
        out.extend(random_value(rng, depth + 1, pool) for _ in range(n))
        return out
    if kind == "dict":
        d: dict[Any, Any] = {}
        pool.append(d)
        for i in range(n):
            key = rng.choice([f"k{i}", i, ("t", i), "secret", b"pw"])
            d[key] = random_value(rng, depth + 1, pool)
        return d
    obj = rng.choice([Plain, Other])()
    pool.append(obj)
    for i in range(n):
        setattr(obj, rng.choice([f"a{i}", "password", "data"]), random_value(rng, depth + 1, pool))
    return obj
