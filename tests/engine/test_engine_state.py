"""The state at a step (stack, each frame's line and locals) equals the brute-force replay."""

from __future__ import annotations

import shutil

import pytest
from conftest import VARIANTS, record
from engine_reference import Reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from replay.storage import Store

from replay.engine import Engine

PROGRAMS = ("recursion", "generators", "exceptions", "threads")
SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def engine_stack(engine: Engine) -> list[tuple[int, str, int, dict]]:
    return [(f.call_id, f.function, f.line, f.locals) for f in engine.stack()]


@pytest.mark.parametrize("variant", ["small", "default", "joined"])
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


def test_the_writer_joined_lists_into_bigger_chunks(recordings):
    """The joined recordings hold chunks of several lists (else the tests on them prove less)."""
    for program in PROGRAMS:
        with Store.open(recordings[(program, "joined")]) as store:
            (recording,) = store.recordings()
            sizes = [chunk.n_events for chunk in store.chunk_index(recording["id"])]
        assert max(sizes) > VARIANTS["joined"], (program, sizes)
        assert max(sizes) <= 4 * VARIANTS["joined"], (program, sizes)


@pytest.mark.parametrize("variant", ["small", "joined", "default"])
def test_index_persisted_and_reused(recordings, references, variant):
    """A built index is saved in the store; the next engine reads it and gives the same state
    (its inner checkpoints too: every 50 events of a bigger chunk in these tests)."""
    path = recordings[("recursion", variant)]
    ref = references[("recursion", variant)]
    with Engine.open(path) as engine:
        engine.build_index()
    with Engine.open(path) as engine:
        assert all(engine.index(t).from_store for t in engine.thread_ids)
        for event in ref.steps[:: max(1, len(ref.steps) // 40)]:
            engine.goto(event.step)
            thread, i = ref.where[event.step]
            assert engine_stack(engine) == ref.state(thread, i)


def test_a_look_near_the_end_completes_and_saves_the_index(tmp_path):
    """The first look at a recording is mostly near its end (where it failed): the index is
    finished there and saved, so the next opening does not replay the recording again; a look
    near the start builds only what it needs."""
    near_end, near_start = tmp_path / "end.db", tmp_path / "start.db"
    record("recursion", near_end, VARIANTS["small"])
    shutil.copyfile(near_end, near_start)  # finished and closed: no WAL left beside it
    ref = Reference(str(near_end))
    with Engine.open(near_end) as engine:
        (thread,) = engine.thread_ids
        index = engine.index(thread)
        chunks = len(index.stream)
        assert chunks >= 20  # 50-event chunks
        engine.goto(ref.steps[-len(ref.steps) // 10].step)  # in the last tenth
        engine.stack()
        assert index.complete
    with Engine.open(near_start) as engine:
        engine.goto(ref.steps[len(ref.steps) // 10].step)
        engine.stack()
        assert 0 < engine.index(thread).ready <= chunks // 4
    with Engine.open(near_end) as engine:
        assert engine.index(thread).from_store
        event = ref.steps[len(ref.steps) // 2]
        engine.goto(event.step)
        assert engine_stack(engine) == ref.state(*ref.where[event.step])
    with Engine.open(near_start) as engine:
        assert not engine.index(thread).from_store
