"""Which lines the in-place check looks after, found once per code object from its bytecode.

The fidelity program `read_lines.py` checks the outcome against the oracle on every core; this
file pins the classification itself, line by line, on the running Python's bytecode.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from replay.recorder.state import ReadNames, touched_by_line


def _lines(source: str) -> dict[str, frozenset[str] | None]:
    """touched_by_line of the function `f` in `source`, keyed by each line's text."""
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(source), "<test>", "exec"), namespace)
    f: Callable[..., Any] = namespace["f"]
    texts = textwrap.dedent(source).splitlines()
    first = f.__code__.co_firstlineno
    return {
        texts[line - 1].strip(): names
        for line, names in touched_by_line(f.__code__).items()
        if line > first
    }


SOURCE = """
def f(obj, xs, ys, d, k, it):
    a = obj.attr
    if obj.size > len(ys):
        pass
    same = obj == xs
    for x in it:
        pass
    v = d[k]
    xs += ys
    obj.attr = a
    obj.method(xs)
    b = xs
    with obj:
        pass
"""


@pytest.fixture(scope="module")
def lines() -> dict[str, frozenset[str] | None]:
    return _lines(SOURCE)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("a = obj.attr", {"obj"}),
        ("same = obj == xs", {"obj", "xs"}),
        ("for x in it:", {"it"}),
    ],
)
def test_lines_that_only_read_are_read_lines(
    lines: dict[str, frozenset[str] | None], text: str, names: set[str]
) -> None:
    # (the names a line reads: what it stores to is rebound, which the diff sees anyway)
    found = lines[text]
    assert type(found) is ReadNames
    assert found == names


def test_a_condition_with_a_call_is_not_a_read_line(
    lines: dict[str, frozenset[str] | None],
) -> None:
    found = lines["if obj.size > len(ys):"]
    assert type(found) is frozenset and {"obj", "ys"} <= found


@pytest.mark.parametrize("text", ["v = d[k]", "xs += ys", "obj.attr = a", "obj.method(xs)"])
def test_lines_that_may_change_an_object_in_c_are_checked_always(
    lines: dict[str, frozenset[str] | None], text: str
) -> None:
    # A subscript read inserts into a defaultdict, `+=` extends a list, a store sets, a call
    # may do anything: all without running Python code the recorder would see.
    found = lines[text]
    assert type(found) is frozenset


def test_pure_lines_are_not_checked_and_with_blocks_check_everything(
    lines: dict[str, frozenset[str] | None],
) -> None:
    assert "b = xs" not in lines
    assert lines["with obj:"] is None
