"""Expressions over recorded values: paths, operators, functions, and clear errors."""

from __future__ import annotations

import pytest
from test_engine_breakpoints import line_of

from replay.engine import Engine, Expression, ExpressionError
from replay.engine.expr import value as plain_value


@pytest.fixture(scope="module")
def at_checkout_end(recordings):
    """An engine standing at `del paid` in recursion.py's main (order, results, name bound)."""
    with Engine.open(recordings[("recursion", "small")]) as engine:
        engine.breakpoints.add(f"recursion.py:{line_of('recursion', 'del paid')}")
        engine.continue_()
        yield engine


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("paid", 30),
        ("order.total", 30),
        ("order.items[0].name", "item0"),
        ("order.items[-1].price", 12),
        ("order.items[1].price * 2 + 1", 7),
        ("len(order.items)", 5),
        ("len(results) == 14", True),
        ("results[2:5]", [1, 2, 3]),
        ("sum(results) > 40 and max(results) == 13", True),
        ('"abc" in name', True),
        ('"zzz" not in name', True),
        ("name[2:5]", "abc"),
        ("paid // 7, paid % 7", [4, 2]),
        ("not paid", False),
        ("-paid < 0 < paid", True),
        ("paid / 4", 7.5),
        ("abs(-paid) == paid", True),
        ("order.items[0] is order.items[0]", True),
        ("order.items[0] is order.items[1]", False),
        ("order.items[0].price is None", False),
        ("order.items[0].price == 0 or 1 / 0", True),
        ("13 in results", True),
        ("nosuch", None),  # never bound: checked below
    ],
)
def test_values(at_checkout_end, source, value):
    if value is None:
        with pytest.raises(ExpressionError, match="not bound"):
            at_checkout_end.evaluate(source)
        return
    assert plain_value(at_checkout_end.evaluate(source)) == value


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("order.nope", "no recorded attribute 'nope'"),
        ("order.items[9]", "out of range"),
        ("order.items['a']", "indices must be integers"),
        ("paid.real", "int has no attribute"),
        ("open('x')", "cannot call open"),
        ("name.upper()", "cannot call methods"),
        ("[x for x in results]", "ListComp expressions are not supported"),
        ("lambda: 1", "Lambda expressions are not supported"),
        ("paid if paid else 0", "IfExp expressions are not supported"),
        ("2 ** 100000", "exponent larger"),
        ("paid +", "cannot parse"),
        ("", "empty expression"),
        ("1 / 0", "ZeroDivisionError"),
        ("name + 1", "TypeError"),
        ("len(paid)", "no len"),
        ("x := 3", "cannot parse"),
    ],
)
def test_errors(at_checkout_end, source, message):
    with pytest.raises(ExpressionError, match=message):
        at_checkout_end.evaluate(source)


def test_condition_truth_never_raises(at_checkout_end):
    frame_locals = at_checkout_end.locals()
    assert Expression("paid == 30").test(frame_locals) is True
    assert Expression("unbound_name > 3").test(frame_locals) is False
    assert Expression("order.nope == 1").test(frame_locals) is False
    assert Expression("paid / 0").test(frame_locals) is False
    assert Expression("order.total").names == {"order"}
    assert Expression("len(results) > 1").names == {"results"}
