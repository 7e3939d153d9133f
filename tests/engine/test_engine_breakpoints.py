"""continue / reverse-continue stop where a brute-force check of every event says a breakpoint
hits first (line, function and exception breakpoints, with and without conditions)."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_reference import RefBreakpoint, Reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.engine import Engine

SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
PROGRAMS_DIR = Path(__file__).parent / "programs"


def line_of(program: str, text: str) -> int:
    lines = (PROGRAMS_DIR / f"{program}.py").read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


def at_line(program: str, text: str, condition=None, test=None) -> RefBreakpoint:
    line = line_of(program, text)
    return RefBreakpoint(
        f"{program}.py:{line}",
        lambda e, _b: e.kind == "line" and e.line == line and e.file.endswith(f"/{program}.py"),
        condition,
        test,
    )


def at_function(name: str, condition=None, test=None) -> RefBreakpoint:
    return RefBreakpoint(
        name, lambda e, _b: e.kind == "call" and e.function == name, condition, test
    )


def at_raise(exc_type: str | None = None, condition=None, test=None) -> RefBreakpoint:
    def matches(event, before) -> bool:
        if event.kind != "exception":
            return False
        if before is not None and before.kind == "unwind" and before.payload[0] == event.payload[0]:
            return False  # the same exception propagating into the caller
        return exc_type is None or event.payload[0].rpartition(".")[2] == exc_type

    spec = "exception" + (f" {exc_type}" if exc_type else "")
    return RefBreakpoint(spec, matches, condition, test)


BREAKPOINTS = {
    "recursion": [
        at_function("fib"),
        at_function("fib", "n == 3", lambda v: v["n"] == 3),
        at_function("is_odd", "n % 4 == 1", lambda v: v["n"] % 4 == 1),
        at_line("recursion", "total += item.price", "total > 5", lambda v: v["total"] > 5),
        at_line(
            "recursion", "results.append(fib", "len(results) >= 3", lambda v: len(v["results"]) >= 3
        ),
        at_function(
            "checkout", "order.items[1].price == 3", lambda v: v["order"]["items"][1]["price"] == 3
        ),
        at_line("recursion", "del paid", '"abc" in name', lambda v: "abc" in v["name"]),
        at_line(
            "recursion",
            "return a + b",
            "a - b >= 2 and not a == 8",
            lambda v: v["a"] - v["b"] >= 2 and not v["a"] == 8,
        ),
    ],
    "generators": [
        at_line("generators", "total += i", "i > 2", lambda v: v["i"] > 2),
        at_function("fetch", "key == 2", lambda v: v["key"] == 2),
        at_function("counter"),
        at_line("generators", "caught += 1"),
        at_raise("KeyError"),
        at_line("generators", "results.append(got)", "got in (2, 6)", lambda v: v["got"] in (2, 6)),
    ],
    "exceptions": [
        at_raise(),
        at_raise("OrderError"),
        at_raise("KeyError", "n == 0", lambda v: v["n"] == 0),
        at_function("validate", "order_total <= 0", lambda v: v["order_total"] <= 0),
        at_line("exceptions", "attempt = 2"),
        at_line(
            "exceptions", "outcomes.append(attempt)", "attempt == 2", lambda v: v["attempt"] == 2
        ),
    ],
    "threads": [
        at_function("work", "tag == 2", lambda v: v["tag"] == 2),
        at_line(
            "threads",
            "acc += i * tag",
            "i == 100 and tag != 9",
            lambda v: v["i"] == 100 and v["tag"] != 9,
        ),
        at_line("threads", "total = result + tag"),
        at_function("worker"),
    ],
}


@pytest.mark.parametrize("variant", ["small", "default", "joined"])
@pytest.mark.parametrize("program", sorted(BREAKPOINTS))
@SETTINGS
@given(data=st.data())
def test_continue_and_reverse_continue(recordings, references, program, variant, data):
    ref: Reference = references[(program, variant)]
    chosen = data.draw(
        st.lists(st.sampled_from(BREAKPOINTS[program]), min_size=1, max_size=3, unique_by=id),
        label="breakpoints",
    )
    hits = ref.hits(chosen)
    with Engine.open(recordings[(program, variant)]) as engine:
        for bp in chosen:
            engine.breakpoints.add(bp.spec, bp.condition)
        engine.goto(data.draw(st.sampled_from(ref.steps), label="start").step)
        for _ in range(data.draw(st.integers(1, 4), label="moves")):
            forward = data.draw(st.booleans(), label="forward")
            now = engine.cursor.step
            thread = engine.thread_id
            if forward:
                found = [h for h in hits if h > now][:1]
                want = found[0] if found else ref.threads[thread][-1].step
            else:
                found = [h for h in hits if h < now][-1:]
                want = found[0] if found else ref.threads[thread][0].step
            stop = engine.continue_() if forward else engine.reverse_continue()
            assert stop.step == want, (forward, now, [bp.spec for bp in chosen])
            assert stop.reason == ("breakpoint" if found else ("end" if forward else "start"))
            assert engine.thread_id == ref.where[want][0]


def test_breakpoint_errors(recordings):
    with Engine.open(recordings[("recursion", "small")]) as engine:
        for spec, condition, message in [
            ("nosuch.py:3", None, "no recorded file"),
            ("no_function", None, "no recorded function"),
            ("fib", "n ==", "cannot parse"),
            ("fib", "__import__('os')", "cannot call"),
            ("fib", "n.__class__", None),  # parses; an attribute of an int is simply no hit
            ("a b c", None, "cannot read breakpoint"),
        ]:
            if message is None:
                engine.breakpoints.add(spec, condition)
                continue
            with pytest.raises(Exception, match=message):
                engine.breakpoints.add(spec, condition)
