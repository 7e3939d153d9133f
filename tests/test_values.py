"""The read side of vencs: to_json, short_repr and plain, on hand-built values of every tag."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

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
from replay.values import REDACTED, UNAVAILABLE, plain, short_repr, to_json

OBJ = (V_OBJ, 7, "shop.Order", {"total": 0, "items": (V_SEQ, 8, "list", 3, [1, 2])}, False)


@pytest.mark.parametrize(
    ("venc", "expected"),
    [
        ((V_SEQ, 1, "list", 0, []), "[]"),
        ((V_SEQ, 1, "list", 3, [1, 2]), "[1, 2, ...]"),
        ((V_SEQ, 1, "list", 3, None), "[...]"),
        ((V_SEQ, 1, "list", 3, []), "[...]"),
        ((V_SEQ, 1, "tuple", 1, ["a"]), "('a',)"),
        ((V_SEQ, 1, "tuple", 0, []), "()"),
        ((V_SEQ, 1, "set", 0, []), "set()"),
        ((V_SEQ, 1, "set", 2, [1]), "{1, ...}"),
        ((V_SEQ, 1, "frozenset", 1, [1]), "frozenset({1})"),
        ((V_SEQ, 1, "frozenset", 0, []), "frozenset()"),
        ((V_SEQ, 1, "collections.deque", 1, [1]), "deque([1])"),
        ((V_SEQ, 1, "app.Bag", 1, [1]), "app.Bag([1])"),
        ((V_MAP, 1, "dict", 1, [("a", 1)]), "{'a': 1}"),
        ((V_MAP, 1, "dict", 0, []), "{}"),
        ((V_MAP, 1, "dict", 5, [("a", 1)]), "{'a': 1, ...}"),
        ((V_MAP, 1, "dict", 5, None), "{...}"),
        ((V_MAP, 1, "collections.OrderedDict", 1, [(1, 2)]), "OrderedDict({1: 2})"),
        ((V_MAP, 1, "app.Registry", 1, [(1, 2)]), "app.Registry({1: 2})"),
        (OBJ, "<shop.Order total=0 items=[1, 2, ...]>"),
        ((V_OBJ, 7, "shop.Order", None, True), "<shop.Order ...>"),
        ((V_OBJ, 7, "shop.Order", {"a": 1}, True), "<shop.Order a=1 ...>"),
        ((V_OBJ, 7, "shop.Order", {}, False), "<shop.Order>"),
        ((V_REF, 1, "list"), "[...]"),
        ((V_REF, 1, "dict"), "{...}"),
        ((V_REF, 1, "tuple"), "(...)"),
        ((V_REF, 1, "shop.Order"), "<shop.Order ...>"),
        ((V_REDACTED, "str"), "<redacted>"),
        ((V_CUT, "str", "abc", 10), "'abc'..."),
        ((V_CUT, "bytes", b"ab", 10), "b'ab'..."),
        ((V_BIGINT, "int", "-12345", 4000), "-12345...(4000 digits)"),
        ((V_BIGINT, "int", "0xabc", 50000), "0xabc...(~50000 digits)"),
        ((V_ATOMSUB, "app.Name", "bob"), "'bob'"),
        ((V_ATOMSUB, "bytearray", b"\x00"), "bytearray(b'\\x00')"),
        ((V_OPAQUE, 3, "function", "<function app.main>"), "<function app.main>"),
        ((V_ENUM, "app.Color", "RED", 1), "<Color.RED: 1>"),
        ((V_ENUM, "app.Outer.Perm", None, 0), "<Perm: 0>"),
        ((V_ENUM, "app.Mood", "HAPPY", "happy"), "<Mood.HAPPY: 'happy'>"),
        ((V_ERROR, "app.Thing", "RuntimeError: x"), "<app.Thing (not recorded: RuntimeError: x)>"),
        ((99, "?"), "<unknown value tag 99>"),
    ],
)
def test_short_repr(venc: Any, expected: str) -> None:
    assert short_repr(venc, limit=None) == expected
    js = to_json(venc)
    json.dumps(js)
    assert js["repr"] == expected or venc[0] in (V_CUT, V_BIGINT, V_REDACTED, 99)


def test_short_repr_limit() -> None:
    venc = (V_SEQ, 1, "list", 100, list(range(100)))
    text = short_repr(venc, limit=20)
    assert len(text) == 20 and text.endswith("...")
    assert text.startswith("[0, 1, 2")
    assert short_repr("x" * 10, limit=5) == "'x..."
    assert short_repr(venc, limit=None).endswith("99]")


def test_short_repr_stops_early_on_huge_values() -> None:
    venc: Any = 1
    for _ in range(200):
        venc = (V_SEQ, 1, "list", 1000, [venc] * 50)
    # Would be astronomically long; the writer stops at the limit.
    assert len(short_repr(venc, limit=80)) == 80


def test_atom_json() -> None:
    for value in (None, True, 3, -2.5, float("inf"), "it's", b"\x00"):
        assert to_json(value) == {"type": type(value).__name__, "repr": repr(value)}


def test_int_repr_past_the_str_limit() -> None:
    n = 10**5000 + 12345
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    expected = str(n)
    sys.set_int_max_str_digits(640)
    try:
        assert to_json(n)["repr"] == expected
        assert to_json(-n)["repr"] == "-" + expected
        assert to_json(10**1200)["repr"] == "1" + "0" * 1200
    finally:
        sys.set_int_max_str_digits(old)


def test_container_json() -> None:
    js = to_json((V_SEQ, 4, "list", 3, [1, (V_REDACTED, "str")]))
    assert js == {
        "type": "list",
        "id": 4,
        "repr": "[1, <redacted>, ...]",
        "length": 3,
        "items": [
            {"type": "int", "repr": "1"},
            {"type": "str", "repr": "<redacted>", "redacted": True},
        ],
        "truncated": True,
    }
    js = to_json((V_MAP, 5, "dict", 1, [("k", None)]))
    assert js["items"] == [[{"type": "str", "repr": "'k'"}, {"type": "NoneType", "repr": "None"}]]
    assert "truncated" not in js
    js = to_json((V_SEQ, 4, "list", 3, None))
    assert "items" not in js and js["truncated"] is True


def test_object_json() -> None:
    js = to_json(OBJ)
    assert js["type"] == "shop.Order" and js["id"] == 7
    assert js["attrs"]["total"] == {"type": "int", "repr": "0"}
    assert js["attrs"]["items"]["truncated"] is True
    assert "truncated" not in js
    js = to_json((V_OBJ, 7, "shop.Order", None, True))
    assert "attrs" not in js and js["truncated"] is True


def test_other_json() -> None:
    assert to_json((V_CUT, "str", "ab", 9)) == {
        "type": "str",
        "repr": "'ab'",
        "length": 9,
        "truncated": True,
    }
    assert to_json((V_BIGINT, "int", "123", 2000)) == {
        "type": "int",
        "repr": "123...",
        "length": 2000,
        "truncated": True,
    }
    assert to_json((V_ATOMSUB, "app.Name", (V_CUT, "str", "ab", 9))) == {
        "type": "app.Name",
        "repr": "'ab'",
        "length": 9,
        "truncated": True,
    }
    assert to_json((V_REF, 3, "list")) == {
        "type": "list",
        "id": 3,
        "repr": "[...]",
        "ref": True,
    }
    assert to_json((V_OPAQUE, 0, "decimal.Decimal", "Decimal('1')"))["id"] is None
    assert to_json((V_OPAQUE, 9, "module", "<module 'os'>"))["id"] == 9
    enum_js = to_json((V_ENUM, "app.Color", "RED", 1))
    assert enum_js["name"] == "RED" and enum_js["value"] == {"type": "int", "repr": "1"}
    assert to_json((V_ERROR, "app.T", "boom"))["error"] == "boom"


def test_plain() -> None:
    assert plain(OBJ) == {"total": 0, "items": [1, 2]}
    assert plain(OBJ)["total"] == 0  # what the engine's `order.total == 0` evaluates against
    assert plain((V_MAP, 1, "dict", 1, [([1], "x")])) == [([1], "x")]
    assert plain((V_REDACTED, "str")) is REDACTED
    assert plain((V_REDACTED, "str")) != "<redacted>"
    assert plain((V_SEQ, 1, "list", 3, None)) is UNAVAILABLE
    assert plain((V_REF, 1, "list")) is UNAVAILABLE
    assert plain((V_ERROR, "x", "y")) is UNAVAILABLE
    assert plain((V_ENUM, "app.Color", "RED", 1)) == 1
    assert plain((V_ATOMSUB, "bytearray", b"a")) == b"a"
    assert plain((V_CUT, "str", "ab", 9)) == "ab"
    assert plain((V_OPAQUE, 0, "complex", "1j")) == "1j"
    assert repr(REDACTED) == "<redacted>" and repr(UNAVAILABLE) == "<unavailable>"
