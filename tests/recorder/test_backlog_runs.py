"""The `drop` backlog policy's bookkeeping, on real recorder objects and hand-made event lists.

`tests/cli/test_cli_backlog.py` records real programs with a slow writer; timing decides there
which lists are dropped. Here the lists and the writer's state are chosen, so each rule of
writer.DropBacklog is checked exactly: what stands in for a dropped run (the GAP at the first
dropped step, the CALLs kept for frames still running), how many events it counts, and that a
run never spans a list that stayed queued.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from replay.events import CALL, GAP, LINE, RETURN
from replay.recorder.csysmon import _ctracer
from replay.recorder.scope import Scope
from replay.recorder.state import RecordingState
from replay.recorder.writer import GAP_REASON_BACKLOG, DropBacklog


def ev(kind: int, step: int, call: int, line: int = 1, payload: Any = None) -> tuple:
    return (kind, step, step * 10, call, line, payload, None, None)


def call(step: int, call_id: int, parent: int, code: int = 1) -> tuple:
    return (CALL, step, step * 10, call_id, 1, (code, parent), (("arg", step),), None)


class Writer:
    """The writer's side of the protocol: is it busy writing?"""

    def __init__(self) -> None:
        self.busy = True


def make(tmp_path: Path) -> tuple[RecordingState, DropBacklog, Writer]:
    state = RecordingState(Scope(str(tmp_path)), lambda name, value: value)
    state.max_pending = 1
    writer = Writer()
    backlog = DropBacklog(state, threading.Event(), lambda: writer.busy)
    state.on_backlog = backlog
    return state, backlog, writer


Hand = Callable[[RecordingState, int, list[tuple]], None]


@pytest.fixture(params=["list", "event buffer"])
def hand(request: pytest.FixtureRequest) -> Hand:
    """What state.hand_off does with a full list: queue it, then the policy past the bound.

    Each test runs twice: with lists of tuples (the Python cores) and with the C cores' event
    buffers, which the policy reads without a tuple per event.
    """
    if request.param == "list":
        container: Callable[[list[tuple]], Any] = list
    elif _ctracer is None:
        pytest.skip("the C core is not built here")
    else:
        container = _ctracer.EventBuffer

    def hand(state: RecordingState, thread_id: int, events: list[tuple]) -> None:
        state.handoff.append((thread_id, container(events)))
        if len(state.handoff) > state.max_pending and state.on_backlog is not None:
            state.on_backlog()

    return hand


def test_a_dropped_run_becomes_one_gap_and_the_calls_of_frames_still_running(
    tmp_path: Path, hand: Hand
) -> None:
    state, backlog, _writer = make(tmp_path)
    # GIVEN a queued list, then two more of the same thread while the writer is busy
    hand(state, 1, [call(1, 1, 0), ev(LINE, 2, 1)])
    hand(state, 1, [call(10, 5, 1), ev(LINE, 11, 5, 7), call(12, 6, 5), ev(LINE, 13, 6),
                    ev(RETURN, 14, 6), ev(LINE, 15, 5)])  # fmt: skip
    hand(state, 1, [ev(LINE, 16, 5), call(17, 7, 5), ev(LINE, 18, 7)])
    # THEN the first stays queued and the two are one run
    assert [events[0][1] for _tid, events in state.handoff] == [1]
    ((thread_id, events, dropped),) = backlog.take()
    assert thread_id == 1
    # AND it stands in as: the kept CALL of f (still running), one GAP at the first dropped
    # step in f, the kept CALL of h; g started and ended inside the run: gone
    assert [(e[0], e[1]) for e in events] == [(CALL, 10), (GAP, 11), (CALL, 17)]
    gap = events[1]
    assert gap[3:5] == (5, 7)  # in f, at the line of the first dropped event
    assert gap[5] == (GAP_REASON_BACKLOG, "7 events dropped: the writer fell behind")
    assert dropped == 7  # steps 11..16 and 18: the GAP stands at 11
    assert backlog.take() == []


def test_a_gap_that_starts_with_a_dropped_call_is_in_the_caller_at_an_unknown_line(
    tmp_path: Path, hand: Hand
) -> None:
    state, backlog, _writer = make(tmp_path)
    hand(state, 1, [call(1, 5, 0), ev(LINE, 2, 5)])
    hand(state, 1, [call(20, 6, 5), ev(LINE, 21, 6)])
    hand(state, 1, [ev(RETURN, 22, 6), ev(LINE, 23, 5)])
    ((_tid, events, dropped),) = backlog.take()
    assert [(e[0], e[1], e[3], e[4]) for e in events] == [(GAP, 20, 5, 0)]
    assert dropped == 4


def test_a_run_never_spans_a_list_that_stayed_queued(tmp_path: Path, hand: Hand) -> None:
    state, backlog, writer = make(tmp_path)
    hand(state, 1, [ev(LINE, 1, 1)])
    hand(state, 1, [ev(LINE, 2, 1), ev(LINE, 3, 1)])  # dropped: a run begins
    # WHEN the writer is idle, a list of the same thread stays queued (it will be written)
    writer.busy = False
    hand(state, 1, [ev(LINE, 4, 1)])
    assert [events[0][1] for _tid, events in state.handoff] == [1, 4]
    # AND once it is busy again, two more lists are dropped
    writer.busy = True
    hand(state, 2, [ev(LINE, 5, 9)])  # another thread's list, past the bound
    hand(state, 1, [ev(LINE, 6, 1), ev(LINE, 7, 1)])
    # THEN the lists left queued are the oldest ones, and the runs around step 4 are separate
    # (oldest first within each run), so no two chunks of a thread overlap
    assert [events[0][1] for _tid, events in state.handoff] == [1]
    runs = sorted((tid, [e[1] for e in events], n) for tid, events, n in backlog.take())
    assert runs == [(1, [2], 2), (1, [4], 3), (2, [5], 1)]
