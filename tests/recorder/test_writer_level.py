"""The writer when it is behind: faster compression, and a thread's full lists joined in chunks.

A program that produces events faster than the writer stores them waits for it at the backlog
bound, so there the writer's speed is the program's: it compresses at `codec.FAST_EVENTS_LEVEL`
and joins each thread's full lists that wait together into chunks of up to
MERGED_CHUNK_EVENTS. A real store, a real writer and hand-made event lists; what a user relies
on is that the events read back the same either way, in chunks the engine can address.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest
from replay.storage import Store
from replay.storage.codec import EVENTS_LEVEL, FAST_EVENTS_LEVEL, encode_events

from replay.events import CALL, LINE, RETURN
from replay.recorder.scope import Scope
from replay.recorder.state import BATCH_EVENTS, RecordingState
from replay.recorder.writer import BEHIND_LISTS, MERGED_CHUNK_EVENTS, Writer


def events_of_list(n: int, first_step: int) -> list[tuple]:
    """One call of n line steps, from step `first_step` (call id = first step)."""
    call_id = first_step
    events = [(CALL, first_step, first_step * 256, call_id, 1, (1, 0), (("x", 0),), None)]
    for i in range(1, n + 1):
        step = first_step + i
        events.append((LINE, step, step * 256, call_id, 2 + i % 3, None, (("x", i),), None))
    step = first_step + n + 1
    events.append((RETURN, step, step * 256, call_id, 5, n, None, None))
    return events


@pytest.mark.parametrize("queued", [1, BEHIND_LISTS])
def test_chunks_read_back_the_same_at_either_level(tmp_path: Path, queued: int) -> None:
    store = Store.open(tmp_path / "r.db", mode="w")
    recording_id = store.create_recording({"format_version": 1})
    state = RecordingState(Scope(str(tmp_path)), lambda name, value: value)
    writer = Writer(store, recording_id, state)
    lists = [events_of_list(500, 1 + k * 1000) for k in range(queued)]
    for events in lists:
        state.handoff.append((1, events))
    writer.flush()
    assert writer.behind is (queued >= BEHIND_LISTS)
    chunks = store.chunk_index(recording_id)
    assert [store.read_chunk(chunk.id) for chunk in chunks] == lists
    level = FAST_EVENTS_LEVEL if writer.behind else EVENTS_LEVEL
    assert writer.bytes_written == sum(len(encode_events(events, level)) for events in lists)
    store.close()


def test_full_lists_waiting_together_are_joined_into_bigger_chunks(tmp_path: Path) -> None:
    # GIVEN a writer that finds, waiting together: six full lists of thread 1, then one of
    # thread 2, then two of thread 1 again, the last one not full (handed off sooner)
    store = Store.open(tmp_path / "r.db", mode="w")
    recording_id = store.create_recording({"format_version": 1})
    state = RecordingState(Scope(str(tmp_path)), lambda name, value: value)
    writer = Writer(store, recording_id, state)
    full = BATCH_EVENTS - 2  # events_of_list adds the CALL and the RETURN
    plan = [(1, full)] * 6 + [(2, full), (1, full), (1, 100)]
    lists = []
    first = 1
    for thread_id, n in plan:
        lists.append((thread_id, events_of_list(n, first)))
        first += n + 10
    for thread_id, events in lists:
        state.handoff.append((thread_id, list(events)))
    # WHEN it writes them
    writer.flush()
    # THEN thread 1's first four lists are one chunk, its next two another, and the lists
    # that are not adjacent to another full list of their thread stay chunks of their own
    assert writer.behind
    chunks = sorted(store.chunk_index(recording_id), key=lambda chunk: chunk.first_step)
    assert [(chunk.thread_id, chunk.n_events) for chunk in chunks] == [
        (1, MERGED_CHUNK_EVENTS),
        (1, 2 * BATCH_EVENTS),
        (2, BATCH_EVENTS),
        (1, BATCH_EVENTS),
        (1, 102),
    ]
    # AND every event reads back, in order, each chunk's step range its own
    assert [event for chunk in chunks for event in store.read_chunk(chunk.id)] == [
        event for _, events in lists for event in events
    ]
    for chunk in chunks:
        events = store.read_chunk(chunk.id)
        assert (chunk.first_step, chunk.last_step) == (events[0][1], events[-1][1])
    store.close()


def test_a_write_lets_go_of_its_event_lists_when_it_ends(tmp_path: Path) -> None:
    # GIVEN a writer handed a list of events, and no garbage collector running
    store = Store.open(tmp_path / "r.db", mode="w")
    recording_id = store.create_recording({"format_version": 1})
    state = RecordingState(Scope(str(tmp_path)), lambda name, value: value)
    writer = Writer(store, recording_id, state)
    events = events_of_list(50, 1)
    state.handoff.append((1, events))
    gc.collect()
    gc.disable()
    try:
        # WHEN it writes them
        writer.flush()
        # THEN nothing of the write holds the list any more (this test's name for it is the
        # one reference left): no reference cycle keeps it for a later collection, which
        # would free it on whichever thread runs it, usually the program's
        assert sys.getrefcount(events) == 2  # `events`, and getrefcount's argument
        assert writer.error is None
    finally:
        gc.enable()
        store.close()


def test_a_hand_off_wakes_the_writer_which_takes_whole_groups(tmp_path: Path) -> None:
    # GIVEN a recording state whose writer is installed, and a thread that hands off its
    # lists one by one (the writer's own thread is not started: its steps are taken here)
    store = Store.open(tmp_path / "r.db", mode="w")
    recording_id = store.create_recording({"format_version": 1})
    state = RecordingState(Scope(str(tmp_path)), lambda name, value: value)
    writer = Writer(store, recording_id, state)
    ts = state.thread_state()
    full = BATCH_EVENTS - 2
    first = 1
    woken_at = []
    for k in range(6):
        ts.events.extend(events_of_list(full, first))
        first += full + 10
        state.hand_off(ts)
        # THEN the writer is woken once four lists wait, not at the memory bound
        if writer._wake.is_set() and not woken_at:
            woken_at.append(k + 1)
    ts.events.extend(events_of_list(100, first))  # a partial list, still the thread's
    assert woken_at == [BEHIND_LISTS]
    # WHEN it writes, woken between two ticks
    writer._write_pending(early=True)
    # THEN it took the oldest lists by whole groups, joined into one chunk, and left the rest
    # and the thread's partial list to its next write
    chunks = store.chunk_index(recording_id)
    assert [chunk.n_events for chunk in chunks] == [MERGED_CHUNK_EVENTS]
    assert len(state.handoff) == 6 - BEHIND_LISTS
    assert len(ts.events) == 102
    # AND at its next tick it writes the rest, in step order (three lists: not behind, so
    # chunks of their own)
    writer._write_pending()
    chunks = sorted(store.chunk_index(recording_id), key=lambda chunk: chunk.first_step)
    assert [chunk.n_events for chunk in chunks] == [MERGED_CHUNK_EVENTS, *[BATCH_EVENTS] * 2, 102]
    assert not state.handoff and not ts.events
    store.close()
