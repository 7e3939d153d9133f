"""Value history, origin and search equal a brute-force reading of the recording."""

from __future__ import annotations

import ast

import pytest
from engine_reference import UNBOUND as REF_UNBOUND
from engine_reference import Reference
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from replay.engine import UNBOUND, Engine, EngineError
from replay.values import plain

PROGRAMS = ("recursion", "generators", "exceptions", "threads")
SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def norm(value):
    return REF_UNBOUND if value is UNBOUND else value


@pytest.mark.parametrize("variant", ["small", "default", "joined"])
@pytest.mark.parametrize("program", PROGRAMS)
@SETTINGS
@given(data=st.data())
def test_history_and_origin(recordings, references, program, variant, data):
    ref: Reference = references[(program, variant)]
    with Engine.open(recordings[(program, variant)]) as engine:
        step = data.draw(st.sampled_from(ref.steps), label="step").step
        engine.goto(step)
        thread, i = ref.where[step]
        state = ref.state(thread, i)
        level = data.draw(st.integers(0, len(state) - 1), label="level")
        call, _function, _line, values = state[level]
        assume(values)
        name = data.draw(st.sampled_from(sorted(values)), label="name")
        want = ref.history(call, name)
        got = [(c.step, c.line, norm(c.old), norm(c.new)) for c in engine.history(name, level)]
        assert got == want
        past = [h for h in want if h[0] <= step]
        origin = engine.origin(name, level)
        assert (origin.step, origin.line, norm(origin.old), norm(origin.new)) == past[-1]


CONDITIONS = {
    "recursion": [
        ("n > 4", lambda v: v["n"] > 4),
        ("total >= 3", lambda v: v["total"] >= 3),
        ("a == b", lambda v: v["a"] == v["b"]),
        ("len(results) == 5", lambda v: len(v["results"]) == 5),
    ],
    "generators": [
        ("total > 3", lambda v: v["total"] > 3),
        ("caught >= 1", lambda v: v["caught"] >= 1),
        ("value == 4", lambda v: v["value"] == 4),
    ],
    "exceptions": [
        ("total == 0", lambda v: v["total"] == 0),
        ("n < 2", lambda v: v["n"] < 2),
        ("attempt == 2", lambda v: v["attempt"] == 2),
    ],
    "threads": [
        ("acc > 1000", lambda v: v["acc"] > 1000),
        ("i == 30", lambda v: v["i"] == 30),
    ],
}


def reference_search(ref: Reference, source: str, test, call: int | None) -> list[int]:
    names = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)} - {"len"}
    out = []
    for thread, events in ref.threads.items():
        frames: dict[int, dict] = {}
        for i, event in enumerate(events):
            values = frames.setdefault(event.call, {})
            if event.kind == "call":
                values.clear()
            values.update(event.changes)
            for name in event.deleted:
                values.pop(name, None)
            touched = names & (set(event.changes) | set(event.deleted))
            if not touched or (call is not None and call not in ref.stacks[thread][i]):
                continue
            try:
                if test({k: plain(v) for k, v in values.items()}):
                    out.append(event.step)
            except (KeyError, TypeError):
                pass
    return sorted(out)


@pytest.mark.parametrize("variant", ["small", "default", "joined"])
@pytest.mark.parametrize("program", PROGRAMS)
@SETTINGS
@given(data=st.data())
def test_search(recordings, references, program, variant, data):
    ref: Reference = references[(program, variant)]
    source, test = data.draw(st.sampled_from(CONDITIONS[program]), label="condition")
    call = None
    if data.draw(st.booleans(), label="in a call"):
        call = data.draw(st.sampled_from([e.call for e in ref.steps if e.kind == "call"]))
    with Engine.open(recordings[(program, variant)]) as engine:
        got = [m.step for m in engine.search(source, call_id=call, limit=100_000)]
    assert got == reference_search(ref, source, test, call)


def test_history_errors(recordings):
    with Engine.open(recordings[("recursion", "small")]) as engine:
        engine.goto(engine.first_step)
        with pytest.raises(EngineError, match="never bound"):
            engine.history("nope")
        with pytest.raises(EngineError, match="not bound"):
            engine.origin("nope")
        with pytest.raises(EngineError, match="names no variable"):
            engine.search("1 == 1")
