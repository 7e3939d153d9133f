"""Each movement, from random positions, in both directions, lands where the definitions in
docs/engine.md (written out in engine_reference.py) say."""

from __future__ import annotations

import pytest
from engine_reference import Reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay.engine import Engine, EngineError

PROGRAMS = ("recursion", "generators", "exceptions", "threads")
SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
MOVES = ("step", "next", "finish")


def expected(ref: Reference, move: str, thread: int, i: int, forward: bool) -> int | str:
    """The expected global step after the move, or 'error'."""
    events = ref.threads[thread]
    if move == "step":
        j = ref.step(thread, i, forward)
    elif move == "next":
        j = ref.next(thread, i, forward)
    else:
        j = ref.finish(thread, i, forward)
        if j == "error":
            return "error"
    if j is None:  # nothing that way: the thread's last (first) event
        j = len(events) - 1 if forward else 0
    return events[j].step


def run(engine: Engine, move: str, forward: bool):
    name = move if forward else f"reverse_{move}"
    return getattr(engine, name)()


@pytest.mark.parametrize("variant", ["small", "default", "joined"])
@pytest.mark.parametrize("program", PROGRAMS)
@SETTINGS
@given(data=st.data())
def test_movement_from_random_positions(recordings, references, program, variant, data):
    ref: Reference = references[(program, variant)]
    with Engine.open(recordings[(program, variant)]) as engine:
        engine.goto(data.draw(st.sampled_from(ref.steps), label="start").step)
        for _ in range(data.draw(st.integers(1, 6), label="moves")):
            move = data.draw(st.sampled_from(MOVES), label="move")
            forward = data.draw(st.booleans(), label="forward")
            thread, i = ref.where[engine.cursor.step]
            want = expected(ref, move, thread, i, forward)
            if want == "error":
                with pytest.raises(EngineError):
                    run(engine, move, forward)
                continue
            stop = run(engine, move, forward)
            assert (stop.step, stop.thread) == (want, thread), (move, forward)
            assert engine.cursor.step == want


@pytest.mark.parametrize("program", PROGRAMS)
def test_next_and_reverse_next_walk_a_frame(recordings, references, program):
    """From a call's first event, `next` visits exactly the frame's own events, in order, and
    `reverse-next` walks them back."""
    ref = references[(program, "small")]
    with Engine.open(recordings[(program, "small")]) as engine:
        calls = [e for e in ref.steps if e.kind == "call"]
        for call in calls[:: max(1, len(calls) // 12)]:
            thread, _ = ref.where[call.step]
            own = [e.step for e in ref.threads[thread] if e.call == call.call]
            # stop at the frame's first leave event: `next` from there goes to the caller
            end = next(
                (
                    k
                    for k, s in enumerate(own)
                    if ref.steps_by(s).kind in ("return", "unwind", "yield")
                ),
                len(own) - 1,
            )
            engine.goto(call.step)
            seen = [call.step]
            for _ in range(end):
                seen.append(engine.next().step)
            assert seen == own[: end + 1]
            for _ in range(end):
                engine.reverse_next()
            assert engine.cursor.step == call.step
