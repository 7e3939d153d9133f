"""The snapshot encoder: every kind of value, the limits, recursion, and THE RULE (no user code).

The hostile zoo at the bottom is the heart of it: classes whose every hook records a side effect
and raises. Encoding them must leave no side effect, no fault, and run no Python function outside
replay's own encoder modules (checked with sys.setprofile).
"""

from __future__ import annotations

import abc
import asyncio
import collections
import datetime
import decimal
import enum
import fractions
import functools
import gc
import json
import marshal
import os
import pathlib
import re
import socket
import subprocess
import sys
import threading
import types
import uuid
import weakref
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replay.events import (
    V_ATOMSUB,
    V_BIGINT,
    V_CUT,
    V_ENUM,
    V_ERROR,
    V_MAP,
    V_OBJ,
    V_OPAQUE,
    V_REDACTED,
    V_REF,
    V_SEQ,
)
from replay.exceptions import ConfigError
from replay.recorder import identity as identity_module
from replay.recorder import redaction as redaction_module
from replay.recorder import snapshot as snapshot_module
from replay.recorder.identity import IdentityMap
from replay.recorder.redaction import Redactor
from replay.recorder.snapshot import CaptureLimits, SnapshotEncoder
from replay.values import plain, short_repr, to_json


@pytest.fixture
def enc() -> SnapshotEncoder:
    return SnapshotEncoder()


def wide() -> SnapshotEncoder:
    """An encoder whose limits never bind for the small values the property tests make.

    Redaction is off: generated dict keys such as 'SESSION' are rightly redacted, which is not
    what the repr properties test (redaction has tests of its own).
    """
    return SnapshotEncoder(
        CaptureLimits(max_depth=100, max_items=1000, max_nodes=100_000),
        Redactor(defaults=False),
    )


def roundtrip(venc: Any) -> Any:
    """Every venc must survive marshal, the format the store writes."""
    data = marshal.dumps(venc)
    back = marshal.loads(data)
    assert back == venc or repr(back) == repr(venc)  # NaN != NaN
    return back


# -- atoms -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        7,
        2**100,
        -(10**999),
        1.5,
        -0.0,
        float("inf"),
        "",
        "héllo\n",
        "x" * 1024,
        b"",
        b"\x00\xff",
        b"y" * 1024,
    ],
)
def test_exact_atoms_are_stored_as_themselves(enc: SnapshotEncoder, value: Any) -> None:
    venc = enc.encode(value)
    assert venc is value
    assert to_json(venc) == {"type": type(value).__name__, "repr": repr(value)}
    assert short_repr(venc, limit=None) == repr(value)
    assert plain(venc) is value


def test_nan_round_trips(enc: SnapshotEncoder) -> None:
    nan = float("nan")
    assert to_json(enc.encode(nan))["repr"] == "nan"


def test_long_str_and_bytes_are_cut_with_their_length(enc: SnapshotEncoder) -> None:
    s = "ab" * 1000
    venc = enc.encode(s)
    assert venc == (V_CUT, "str", s[:1024], 2000)
    js = to_json(venc)
    assert js == {"type": "str", "repr": repr(s[:1024]), "length": 2000, "truncated": True}
    b = b"\x01" * 5000
    assert enc.encode(b) == (V_CUT, "bytes", b[:1024], 5000)
    assert plain(enc.encode(s)) == s[:1024]


def test_int_digit_limit_boundary(enc: SnapshotEncoder) -> None:
    assert enc.encode(10**1000 - 1) == 10**1000 - 1  # 1000 digits: stored whole
    venc = enc.encode(10**1000)  # 1001 digits
    assert venc[0] == V_BIGINT
    assert venc[1] == "int"
    assert venc[3] == 1001
    assert venc[2] == "1" + "0" * 31


def int_text(n: int) -> str:
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return str(n)
    finally:
        sys.set_int_max_str_digits(old)


@pytest.mark.parametrize("digits", [1001, 1234, 4300, 4301, 9000])
def test_bigint_prefix_and_digits_are_exact(enc: SnapshotEncoder, digits: int) -> None:
    n = 7 * 10 ** (digits - 1) + 123456789 * 10 ** (digits - 40) + 1
    text = int_text(n)
    assert len(text) == digits
    for value in (n, -n):
        tag, name, prefix, full = enc.encode(value)
        assert (tag, name, full) == (V_BIGINT, "int", digits)
        assert prefix == ("-" if value < 0 else "") + text[:32]
        js = to_json((tag, name, prefix, full))
        assert js["truncated"] is True and js["length"] == digits
        assert js["repr"] == prefix + "..."
    assert plain(enc.encode(n)) == f"{text[:32]}...({digits} digits)"


def test_huge_int_never_trips_the_int_str_limit(enc: SnapshotEncoder) -> None:
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        huge = 3**300_000  # ~143,000 digits
        tag, name, prefix, digits = enc.encode(huge)
        assert (tag, name) == (V_BIGINT, "int")
        assert prefix.startswith("0x")  # beyond ~10,000 digits: hex leading digits
        assert int(prefix, 16) == huge >> (huge.bit_length() - 4 * (len(prefix) - 2))
        assert abs(digits - 143_137) <= 1
        mid = 10**2000 + 7  # under the exact threshold, over the lowered str limit
        tag, _, prefix, digits = enc.encode(mid)
        assert (tag, prefix, digits) == (V_BIGINT, "1" + "0" * 31, 2001)
        assert enc.faults == 0
        assert "digits" in short_repr(enc.encode(huge))
    finally:
        sys.set_int_max_str_digits(old)


def test_bigint_subclass(enc: SnapshotEncoder) -> None:
    class Big(int):
        pass

    venc = enc.encode(Big(10**3000))
    assert venc[0] == V_ATOMSUB
    assert venc[2][0] == V_BIGINT and venc[2][3] == 3001


def test_raised_int_limit_reads_back(enc: SnapshotEncoder) -> None:
    e = SnapshotEncoder(CaptureLimits(max_int_digits=6000))
    n = 10**5000 + 3
    assert e.encode(n) == n
    expected = int_text(n)
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(4300)
    try:
        assert to_json(n)["repr"] == expected  # the reader converts in chunks, never fails
        assert short_repr(n, limit=None) == expected
        assert to_json(-n)["repr"] == "-" + expected
    finally:
        sys.set_int_max_str_digits(old)


# -- containers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        [],
        [1, "a", None],
        (),
        (1,),
        (1, 2.5),
        set(),
        {3},
        frozenset(),
        frozenset({1}),
        {},
        {"a": 1, 2: [b"x"]},
        collections.deque(),
        collections.deque([1, (2, 3)]),
        [[[]]],
        {"k": {"n": (1, {2})}},
    ],
)
def test_plain_containers_print_like_python(enc: SnapshotEncoder, value: Any) -> None:
    venc = roundtrip(enc.encode(value))
    assert short_repr(venc, limit=None) == repr(value)
    assert to_json(venc)["repr"] == repr(value)


def test_ordered_dict_and_friends(enc: SnapshotEncoder) -> None:
    od = collections.OrderedDict([("a", 1), ("b", 2), ("c", 3)])
    od.move_to_end("a")
    venc = enc.encode(od)
    assert venc[0] == V_MAP and venc[2] == "collections.OrderedDict"
    assert short_repr(venc) == "OrderedDict({'b': 2, 'c': 3, 'a': 1})"
    assert short_repr(enc.encode(collections.OrderedDict())) == "OrderedDict()"
    dd = collections.defaultdict(list, {"x": [1]})
    assert short_repr(enc.encode(dd)) == "defaultdict({'x': [1]})"
    c = collections.Counter("aab")
    assert short_repr(enc.encode(c)) == "Counter({'a': 2, 'b': 1})"
    assert short_repr(enc.encode(collections.Counter())) == "Counter()"


def test_container_json_shape(enc: SnapshotEncoder) -> None:
    value = [1, {"a": (2,)}]
    js = to_json(enc.encode(value))
    assert js["type"] == "list" and js["length"] == 2 and isinstance(js["id"], int)
    assert js["items"][0] == {"type": "int", "repr": "1"}
    inner = js["items"][1]
    assert inner["type"] == "dict" and inner["items"][0][0] == {"type": "str", "repr": "'a'"}
    assert inner["items"][0][1]["type"] == "tuple"
    assert "truncated" not in js
    assert plain(enc.encode(value)) == [1, [("a", [2])]]


def test_width_limit_keeps_length(enc: SnapshotEncoder) -> None:
    value = list(range(100))
    venc = enc.encode(value)
    assert venc[3] == 100 and venc[4] == list(range(64))
    js = to_json(venc)
    assert js["truncated"] is True and js["length"] == 100 and len(js["items"]) == 64
    assert short_repr(venc, limit=None).endswith("63, ...]")
    d = {i: i for i in range(70)}
    venc = enc.encode(d)
    assert venc[3] == 70 and len(venc[4]) == 64
    assert short_repr(venc, limit=None).endswith("63: 63, ...}")
    s = set(range(80))
    assert len(enc.encode(s)[4]) == 64


def test_depth_limit(enc: SnapshotEncoder) -> None:
    value: Any = "leaf"
    for _ in range(8):
        value = [value]
    venc = enc.encode(value)
    depth = 0
    node = venc
    while node[4] is not None:
        node = node[4][0]
        depth += 1
    assert depth == 4  # levels 0..3 expanded, level 4 has items None
    assert node[0] == V_SEQ and node[3] == 1
    assert short_repr(venc) == "[[[[[...]]]]]"
    assert to_json(venc)["items"][0]["items"][0]["items"][0]["items"][0]["truncated"] is True


def test_objects_past_depth_are_unexpanded(enc: SnapshotEncoder) -> None:
    class Node:
        def __init__(self, child: Any) -> None:
            self.child = child

    n: Any = None
    for _ in range(6):
        n = Node(n)
    venc = enc.encode(n)
    for _ in range(4):
        venc = venc[3]["child"]
    assert venc[0] == V_OBJ and venc[3] is None and venc[4] is True
    assert short_repr(venc).endswith("Node ...>")


def test_node_budget_bounds_work() -> None:
    e = SnapshotEncoder(CaptureLimits(max_nodes=100))
    grid = [list(range(64)) for _ in range(64)]
    venc = e.encode(grid)
    expanded = [row for row in venc[4] if row[4] is not None]
    total = len(venc[4]) + sum(len(row[4]) for row in expanded)
    assert total <= 100
    assert venc[4][-1][4] is None  # later rows left unexpanded
    assert e.faults == 0


def test_limits_validate() -> None:
    with pytest.raises(ConfigError):
        CaptureLimits(max_depth=-1)
    with pytest.raises(ConfigError):
        CaptureLimits(max_int_digits=0)
    zero = SnapshotEncoder(CaptureLimits(max_depth=0))
    assert zero.encode([1])[4] is None


def test_container_subclasses_keep_their_type(enc: SnapshotEncoder) -> None:
    class MyList(list):
        pass

    class MyDict(dict):
        pass

    venc = enc.encode(MyList([1, 2]))
    assert venc[0] == V_SEQ and venc[2].endswith("MyList") and venc[4] == [1, 2]
    venc = enc.encode(MyDict(a=1))
    assert venc[0] == V_MAP and venc[4] == [("a", 1)]
    assert short_repr(venc).endswith("MyDict({'a': 1})")


def test_namedtuple_is_an_object_with_fields(enc: SnapshotEncoder) -> None:
    Point = collections.namedtuple("Point", "x y")

    class Pair(NamedTuple):
        left: int
        token: str

    venc = enc.encode(Point(1, [2]))
    assert venc[0] == V_OBJ and venc[2].endswith("Point")
    assert venc[3]["x"] == 1 and venc[3]["y"][0] == V_SEQ
    assert plain(venc) == {"x": 1, "y": [2]}
    venc = enc.encode(Pair(1, "s3cr3t"))
    assert venc[3]["token"] == (V_REDACTED, "str")


# -- recursion -------------------------------------------------------------------------------------


def test_self_containing_list_and_dict(enc: SnapshotEncoder) -> None:
    lst: list[Any] = [1]
    lst.append(lst)
    venc = roundtrip(enc.encode(lst))
    assert venc[4][1] == (V_REF, venc[1], "list")
    assert short_repr(venc) == repr(lst) == "[1, [...]]"
    d: dict[str, Any] = {}
    d["me"] = d
    venc = enc.encode(d)
    assert venc[4][0][1] == (V_REF, venc[1], "dict")
    assert short_repr(venc) == repr(d)
    assert plain(venc)[0][1] is not None


def test_mutual_object_cycle(enc: SnapshotEncoder) -> None:
    class A:
        pass

    a, b = A(), A()
    a.other, b.other = b, a
    venc = enc.encode(a)
    inner = venc[3]["other"]
    assert inner[0] == V_OBJ
    assert inner[3]["other"] == (V_REF, venc[1], venc[2])
    assert "..." in short_repr(venc)
    roundtrip(venc)


def test_shared_but_not_recursive_is_not_a_ref(enc: SnapshotEncoder) -> None:
    shared = [1]
    venc = enc.encode([shared, shared])
    assert venc[4][0] == venc[4][1]
    assert venc[4][0][0] == V_SEQ  # siblings are expanded twice, with the same obj_id


# -- objects ---------------------------------------------------------------------------------------


class Plain:
    def __init__(self) -> None:
        self.a = 1
        self.b = "x"


class Slotted:
    __slots__ = ("__weakref__", "p", "q")

    def __init__(self) -> None:
        self.p = 1  # q stays unset


class Both(Slotted):
    def __init__(self) -> None:
        super().__init__()
        self.extra = [1]


def test_plain_object(enc: SnapshotEncoder) -> None:
    venc = roundtrip(enc.encode(Plain()))
    assert venc[0] == V_OBJ and venc[2] == f"{__name__}.Plain"
    assert venc[3] == {"a": 1, "b": "x"} and venc[4] is False
    assert short_repr(venc) == f"<{__name__}.Plain a=1 b='x'>"
    js = to_json(venc)
    assert js["attrs"]["b"] == {"type": "str", "repr": "'x'"}
    assert plain(venc) == {"a": 1, "b": "x"}


def test_slots_and_unset_slots(enc: SnapshotEncoder) -> None:
    assert enc.encode(Slotted())[3] == {"p": 1}
    venc = enc.encode(Both())
    assert venc[3] == {"extra": (V_SEQ, venc[3]["extra"][1], "list", 1, [1]), "p": 1}


def test_too_many_attrs(enc: SnapshotEncoder) -> None:
    obj = Plain()
    for i in range(100):
        setattr(obj, f"f{i}", i)
    venc = enc.encode(obj)
    assert len(venc[3]) == 64 and venc[4] is True
    assert to_json(venc)["truncated"] is True
    assert short_repr(venc, limit=None).endswith(" ...>")


def test_private_slots_are_mangled_names(enc: SnapshotEncoder) -> None:
    class Private:
        __slots__ = ("__hidden",)

        def __init__(self) -> None:
            self.__hidden = 5

    assert enc.encode(Private())[3] == {"_Private__hidden": 5}


def test_objects_with_c_members(enc: SnapshotEncoder) -> None:
    venc = enc.encode(functools.partial(max, 1))
    assert venc[0] == V_OBJ and venc[3]["args"][4] == [1]
    assert enc.encode(slice(1, 2))[3] == {"start": 1, "stop": 2, "step": None}


class Color(enum.Enum):
    RED = 1
    GREEN = "g"


class Num(enum.IntEnum):
    ONE = 1


class Perm(enum.Flag):
    R = 4
    W = 2


class Mood(str, enum.Enum):  # noqa: UP042 - the mixin form is what is tested
    HAPPY = "happy"


@pytest.mark.parametrize(
    "member", [Color.RED, Color.GREEN, Num.ONE, Perm.R, Perm.R | Perm.W, Perm(0), Mood.HAPPY]
)
def test_enums(enc: SnapshotEncoder, member: enum.Enum) -> None:
    venc = roundtrip(enc.encode(member))
    assert venc[0] == V_ENUM
    assert venc[1] == f"{__name__}.{type(member).__qualname__}"
    assert venc[2] == member._name_
    assert short_repr(venc) == repr(member)
    js = to_json(venc)
    assert js["name"] == member._name_ and js["value"]["repr"] == repr(member._value_)
    assert plain(venc) == member._value_


def test_enum_class_and_values_are_opaque(enc: SnapshotEncoder) -> None:
    assert enc.encode(Color)[3] == f"<class '{__name__}.Color'>"


def test_atom_subclasses(enc: SnapshotEncoder) -> None:
    class S(str):
        pass

    class I(int):  # noqa: E742
        pass

    class F(float):
        pass

    class B(bytes):
        pass

    assert enc.encode(S("hi")) == (V_ATOMSUB, f"{__name__}.{S.__qualname__}", "hi")
    assert enc.encode(I(3))[2] == 3 and type(enc.encode(I(3))[2]) is int
    assert enc.encode(F(2.5))[2] == 2.5
    assert enc.encode(B(b"z"))[2] == b"z"
    long = enc.encode(S("q" * 2000))
    assert long[2] == (V_CUT, "str", "q" * 1024, 2000)
    assert to_json(long)["truncated"] is True
    assert to_json(enc.encode(S("hi")))["repr"] == "'hi'"
    assert plain(enc.encode(I(3))) == 3


def test_bytearray(enc: SnapshotEncoder) -> None:
    ba = bytearray(b"abc")
    venc = roundtrip(enc.encode(ba))
    assert venc == (V_ATOMSUB, "bytearray", b"abc")
    assert short_repr(venc) == repr(ba)
    assert to_json(venc)["repr"] == repr(ba)
    big = enc.encode(bytearray(3000))
    assert big[2][0] == V_CUT and big[2][3] == 3000


# -- opaque values ---------------------------------------------------------------------------------


def sample_function() -> None:
    pass


def sample_generator() -> Any:
    yield 1


async def sample_coroutine() -> None:
    pass


async def sample_async_generator() -> Any:
    yield 1


def test_callables_classes_modules(enc: SnapshotEncoder) -> None:
    def text(v: Any) -> str:
        venc = roundtrip(enc.encode(v))
        assert venc[0] == V_OPAQUE and venc[1] > 0
        return venc[3]

    assert text(sample_function) == f"<function {__name__}.sample_function>"
    assert text(lambda: 0).endswith(".<lambda>>")
    assert text(Plain().__init__) == f"<bound method Plain.__init__ of {__name__}.Plain object>"
    assert text(len) == "<built-in function len>"
    assert text([].append) == "<built-in method append of list object>"
    assert text(list.append) == "<method 'append' of 'list' objects>"
    assert text(object.__init__) == "<slot wrapper '__init__' of 'object' objects>"
    assert text((1).__add__) == "<method-wrapper '__add__' of int object>"
    assert text(Plain) == f"<class '{__name__}.Plain'>"
    assert text(int) == "<class 'int'>"
    assert text(os) == "<module 'os'>"
    assert text(sample_function.__code__).startswith("<code object sample_function, file ")
    assert text(sys._getframe()).startswith("<frame of test_callables_classes_modules, file ")
    gen = sample_generator()
    assert text(gen) == "<generator object sample_generator>"
    coro = sample_coroutine()
    assert text(coro) == "<coroutine object sample_coroutine>"
    coro.close()
    agen = sample_async_generator()
    assert text(agen) == "<async_generator object sample_async_generator>"
    assert text(threading.Lock()) == "<unlocked _thread.lock object>"
    assert text(iter([1])) == "<list_iterator object>"
    assert text(memoryview(b"abc")) == "<memory nbytes=3>"
    assert enc.faults == 0


def test_socket_text(enc: SnapshotEncoder) -> None:
    with socket.socket() as s:
        venc = enc.encode(s)
        assert venc[0] == V_OPAQUE
        assert venc[3] == f"<socket.socket fd={s.fileno()}, family=2, type=1, proto=0>"


class UserTz(datetime.tzinfo):
    def utcoffset(self, dt: Any) -> datetime.timedelta:
        return datetime.timedelta(0)

    def __repr__(self) -> str:
        raise AssertionError("user __repr__ ran")


@pytest.mark.parametrize(
    "value",
    [
        datetime.date(2024, 2, 29),
        datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
        datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC),
        datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone(datetime.timedelta(hours=2), "X")),
        datetime.time(1, 2, 3),
        datetime.timedelta(days=1, seconds=5),
        datetime.UTC,
        decimal.Decimal("1.50"),
        decimal.Decimal("-Infinity"),
        uuid.UUID(int=0x1234),
        uuid.uuid4(),
        fractions.Fraction(3, 7),
        re.compile(r"a+b", re.IGNORECASE),
        re.compile(rb"x"),
        complex(1, -2),
        range(1, 10, 3),
        ...,
        NotImplemented,
    ],
)
def test_stdlib_value_types_print_like_python(enc: SnapshotEncoder, value: Any) -> None:
    venc = roundtrip(enc.encode(value))
    assert venc[0] == V_OPAQUE and venc[1] == 0  # values: no identity
    assert venc[3] == repr(value)
    assert to_json(venc)["id"] is None
    assert plain(venc) == repr(value)


def test_match_object(enc: SnapshotEncoder) -> None:
    m = re.search("b+", "abbbc")
    assert enc.encode(m)[3] == repr(m)


def test_datetime_with_user_tzinfo_falls_back(enc: SnapshotEncoder) -> None:
    venc = enc.encode(datetime.datetime(2024, 1, 1, tzinfo=UserTz()))
    assert venc[3] == "<datetime.datetime object>"
    assert enc.faults == 0


PATHS = ["a//b/./c/", "/", "//x", "///x", "", ".", "a/../b", "/usr/lib/", "x/./"]


@pytest.mark.parametrize("raw", PATHS)
@pytest.mark.parametrize("cls", [pathlib.PurePosixPath, pathlib.PosixPath])
def test_posix_paths_print_like_python(enc: SnapshotEncoder, raw: str, cls: type) -> None:
    fresh = cls(raw)  # str() not computed yet: the text comes from the raw slots
    venc = enc.encode(fresh)
    assert venc[3] == repr(fresh)
    joined = cls(raw) / "q" / "/abs" / "r"
    venc = enc.encode(joined)
    assert venc[3] == repr(joined)
    two = cls(raw, "s/t")
    assert enc.encode(two)[3] == repr(two)


# -- redaction -------------------------------------------------------------------------------------

SECRET = "hunter2-XYZZY"


def assert_secret_absent(venc: Any) -> None:
    data = marshal.dumps(venc)
    assert SECRET.encode() not in data
    assert SECRET.encode("utf-16-le") not in data


def test_secret_variable_names(enc: SnapshotEncoder) -> None:
    venc = enc.encode_named("db_password", SECRET)
    assert venc == (V_REDACTED, "str")
    assert to_json(venc) == {"type": "str", "repr": "<redacted>", "redacted": True}
    assert short_repr(venc) == "<redacted>"
    assert enc.encode_named("AUTH_TOKEN", [SECRET]) == (V_REDACTED, "list")
    assert enc.encode_named("author", "Ann") == "Ann"
    assert enc.encode_named("count", 3) == 3


def test_secret_dict_keys_attrs_and_header_pairs(enc: SnapshotEncoder) -> None:
    class Config:
        def __init__(self) -> None:
            self.user = "ann"
            self.api_key = SECRET

    value = {
        "user": "ann",
        "Authorization": f"Bearer {SECRET}",
        b"set-cookie": SECRET.encode(),
        "nested": {"X-Api-Key": SECRET, "safe": 1},
        "headers": [("Content-Type", "text/plain"), ("Cookie", SECRET), ["X-Token", SECRET]],
        "asgi": [(b"authorization", SECRET.encode())],
        "config": Config(),
        "tuple_of_pairs": (("password", SECRET),),
    }
    venc = roundtrip(enc.encode(value))
    assert_secret_absent(venc)
    flat = repr(venc)
    assert "ann" in flat and "text/plain" in flat and "Content-Type" in flat
    pairs = dict((k, v) for k, v in venc[4] if isinstance(k, str))
    assert pairs["Authorization"] == (V_REDACTED, "str")
    headers = pairs["headers"][4]
    assert headers[0][4] == ["Content-Type", "text/plain"]
    assert headers[1][4] == ["Cookie", (V_REDACTED, "str")]
    assert headers[2][4] == ["X-Token", (V_REDACTED, "str")]
    config = pairs["config"]
    assert config[3] == {"user": "ann", "api_key": (V_REDACTED, "str")}
    assert "<redacted>" in short_repr(venc, limit=None)


def test_secret_in_exception_attrs(enc: SnapshotEncoder) -> None:
    err = ValueError("login failed")
    err.password = SECRET  # type: ignore[attr-defined]
    name, message, venc = enc.encode_exception(err)
    assert (name, message) == ("ValueError", "login failed")
    assert_secret_absent(venc)


def test_no_redaction_when_disabled() -> None:
    e = SnapshotEncoder(redactor=Redactor(defaults=False))
    assert e.encode_named("password", "p") == "p"
    assert e.encode({"token": "t"})[4] == [("token", "t")]


def test_custom_patterns() -> None:
    e = SnapshotEncoder(redactor=Redactor(["^ssn$"], defaults=False))
    assert e.encode_named("ssn", 123)[0] == V_REDACTED
    assert e.encode_named("password", 1) == 1


# -- identity --------------------------------------------------------------------------------------


def test_aliasing_shows_one_object(enc: SnapshotEncoder) -> None:
    a = [1]
    b = a
    first = enc.encode_named("a", a)
    second = enc.encode_named("b", b)
    assert first[1] == second[1]
    a.append(2)
    assert enc.encode_named("b", b)[4] == [1, 2]
    assert enc.encode_named("b", b)[1] == first[1]
    other = [1, 2]
    assert enc.encode(other)[1] != first[1]


def test_identity_does_not_keep_objects_alive(enc: SnapshotEncoder) -> None:
    obj = Plain()
    ref = weakref.ref(obj)
    enc.encode({"o": obj, "f": sample_function})
    del obj
    gc.collect()
    assert ref() is None


def test_trap3_ids_reused_keys_differ(enc: SnapshotEncoder) -> None:
    seen_ids: dict[int, int] = {}
    reused = 0
    for _ in range(200):
        obj = Plain()
        key = enc.encode(obj)[1]
        if id(obj) in seen_ids:
            reused += 1
            assert seen_ids[id(obj)] != key
        seen_ids[id(obj)] = key
        del obj
    assert reused > 0  # CPython did reuse addresses: the test exercised the trap


def test_classes_are_not_kept_alive() -> None:
    e = SnapshotEncoder()
    Dyn = type("Dyn", (), {"__init__": lambda self: setattr(self, "v", 1)})
    e.encode(Dyn())
    ref = weakref.ref(Dyn)
    count = len(e._types)
    del Dyn
    gc.collect()
    assert ref() is None
    assert len(e._types) == count - 1


# -- faults ----------------------------------------------------------------------------------------


class BrokenIdentity(IdentityMap):
    def key(self, obj: Any) -> int:
        raise RuntimeError("identity store broke")


def test_faults_become_error_values() -> None:
    e = SnapshotEncoder(identity=BrokenIdentity())
    venc = e.encode([1, 2])
    assert venc == (V_ERROR, "list", "RuntimeError: identity store broke")
    assert e.faults == 1 and "identity store broke" in e.last_fault
    assert to_json(venc)["error"] == "RuntimeError: identity store broke"
    assert "not recorded" in short_repr(venc)
    assert e.encode(5) == 5
    venc = e.encode_named("x", {"a": 1})
    assert venc[0] == V_ERROR and e.faults == 2
    name, message, venc = e.encode_exception(KeyError("k"))
    assert (name, message, venc[0]) == ("KeyError", "'k'", V_ERROR)


def test_concurrent_encoding_from_threads(enc: SnapshotEncoder) -> None:
    shared = {"a": [1, 2, 3], "b": Plain()}
    results: list[Any] = []

    def work() -> None:
        for _ in range(300):
            results.append(enc.encode(shared))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({repr(r) for r in results}) == 1
    assert enc.faults == 0


# -- exceptions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad value"),
        ValueError("two", 2),
        ValueError(),
        KeyError("k"),
        KeyError(3),
        FileNotFoundError(2, "No such file or directory", "x.txt"),
        SyntaxError("invalid", ("f.py", 1, 2, "x y", 1, 3)),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        ImportError("no module", name="m"),
        StopIteration(5),
        ExceptionGroup("group", [ValueError(1)]),
    ],
)
def test_exception_messages_match_str(enc: SnapshotEncoder, exc: BaseException) -> None:
    name, message, venc = enc.encode_exception(exc)
    assert name == type(exc).__qualname__
    assert message == str(exc)
    assert venc[0] == V_OBJ and "args" in venc[3]
    roundtrip(venc)


def test_user_exception_with_hostile_str(enc: SnapshotEncoder) -> None:
    effects: list[str] = []

    class Boom(Exception):
        def __str__(self) -> str:
            effects.append("str")
            raise AssertionError("user __str__ ran")

        def __repr__(self) -> str:
            effects.append("repr")
            raise AssertionError("user __repr__ ran")

    class Key:
        def __repr__(self) -> str:
            effects.append("key repr")
            raise AssertionError

    assert enc.encode_exception(Boom("it broke"))[:2] == (
        f"{__name__}.{Boom.__qualname__}",
        "it broke",
    )
    _, message, _ = enc.encode_exception(KeyError(Key()))
    assert message.startswith(f"<{__name__}.") and "Key" in message
    _, message, _ = enc.encode_exception(Boom("a", 2))
    assert message == "('a', 2)"
    assert effects == [] and enc.faults == 0


def test_long_exception_message_is_cut(enc: SnapshotEncoder) -> None:
    _, message, _ = enc.encode_exception(ValueError("m" * 5000))
    assert len(message) == 1024 + 3 and message.endswith("...")


# -- the hostile zoo -------------------------------------------------------------------------------

EFFECTS: list[str] = []
ARMED = False


def hit(what: str) -> Any:
    if ARMED:
        EFFECTS.append(what)
        raise AssertionError(f"user code ran: {what}")
    return None


class HostileMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        hit("meta __instancecheck__")
        return False

    def __subclasscheck__(cls, sub: Any) -> bool:
        hit("meta __subclasscheck__")
        return False

    def __getattribute__(cls, name: str) -> Any:
        hit(f"meta __getattribute__ {name}")
        return super().__getattribute__(name)

    def __hash__(cls) -> int:
        hit("meta __hash__")
        return 1

    def __eq__(cls, other: Any) -> bool:
        hit("meta __eq__")
        return cls is other

    def __repr__(cls) -> str:
        hit("meta __repr__")
        return "HostileMeta instance"

    @property
    def __dict__(cls) -> Any:  # type: ignore[override]
        hit("meta __dict__")
        return {}


class LazyDescriptor:
    """Like a SQLAlchemy lazy relationship: loading it is a database query."""

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is not None:
            hit("lazy descriptor __get__")
        return self

    def __set__(self, obj: Any, value: Any) -> None:
        hit("lazy descriptor __set__")


HOOKS = [
    "__repr__",
    "__str__",
    "__eq__",
    "__ne__",
    "__lt__",
    "__gt__",
    "__le__",
    "__ge__",
    "__hash__",
    "__len__",
    "__iter__",
    "__reversed__",
    "__bool__",
    "__contains__",
    "__getitem__",
    "__getattr__",
    "__dir__",
    "__format__",
    "__sizeof__",
    "__reduce__",
    "__reduce_ex__",
    "__getstate__",
    "__copy__",
    "__deepcopy__",
    "__index__",
    "__int__",
    "__float__",
    "__str__",
    "__bytes__",
    "__fspath__",
    "__length_hint__",
    "__next__",
    "keys",
    "items",
    "values",
    "get",
    "copy",
    "__missing__",
    "count",
    "index",
    "__iter__",
]


def hostile_namespace(label: str) -> dict[str, Any]:
    ns: dict[str, Any] = {}
    for hook in HOOKS:

        def method(self: Any, *args: Any, _h: str = hook, **kwargs: Any) -> Any:
            hit(f"{label}.{_h}")
            raise AssertionError(_h)

        ns[hook] = method

    def getattribute(self: Any, name: str) -> Any:
        hit(f"{label}.__getattribute__ {name}")
        return object.__getattribute__(self, name)

    ns["__getattribute__"] = getattribute
    ns["__class__"] = property(lambda self: hit(f"{label}.__class__") or type(self))
    ns["prop"] = property(lambda self: hit(f"{label}.prop"))
    ns["lazy"] = LazyDescriptor()
    return ns


Hostile = HostileMeta("Hostile", (), hostile_namespace("Hostile"))
HostileList = type("HostileList", (list,), hostile_namespace("HostileList"))
HostileTuple = type("HostileTuple", (tuple,), hostile_namespace("HostileTuple"))
HostileDict = type("HostileDict", (dict,), hostile_namespace("HostileDict"))
HostileSet = type("HostileSet", (set,), hostile_namespace("HostileSet"))
HostileFrozen = type("HostileFrozen", (frozenset,), hostile_namespace("HostileFrozen"))
HostileDeque = type("HostileDeque", (collections.deque,), hostile_namespace("HostileDeque"))
HostileOD = type("HostileOD", (collections.OrderedDict,), hostile_namespace("HostileOD"))
HostileStr = type("HostileStr", (str,), hostile_namespace("HostileStr"))
HostileInt = type("HostileInt", (int,), hostile_namespace("HostileInt"))
HostileFloat = type("HostileFloat", (float,), hostile_namespace("HostileFloat"))
HostileBytes = type("HostileBytes", (bytes,), hostile_namespace("HostileBytes"))
HostileBytearray = type("HostileBytearray", (bytearray,), hostile_namespace("HostileBA"))
HostileError = type("HostileError", (Exception,), hostile_namespace("HostileError"))
HostileModule = type("HostileModule", (types.ModuleType,), hostile_namespace("HostileModule"))


class DictIsAProperty:
    """The class that adds the instance dict hides its descriptor behind a property."""

    @property
    def __dict__(self) -> Any:  # type: ignore[override]
        hit("DictIsAProperty.__dict__")
        return {}

    def __getattr__(self, name: str) -> Any:
        hit(f"DictIsAProperty.__getattr__ {name}")


class ShadowedSlot:
    __slots__ = ("value",)


class ShadowingSub(ShadowedSlot):
    __slots__ = ()
    value = property(lambda self: hit("ShadowingSub.value"))  # type: ignore[assignment]


class HostileABC(abc.ABC):  # noqa: B024 - only the hook matters
    @classmethod
    def __subclasshook__(cls, sub: Any) -> bool:
        hit("HostileABC.__subclasshook__")
        return True


class FakeQuerySet:
    """Django-like: repr/len/iter/bool evaluate the query."""

    def __init__(self) -> None:
        self._result_cache = None
        self.model = "Order"

    def __iter__(self) -> Any:
        hit("queryset __iter__")

    def __len__(self) -> int:
        hit("queryset __len__")
        return 0

    def __bool__(self) -> bool:
        hit("queryset __bool__")
        return False

    def __repr__(self) -> str:
        hit("queryset __repr__")
        return ""


class HostileEnum(enum.Enum):
    A = 1

    def __getattribute__(self, name: str) -> Any:
        hit(f"HostileEnum.__getattribute__ {name}")
        return object.__getattribute__(self, name)

    def __repr__(self) -> str:
        hit("HostileEnum.__repr__")
        return ""

    def __hash__(self) -> int:
        hit("HostileEnum.__hash__")
        return 0


class HostileKey:
    def __hash__(self) -> int:
        hit("HostileKey.__hash__")
        return 1

    def __eq__(self, other: Any) -> bool:
        hit("HostileKey.__eq__")
        return self is other

    def __repr__(self) -> str:
        hit("HostileKey.__repr__")
        return "key"


def build_zoo() -> dict[str, Any]:
    EFFECTS.clear()
    obj = Hostile()
    object.__setattr__(obj, "x", 1)
    object.__setattr__(obj, "y", [1, 2])
    dip = DictIsAProperty()
    object.__setattr__(dip, "x", 1)
    shadow = ShadowingSub()
    ShadowedSlot.__dict__["value"].__set__(shadow, 42)
    key = HostileKey()
    od = HostileOD()
    collections.OrderedDict.__setitem__(od, "plain", 1)
    od_hostile_key = collections.OrderedDict()
    od_hostile_key[key] = 1
    od_hostile_key["z"] = 2

    def gen() -> Any:
        EFFECTS.append("generator advanced")
        yield 1

    return {
        "obj": obj,
        "class": Hostile,
        "list": HostileList([1, [2], obj]),
        "tuple": HostileTuple((1, 2)),
        "dict": HostileDict({"a": 1, key: "k"}),
        "set": HostileSet({1, key}),
        "frozenset": HostileFrozen({1}),
        "deque": HostileDeque([1, 2]),
        "odict": od,
        "odict_hostile_key": od_hostile_key,
        "str": HostileStr("text"),
        "int": HostileInt(7),
        "bigint": HostileInt(10**2000),
        "float": HostileFloat(1.5),
        "bytes": HostileBytes(b"b"),
        "bytearray": HostileBytearray(b"ba"),
        "error": HostileError("boom", 1),
        "module": HostileModule("hostile_mod"),
        "dict_property": dip,
        "shadowed_slot": shadow,
        "abc": HostileABC,
        "queryset": FakeQuerySet(),
        "enum": HostileEnum.A,
        "hostile_keys": {key: [key], "k": {key}},
        "generator": gen(),
        "iterator": iter([1, 2]),
        "aliases": [obj, obj],
        "genexpr": (x for x in [1]),
    }


def profile_calls(func: Any) -> list[str]:
    """Python functions entered while `func` runs, other than `func` itself (and code nested in
    it) and replay's encoder modules."""
    ours = {
        snapshot_module.__file__,
        identity_module.__file__,
        redaction_module.__file__,
        sys.modules["replay.values"].__file__,
    }
    own_code = {
        func.__code__,
        *(c for c in func.__code__.co_consts if isinstance(c, types.CodeType)),
    }
    calls: list[str] = []

    def profiler(frame: Any, event: str, arg: Any) -> None:
        code = frame.f_code
        if event == "call" and code.co_filename not in ours and code not in own_code:
            calls.append(f"{code.co_filename}:{code.co_name}")

    gc.collect()
    gc.disable()  # no finalizers or weakref callbacks of unrelated objects while profiling
    sys.setprofile(profiler)
    try:
        func()
    finally:
        sys.setprofile(None)
        gc.enable()
    return calls


def test_hostile_zoo_runs_no_user_code() -> None:
    global ARMED
    zoo = build_zoo()
    e = SnapshotEncoder()
    e.encode(1)
    # ctypes is imported when a class hiding its instance dict is first met (the zoo has one):
    # the import's own Python code is not the program's, and an earlier test may have done it.
    snapshot_module._generic_get_dict()
    out: list[Any] = []

    def run() -> None:
        for value in zoo.values():
            out.append(e.encode(value))
            out.append(e.encode_named("v", value))
            out.append(e.type_name(value))
        out.append(e.encode_exception(zoo["error"]))
        out.append(e.encode(list(zoo.values())))

    ARMED = True
    try:
        calls = profile_calls(run)
    finally:
        ARMED = False
    assert EFFECTS == []
    assert calls == []
    assert e.faults == 0, e.last_fault
    for venc in out:
        roundtrip(venc)


def test_hostile_zoo_values_are_described() -> None:
    global ARMED
    zoo = build_zoo()
    e = SnapshotEncoder()
    ARMED = True
    try:
        v = {name: e.encode(value) for name, value in zoo.items()}
        exc = e.encode_exception(zoo["error"])
    finally:
        ARMED = False
    assert EFFECTS == [] and e.faults == 0
    m = __name__
    obj = v["obj"]
    assert obj[:3] == (V_OBJ, obj[1], f"{m}.Hostile")
    assert obj[3] == {"x": 1, "y": (V_SEQ, obj[3]["y"][1], "list", 2, [1, 2])}
    assert v["class"][0] == V_OPAQUE and v["class"][3] == f"<class '{m}.Hostile'>"
    assert v["list"][:4] == (V_SEQ, v["list"][1], f"{m}.HostileList", 3)
    assert v["list"][4][2][1] == obj[1]  # same object, same obj_id
    assert v["tuple"][4] == [1, 2]
    assert v["dict"][3] == 2 and v["dict"][4][0] == ("a", 1) and v["dict"][4][1][0][0] == V_OBJ
    assert v["set"][3] == 2 and v["frozenset"][4] == [1] and v["deque"][4] == [1, 2]
    assert v["odict"][4] == [("plain", 1)]
    assert v["odict_hostile_key"][4][1] == ("z", 2)  # dict order; the key's hash never ran
    assert v["str"] == (V_ATOMSUB, f"{m}.HostileStr", "text")
    assert v["int"] == (V_ATOMSUB, f"{m}.HostileInt", 7)
    assert v["bigint"][2][0] == V_BIGINT
    assert v["float"][2] == 1.5 and v["bytes"][2] == b"b" and v["bytearray"][2] == b"ba"
    assert v["error"][3]["args"][4] == ["boom", 1]
    assert exc[:2] == (f"{m}.HostileError", "('boom', 1)")
    assert v["module"][3] == "<module 'hostile_mod'>"
    assert v["dict_property"][3] == {"x": 1}
    assert v["shadowed_slot"][3] == {"value": 42}
    assert v["abc"][3] == f"<class '{m}.HostileABC'>"
    assert v["queryset"][3] == {"_result_cache": None, "model": "Order"}
    assert v["enum"] == (V_ENUM, f"{m}.HostileEnum", "A", 1)
    assert v["generator"][3].startswith("<generator object build_zoo.<locals>.gen")
    assert next(zoo["iterator"]) == 1  # the iterator was not consumed
    assert v["aliases"][4][0][1] == v["aliases"][4][1][1] == obj[1]


def test_lazy_attributes_are_never_loaded(enc: SnapshotEncoder) -> None:
    global ARMED

    class Order:
        customer = LazyDescriptor()

        @property
        def total(self) -> int:
            hit("Order.total")
            return 0

        def __getattr__(self, name: str) -> Any:
            hit(f"Order.__getattr__ {name}")

    order = Order()
    order.__dict__["id"] = 7
    EFFECTS.clear()
    ARMED = True
    try:
        venc = enc.encode(order)
    finally:
        ARMED = False
    assert venc[3] == {"id": 7}
    assert EFFECTS == [] and enc.faults == 0


def test_stdlib_values_run_no_python_code() -> None:
    e = SnapshotEncoder()
    values = [
        datetime.datetime.now(),
        decimal.Decimal("2.5"),
        uuid.uuid4(),
        fractions.Fraction(1, 3),
        pathlib.Path("a") / "b",
        re.compile("x"),
        threading.Lock(),
        collections.Counter("ab"),
        Color.RED,
        Num.ONE,
        Perm.R | Perm.W,
        os.environ,
        asyncio.Queue,
        ValueError("x"),
    ]
    e.encode(values)
    calls = profile_calls(lambda: [e.encode(v) for v in values])
    assert calls == []
    calls = profile_calls(lambda: [e.encode_exception(OSError(2, "x", "f"))])
    assert calls == []


def test_environment_variables_are_redacted() -> None:
    e = SnapshotEncoder(CaptureLimits(max_items=100_000, max_nodes=1_000_000))
    os.environ["REPLAY_TEST_API_TOKEN"] = SECRET
    try:
        venc = e.encode_named("env", os.environ)
        assert "REPLAY_TEST_API_TOKEN" in repr(venc)
        assert_secret_absent(venc)
    finally:
        del os.environ["REPLAY_TEST_API_TOKEN"]


# -- property tests --------------------------------------------------------------------------------

atoms = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
keys = st.none() | st.booleans() | st.integers() | st.text(max_size=10) | st.binary(max_size=10)


def containers(children: Any) -> Any:
    return (
        st.lists(children, max_size=6)
        | st.lists(children, max_size=6).map(tuple)
        | st.dictionaries(keys, children, max_size=6)
        | st.sets(keys, max_size=6)
        | st.frozensets(keys, max_size=6)
    )


values_strategy = st.recursive(atoms, containers, max_leaves=40)


def expected_plain(v: Any) -> Any:
    if isinstance(v, (list, tuple, set, frozenset)):
        return [expected_plain(x) for x in v]
    if isinstance(v, dict):
        return [(expected_plain(k), expected_plain(x)) for k, x in v.items()]
    return v


@settings(max_examples=300, deadline=None)
@given(values_strategy)
def test_short_repr_matches_python_repr(value: Any) -> None:
    e = wide()
    venc = e.encode(value)
    assert short_repr(venc, limit=None) == repr(value)
    assert plain(venc) == expected_plain(value)
    roundtrip(venc)
    json.dumps(to_json(venc))
    assert e.faults == 0


@settings(max_examples=200, deadline=None)
@given(values_strategy)
def test_default_limits_never_fault(value: Any) -> None:
    e = SnapshotEncoder(CaptureLimits(max_depth=2, max_items=3, max_string=5, max_nodes=10))
    venc = e.encode(value)
    roundtrip(venc)
    text = short_repr(venc, limit=50)
    assert len(text) <= 50
    assert e.faults == 0


def test_stdlib_module_imported_after_the_first_encode() -> None:
    code = """
import sys
from replay.recorder.snapshot import SnapshotEncoder
e = SnapshotEncoder()
e.encode([object()])
assert "fractions" not in sys.modules
import fractions
print(e.encode(fractions.Fraction(1, 3))[3])
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Fraction(1, 3)"
