"""The C encoder (_encode.c) against the Python encoder, value by value.

The C core builds the venc of a value the fingerprint walk can read (atoms, list, tuple, dict,
plain objects) in C. It must give exactly what `SnapshotEncoder` gives: the same shape, the same
cuts and back references, the same redactions, and the same identity serials (the two encoders
share one identity map, so a different order of `key` calls would show as different serials).
Each case encodes the value with the C encoder on one identity map and with the Python encoder on
another, fresh map, and compares; then a seeded random generator of nested values does the same
a few thousand times. The whole-program comparison of the two cores is test_core_parity.py.
"""

from __future__ import annotations

import array
import asyncio
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
import socket
import sys
import threading
import uuid
from collections import Counter, OrderedDict, defaultdict, deque, namedtuple
from collections.abc import Callable
from typing import Any

import pytest

from replay.recorder import csettrace
from replay.recorder.identity import IdentityMap
from replay.recorder.redaction import Redactor
from replay.recorder.scope import Scope
from replay.recorder.snapshot import CaptureLimits, SnapshotEncoder
from replay.recorder.state import RecordingState

pytestmark = pytest.mark.skipif(
    csettrace.available() is not None, reason=f"no C core here: {csettrace.available()}"
)


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


def _encoders(
    limits: CaptureLimits, identity_limit: int = 1 << 15
) -> tuple[Any, SnapshotEncoder, SnapshotEncoder]:
    """A C tracer, the fresh encoder whose rule it follows, and another fresh Python encoder."""
    c_side = SnapshotEncoder(limits, Redactor(), IdentityMap(identity_limit))
    state = RecordingState(Scope("/nonexistent-scope"), c_side.encode_named)
    core = csettrace.CSettraceCore(state, c_side.encode_exception)
    py_side = SnapshotEncoder(limits, Redactor(), IdentityMap(identity_limit))
    return core._tracer, c_side, py_side


def _python(encoder: SnapshotEncoder, value: Any) -> Any:
    return encoder._enc(value, 0, [encoder.limits.max_nodes, []])


def _same(value: Any, limits: CaptureLimits | None = None) -> Any:
    tracer, _, encoder = _encoders(limits or CaptureLimits())
    c_venc = tracer._c_encode(value)
    assert c_venc is not None, "the C encoder left a value it should know to Python"
    assert c_venc == _python(encoder, value)
    return c_venc


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


def _callables() -> Plain:
    obj = WithMeta()
    return Plain(
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
    return [
        ValueError("bad", 3),
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


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_c_encoder_gives_the_python_encoders_venc(name: str) -> None:
    _same(CASES[name])


@pytest.mark.parametrize(
    "limits",
    [
        CaptureLimits(max_depth=1),
        CaptureLimits(max_items=2, max_attrs=2),
        CaptureLimits(max_nodes=5),
        CaptureLimits(max_string=3),
        CaptureLimits(max_depth=0),
    ],
    ids=repr,
)
def test_limits_cut_where_the_python_encoder_cuts(limits: CaptureLimits) -> None:
    for value in CASES.values():
        _same(value, limits)


def test_an_empty_container_after_an_overdrawn_budget_is_not_a_fault() -> None:
    # Secret pairs take two nodes each without asking: the budget can go below zero, and an
    # empty dict after that once made the Python encoder fail (islice with a negative count).
    encoder = SnapshotEncoder(CaptureLimits(max_nodes=40), Redactor(), IdentityMap())
    venc = _python(encoder, [("password", 1)] * 21 + [{}, set()])
    assert encoder.faults == 0
    empty_dict, empty_set = venc[4][-2:]
    assert (empty_dict[2:], empty_set[2:]) == (("dict", 0, []), ("set", 0, []))
    _same([("password", 1)] * 21 + [{}], CaptureLimits(max_nodes=40))


class Text(str):
    """A str subclass: what it shows could be Python code."""


def test_values_only_python_knows_are_left_to_it() -> None:
    tracer, _, encoder = _encoders(CaptureLimits())
    values = (
        10**1000,  # more digits than max_int_digits: shown by its leading digits
        [-(10**999)],
        _odd_uuid(),
        OSError(2, "x"),  # C fields shown as slots (errno, strerror...)
        OrderedDict(a=1),
        [Pair.ONE],
    )
    for value in values:
        assert tracer._c_encode(value) is NotImplemented
    # A pattern compiled from a str subclass: its text would call the subclass's __repr__, so
    # the encoder shows `<re.Pattern object>`, decided in Python.
    odd = re.compile(Text("a+"))
    assert tracer._c_encode(odd) is NotImplemented
    assert _python(encoder, odd)[3] == "<re.Pattern object>"


def test_a_renamed_function_is_encoded_again() -> None:
    # An opaque value's venc is kept under its fingerprint, which reads what its text shows.
    tracer, _, encoder = _encoders(CaptureLimits())

    def helper() -> None:
        pass

    value = Plain(f=helper, m=sys)
    first = tracer._c_encode(value)
    assert first == _python(encoder, value)
    helper.__qualname__ = "renamed"
    again = tracer._c_encode(value)
    assert again == _python(encoder, value)
    assert "renamed" in again[3]["f"][3]


ASGI_SCOPE = {
    "type": "http",
    "path": "/orders",
    "headers": [(b"host", b"shop.test"), (b"authorization", b"Bearer x"), (b"accept", b"*/*")],
}


@pytest.mark.parametrize(
    "value",
    [
        ASGI_SCOPE,  # (bytes, bytes) pairs, one of them secret: names decoded as latin-1
        {b"token": "t", b"plain": 1},
        _exceptions(),
        _big_ints(),
        _descriptors_and_code(),
        _locks(),
        pytest.param(_files(), marks=pytest.mark.skipif(not IO_PARTS, reason="3.12+")),
    ],
    ids=[
        "ASGI headers",
        "bytes keys",
        "exceptions",
        "big ints",
        "descriptors and code",
        "locks",
        "WSGI streams",
    ],
)
def test_the_walk_reads_it_so_an_unchanged_value_costs_no_encoding(value: Any) -> None:
    # A value the walk gives up on is encoded again at every check, changed or not.
    tracer, _, encoder = _encoders(CaptureLimits())
    assert tracer._c_fingerprint(value) != 0
    assert tracer._c_fingerprint(value) == tracer._c_fingerprint(value)
    assert tracer._c_encode(value) == _python(encoder, value)


def test_the_walk_gives_up_where_only_python_knows() -> None:
    tracer, _, _ = _encoders(CaptureLimits())
    for value in ([10**1000], [OSError(2, "x")], [OrderedDict(a=1)], [Pair.ONE]):
        assert tracer._c_fingerprint(value) == 0


def test_a_bound_slot_wrapper_follows_the_class_of_its_object() -> None:
    # `<method-wrapper '__setattr__' of X object>` names the class of the object it is bound
    # to, which `obj.__class__ = ...` changes.
    tracer, _, encoder = _encoders(CaptureLimits())
    obj = Plain()
    value = [obj.__setattr__]
    assert tracer._c_encode(value) == _python(encoder, value)
    obj.__class__ = Other
    again = tracer._c_encode(value)
    assert again == _python(encoder, value)
    assert again[4][0][3].endswith("test_cencode.Other object>")


def test_a_lock_that_is_taken_is_encoded_again() -> None:
    tracer, _, encoder = _encoders(CaptureLimits())
    lock = threading.Lock()
    value = [lock]
    assert tracer._c_encode(value)[4][0][3] == "<unlocked _thread.lock object>"
    with lock:
        again = tracer._c_encode(value)
        assert again == _python(encoder, value)
        assert again[4][0][3] == "<locked _thread.lock object>"


def test_a_big_int_that_changes_is_encoded_again() -> None:
    tracer, _, encoder = _encoders(CaptureLimits())
    value = [2**64]
    first = tracer._c_encode(value)
    assert first == _python(encoder, value)
    assert first[4] == [2**64]
    value[0] += 1
    again = tracer._c_encode(value)
    assert again == _python(encoder, value)
    assert again[4] == [2**64 + 1]


def test_an_exception_whose_attribute_changes_is_encoded_again() -> None:
    tracer, _, encoder = _encoders(CaptureLimits())
    error = AppError("failed", 1, "t")
    value = {"error": error}
    assert tracer._c_encode(value) == _python(encoder, value)
    error.code = 2
    error.args = ("failed again",)
    again = tracer._c_encode(value)
    assert again == _python(encoder, value)
    shown = again[4][0][1][3]
    assert shown["code"] == 2
    assert shown["args"][4] == ["failed again"]


def test_small_int_digit_limits_turn_the_c_encoder_off() -> None:
    # With max_int_digits below 19 an int the walk takes may be a big int to the encoder.
    tracer, _, _ = _encoders(CaptureLimits(max_int_digits=5))
    assert tracer._c_encode([1, 2]) is NotImplemented


def test_serials_follow_the_python_encoders_order_across_values() -> None:
    # One map, many values: serials handed out by the C encoder in the Python encoder's order.
    tracer, _, encoder = _encoders(CaptureLimits())
    shared = Plain(v=1)
    values = [[shared, {"k": shared}], (shared, [1]), {"x": [2, shared]}, Plain(o=shared)]
    for value in values:
        assert tracer._c_encode(value) == _python(encoder, value)


def _random_value(rng: random.Random, depth: int, pool: list[Any]) -> Any:
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
            return Row(_random_value(rng, depth + 1, pool) for _ in range(n))
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
            queue.extend(_random_value(rng, depth + 1, pool) for _ in range(n))
            return queue
        sub: Any = Bag() if maker == "bag" else Registry()
        pool.append(sub)  # so that its items can hold it: a cycle through a subclass
        for i in range(n):
            if maker == "bag":
                sub.append(_random_value(rng, depth + 1, pool))
            else:
                sub[rng.choice([f"k{i}", i, "token"])] = _random_value(rng, depth + 1, pool)
        return sub
    if kind == "pair":
        return (rng.choice(["password", "x", b"api_key"]), _random_value(rng, depth + 1, pool))
    if kind == "tuple":
        return tuple(_random_value(rng, depth + 1, pool) for _ in range(n))
    if kind == "list":
        out: list[Any] = []
        pool.append(out)
        out.extend(_random_value(rng, depth + 1, pool) for _ in range(n))
        return out
    if kind == "dict":
        d: dict[Any, Any] = {}
        pool.append(d)
        for i in range(n):
            key = rng.choice([f"k{i}", i, ("t", i), "secret", b"pw"])
            d[key] = _random_value(rng, depth + 1, pool)
        return d
    obj = rng.choice([Plain, Other])()
    pool.append(obj)
    for i in range(n):
        setattr(obj, rng.choice([f"a{i}", "password", "data"]), _random_value(rng, depth + 1, pool))
    return obj


@pytest.mark.parametrize("seed", range(24))
def test_random_values_encode_alike(seed: int) -> None:
    rng = random.Random(seed)
    limits = rng.choice([CaptureLimits(), CaptureLimits(max_depth=3, max_nodes=40)])
    tracer, c_side, encoder = _encoders(limits)
    left = 0
    for _ in range(200):
        value = _random_value(rng, 0, [])
        c_venc = tracer._c_encode(value)
        py_venc = _python(encoder, value)  # also when C gave up: the core then runs Python
        if c_venc is NotImplemented:
            left += 1  # as in the core: the Python encoder runs, on the same identity map
            _python(c_side, value)
            continue
        assert c_venc == py_venc
        # Again, every object known to the identity map: the encoder now follows the walk's
        # log of parts (copies of parts met twice among them) instead of walking each part.
        assert tracer._c_encode(value) == _python(encoder, value)
    assert left < 20, f"the C encoder left {left} of 200 values to Python"


def _met_again_under_itself() -> list[Any]:
    q: list[Any] = []
    p = (q,)
    q.append(p)
    return [[p], q]  # p's second place is under q, which p holds: there q is a back reference


@pytest.mark.parametrize(
    ("make", "limits", "copied"),
    [
        (lambda: [[1, (2, 3)]] * 30, CaptureLimits(), True),
        (lambda: [[1, 2, 3]] * 30, CaptureLimits(max_nodes=40), True),  # the budget runs out
        (lambda: {"password": (s := [1, [2]]), "x": [s], "y": [s]}, CaptureLimits(), True),
        (_met_again_under_itself, CaptureLimits(), False),
    ],
    ids=["shared", "budget-runs-out", "under-a-secret-name", "met-again-under-itself"],
)
def test_a_part_met_again_in_a_value_is_copied_where_that_is_the_same(
    make: Callable[[], Any], limits: CaptureLimits, copied: bool
) -> None:
    # GIVEN a value holding one part in several places (the walk copies what it found for the
    # part the first time, rather than walking it again: nbody's bodies in its pairs)
    value = make()
    tracer, _, encoder = _encoders(limits)
    # WHEN it is encoded again and again (the identity map knowing its objects: the encoder
    # then reads the walk's log of parts, copies included)
    for _ in range(3):
        # THEN each encoding is the Python encoder's: a copy stands for a part only where
        # walking it again would give the same (no cut for want of budget, no back reference)
        assert tracer._c_encode(value) == _python(encoder, value)
    assert (tracer.counters()["part_copies"] > 0) == copied


def test_the_c_encoder_keeps_no_reference_to_values() -> None:
    tracer, _, _ = _encoders(CaptureLimits())
    value = Plain(items=[1, 2, {"k": (3, 4)}])
    before = sys.getrefcount(value), sys.getrefcount(value.items)
    for _ in range(100):
        tracer._c_encode(value)
    assert (sys.getrefcount(value), sys.getrefcount(value.items)) == before


def test_encoding_the_same_values_again_allocates_nothing_lasting() -> None:
    # A reference leaked per node would keep every venc alive: thousands of blocks per round.
    tracer, _, _ = _encoders(CaptureLimits())
    values = [CASES[name] for name in sorted(CASES)]
    rounds = []
    for _ in range(6):
        for _ in range(50):
            for value in values:
                tracer._c_encode(value)
        rounds.append(sys.getallocatedblocks())
    assert rounds[-1] - rounds[2] < 100, rounds


def test_each_class_in_use_is_classified_once_wherever_it_was_allocated() -> None:
    # The walk caches how each class is read, keyed by the class's address. With 400 classes
    # in use together some share a home slot whatever the addresses; a cache that let one
    # push another out asked the encoder again at every walk (richards.py ran 17 times slower
    # in about one run in ten).
    tracer, _, encoder = _encoders(CaptureLimits(max_items=1000, max_nodes=5000))
    classes = [type(f"Kind{i}", (Plain,), {}) for i in range(400)]
    value = [cls(n=i) for i, cls in enumerate(classes)]
    assert tracer._c_encode(value) == _python(encoder, value)
    first = tracer.counters()["classes_asked"]
    assert first >= len(classes)
    for _ in range(3):
        value[0].n += 1  # a change: the walk reads every object again
        assert tracer._c_encode(value) == _python(encoder, value)
    assert tracer.counters()["classes_asked"] == first


def _memo_slot(obj: object) -> int:
    """The slot of the C encoder's memo of identity-map answers for `obj` (fp_slot_of, 4096)."""
    return ((id(obj) * 0x9E3779B97F4A7C15) % 2**64 >> 32) & 4095


def test_two_lists_whose_addresses_share_a_memo_slot_are_both_remembered() -> None:
    # GIVEN two lists in one value whose addresses give the same slot of the encoder's memo of
    # the identity map's answers (a list's serial is asked of the map by its address)
    kept: dict[int, list[int]] = {}
    pair = None
    while pair is None:
        candidate = [len(kept)]
        slot = _memo_slot(candidate)
        if slot in kept:
            pair = [kept[slot], candidate]
        else:
            kept[slot] = candidate
    tracer, _, encoder = _encoders(CaptureLimits())
    value = {"one": pair[0], "two": pair[1]}
    # (the first encodings' answers are out of date once they gave out serials)
    for i in range(3):
        pair[0][0] = pair[1][0] = i
        assert tracer._c_encode(value) == _python(encoder, value)
    asked = tracer.counters()["python_calls"]
    # WHEN both change and the value is encoded again and again
    for i in range(3):
        pair[0][0] = pair[1][0] = -i
        assert tracer._c_encode(value) == _python(encoder, value)
    # THEN the map is not asked about either list again: the memo keeps both (one slot each
    # pushed the other out at every encoding, a call into Python each time: recording nbody
    # took 40% longer in one run in three)
    assert tracer.counters()["python_calls"] == asked


def test_an_unchanged_part_is_shared_and_a_changed_part_is_encoded_again() -> None:
    tracer, _, encoder = _encoders(CaptureLimits())
    child = Plain(items=[1, 2, 3])
    other = Plain(x=1, more={"k": [5, 6]})
    root = Plain(child=child, other=other)
    first = tracer._c_encode(root)
    assert first == _python(encoder, root)
    root.flag = True  # the root changed, its parts did not
    second = tracer._c_encode(root)
    assert second == _python(encoder, root)
    assert second[3]["child"] is first[3]["child"]
    assert second[3]["other"] is first[3]["other"]
    child.items.append(4)  # a change two levels down
    third = tracer._c_encode(root)
    assert third == _python(encoder, root)
    assert third[3]["child"] is not second[3]["child"]
    assert third[3]["child"][3]["items"][3] == 4
    assert third[3]["other"] is second[3]["other"]


def test_a_changed_slot_is_encoded_again() -> None:
    # The walk reads slots by their offsets: setting, changing, mutating and deleting one must
    # each change the fingerprint, or the old venc would be reused.
    tracer, _, encoder = _encoders(CaptureLimits())
    pair = SlottedPair()
    pair.b = [1]
    value = Plain(p=pair, again=pair)
    changes = [
        lambda: setattr(pair, "b", [2]),
        lambda: pair.b.append(3),
        lambda: delattr(pair, "b"),
        lambda: setattr(pair, "a", Slotted()),
        lambda: setattr(pair, "password", "changed"),
    ]
    before = tracer._c_encode(value)
    assert before == _python(encoder, value)
    for change in changes:
        change()
        after = tracer._c_encode(value)
        assert after == _python(encoder, value)
        assert after != before
        before = after


def test_a_new_date_or_duration_is_encoded_again() -> None:
    # Dates are values: the walk reads their fields, so an equal one reuses the text, another
    # one (even at the same address, once the first is gone) does not.
    tracer, _, encoder = _encoders(CaptureLimits())
    holder = Plain(when=datetime.datetime(2026, 1, 1), took=datetime.timedelta(seconds=1))
    seen = [tracer._c_encode(holder)]
    assert seen[-1] == _python(encoder, holder)
    for i in range(1, 20):
        holder.when = datetime.datetime(2026, 1, 1 + i % 28, i % 24)
        holder.took = datetime.timedelta(seconds=i)
        seen.append(tracer._c_encode(holder))
        assert seen[-1] == _python(encoder, holder)
        assert seen[-1] != seen[-2]


def _decimals(rng: random.Random) -> list[decimal.Decimal]:
    """Decimals that differ in every part of their text, and some equal in value only."""
    texts = [
        "0",
        "-0",
        "0E+5",
        "0.000",
        "1",
        "1.0",
        "1.00",
        "-1",
        "1E+3",
        "1000",
        "NaN",
        "-NaN",
        "NaN7",
        "sNaN",
        "sNaN7",
        "-sNaN123",
        "Infinity",
        "-Infinity",
        "9" * 19,
        "1" + "0" * 19,
        "1" + "0" * 18 + "1",
        "12345678901234567890123E5",
        "-12345678901234567890123E5",
        "1E-7",
        "0.0000001",
        "1" * 60,
        "1" * 59 + "2",
        "2" + "1" * 59,
    ]
    for _ in range(300):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 45)))
        texts.append(f"{rng.choice(['', '-'])}{digits}E{rng.randint(-30, 30)}")
    return [decimal.Decimal(text) for text in texts] + [
        decimal.Decimal(t) / 3 for t in texts[:20] if decimal.Decimal(t).is_finite()
    ]


def test_decimals_are_told_apart_by_their_fields_exactly_as_by_their_text() -> None:
    # The walk reads a C Decimal's sign, exponent and coefficient instead of making its text (a
    # fresh Decimal per sum made its text at every walk): two Decimals must give the same
    # fingerprint exactly when their texts are the same. Each is a new object (copy_abs and
    # copy_sign are exact), so that nothing is found remembered by identity.
    tracer, _, encoder = _encoders(CaptureLimits())
    holder: list[Any] = [None]
    by_text: dict[str, set[int]] = {}
    for value in _decimals(random.Random(7)):
        holder[0] = value.copy_abs().copy_sign(value)
        assert tracer._c_encode(holder) == _python(encoder, holder)  # the holder's serial first
        by_text.setdefault(repr(holder[0]), set()).add(tracer._c_fingerprint(holder))
    assert tracer.counters()["decimal_fields"], "the C Decimal's layout was not recognised"
    assert {text: fps for text, fps in by_text.items() if len(fps) != 1 or 0 in fps} == {}
    firsts = [next(iter(fps)) for fps in by_text.values()]
    assert len(set(firsts)) == len(firsts) > 300


def test_a_new_uuid_is_encoded_again() -> None:
    # UUIDs are values read by their 128 bits: each new one (high or low half) is shown anew.
    tracer, _, encoder = _encoders(CaptureLimits())
    holder = Plain(id=uuid.UUID(int=1))
    seen = [tracer._c_encode(holder)]
    assert seen[-1] == _python(encoder, holder)
    for i in (2, 1 << 64, (1 << 64) + 2, (1 << 127) | 2):
        holder.id = uuid.UUID(int=i)
        seen.append(tracer._c_encode(holder))
        assert seen[-1] == _python(encoder, holder)
        assert seen[-1] != seen[-2]


def test_a_new_path_is_encoded_again() -> None:
    # Paths are values read by the slots their text is made of: each new one is shown anew, and
    # one whose text pathlib cached meanwhile is shown as it was.
    tracer, _, encoder = _encoders(CaptureLimits())
    holder = Plain(path=pathlib.Path("/srv/0"))
    seen = [tracer._c_encode(holder)]
    assert seen[-1] == _python(encoder, holder)
    for i in range(1, 10):
        holder.path = pathlib.Path("/srv", str(i)) if i % 2 else pathlib.Path(f"/srv/{i}")
        seen.append(tracer._c_encode(holder))
        assert seen[-1] == _python(encoder, holder)
        assert seen[-1] != seen[-2]
        str(holder.path)
        assert tracer._c_encode(holder) == seen[-1]


def test_sockets_are_read_with_their_identity() -> None:
    # A socket's text shows its fd, family, type and proto: a closed one (fd -1) is shown anew,
    # and two sockets with the same text stay two objects.
    tracer, _, encoder = _encoders(CaptureLimits())
    left, right = socket.socketpair()
    holder = Plain(conn=left, peer=right, both=[left, right])
    try:
        first = tracer._c_encode(holder)
        assert first is not NotImplemented
        assert first == _python(encoder, holder)
        left.close()
        closed = tracer._c_encode(holder)
        assert closed == _python(encoder, holder)
        assert closed != first
    finally:
        left.close()
        right.close()


def test_asyncio_objects_are_read_where_their_classes_allow() -> None:
    # A queue with a waiting getter holds a deque of futures and the event loop, which holds
    # sockets: all read by the C core on 3.12+ (futures are C objects with an instance dict);
    # on 3.11 the future's class is a static C type, left to the Python encoder.
    tracer, _, encoder = _encoders(CaptureLimits())
    seen = []

    async def main() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        waiter = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        future = asyncio.get_running_loop().create_future()
        future.note = [1]  # type: ignore[attr-defined]
        for value in (queue, future, Plain(queue=queue, future=future)):
            seen.append((tracer._c_encode(value), _python(encoder, value)))
        await queue.put(1)
        await waiter

    asyncio.run(main())
    for c_venc, py_venc in seen:
        if sys.version_info >= (3, 12):
            assert c_venc is not NotImplemented
        if c_venc is not NotImplemented:
            assert c_venc == py_venc


def test_a_part_is_not_shared_where_the_budget_or_depth_differs() -> None:
    # The same list, met with less budget left, is cut elsewhere: never the earlier venc.
    tracer, _, encoder = _encoders(CaptureLimits(max_nodes=12))
    shared = list(range(8))
    values = [[shared], [list(range(6)), shared], [[[shared]]], [shared]]
    for value in values:
        assert tracer._c_encode(value) == _python(encoder, value)


def test_a_part_with_a_back_reference_above_it_is_not_shared() -> None:
    tracer, _, encoder = _encoders(CaptureLimits())
    a = Plain(name="a")
    b = Plain(back=a, data=[1])
    a.child = b
    c = Plain(child=b)  # b's venc under c has no back reference: a different encoding
    for value in (a, c, a, c):
        assert tracer._c_encode(value) == _python(encoder, value)


def _mutate(rng: random.Random, pool: list[Any]) -> None:
    target = rng.choice(pool)
    if isinstance(target, list):
        if target and rng.random() < 0.4:
            target.pop(rng.randrange(len(target)))
        else:
            target.append(rng.choice([1, "x", None, rng.choice(pool)]))
    elif isinstance(target, deque):
        if target and rng.random() < 0.4:
            target.popleft()
        else:
            target.appendleft(rng.choice([4, "v", rng.choice(pool)]))
    elif isinstance(target, set):
        if target and rng.random() < 0.4:
            target.discard(next(iter(target)))
        else:
            target.add(rng.choice([5, "w", ("password", 1), frozenset({6})]))
    elif isinstance(target, dict):
        if target and rng.random() < 0.4:
            del target[next(iter(target))]
        else:
            target[rng.choice(["k0", "new", "password", 7])] = rng.choice(
                [2, [3], rng.choice(pool)]
            )
    else:
        setattr(
            target, rng.choice(["a0", "data", "token", "z"]), rng.choice([3, "y", rng.choice(pool)])
        )


@pytest.mark.parametrize("seed", range(12))
def test_values_changed_between_encodings_encode_alike(seed: int) -> None:
    # The cached parts must follow every change: mutate a random container or object of a pool
    # of values, encode a random one, compare; again and again. Half the seeds use an identity
    # map small enough to rotate its generations many times (forgotten entries, new serials).
    rng = random.Random(1000 + seed)
    tracer, c_side, encoder = _encoders(
        CaptureLimits(max_nodes=rng.choice([40, 1024])), identity_limit=16 if seed % 2 else 1 << 15
    )
    pool: list[Any] = []
    roots = [_random_value(rng, 0, pool) for _ in range(6)]
    pool = [x for x in pool if isinstance(x, (list, dict, deque, Plain, Other))] or [[]]
    for _ in range(150):
        _mutate(rng, pool)
        value = rng.choice(roots)
        c_venc = tracer._c_encode(value)
        py_venc = _python(encoder, value)
        if c_venc is NotImplemented:
            _python(c_side, value)
            continue
        assert c_venc == py_venc
