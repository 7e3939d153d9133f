"""The state at a step (stack, each frame's line and locals) equals the brute-force replay."""

from __future__ import annotations

import pytest
from engine_reference import Reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.engine import Engine

PROGRAMS = ("recursion", "generators", "exceptions", "threads")
SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def engine_stack(engine: Engine) -> list[tuple[int, str, int, dict]]:
    return [(f.call_id, f.function, f.line, f.locals) for f in engine.stack()]


@pytest.mark.parametrize("variant", ["small", "default"])
@pytest.mark.parametrize("program", PROGRAMS)
@SETTINGS
@given(data=st.data())
def test_state_at_random_steps(recordings, references, program, variant, data):
    ref: Reference = references[(program, variant)]
    fresh = data.draw(st.booleans(), label="fresh engine")
    with Engine.open(recordings[(program, variant)], persist_index=not fresh) as engine:
        for _ in range(data.draw(st.integers(1, 4), label="gotos")):
            step = data.draw(st.sampled_from(ref.steps), label="step").step
            stop = engine.goto(step)
            thread, i = ref.where[step]
            assert (stop.step, stop.thread) == (step, thread)
            assert engine_stack(engine) == ref.state(thread, i)


@pytest.mark.parametrize("program", PROGRAMS)
def test_every_step_in_order(recordings, references, program):
    """Walking every thread forwards with `step` keeps the incrementally updated state right."""
    ref = references[(program, "small")]
    with Engine.open(recordings[(program, "small")]) as engine:
        for thread, events in ref.threads.items():
            engine.goto(events[0].step)
            for i, event in enumerate(events):
                assert engine.cursor.step == event.step
                if i % 7 == 0 or event.kind != "line":
                    assert engine_stack(engine) == ref.state(thread, i)
                engine.step()


def test_index_persisted_and_reused(recordings, references):
    """A built index is saved in the store; the next engine reads it and gives the same state."""
    path = recordings[("recursion", "small")]
    ref = references[("recursion", "small")]
    with Engine.open(path) as engine:
        engine.build_index()
    with Engine.open(path) as engine:
        assert all(engine.index(t).from_store for t in engine.thread_ids)
        for event in ref.steps[:: max(1, len(ref.steps) // 40)]:
            engine.goto(event.step)
            thread, i = ref.where[event.step]
            assert engine_stack(engine) == ref.state(thread, i)
