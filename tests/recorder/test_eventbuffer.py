"""The C cores' EventBuffer: a list of event tuples to the Python code that handles a thread's
events, the same chunk to the codec, and only the row-making events to the writer's scan.

The buffer replaces the list of tuples the Python cores keep (replay/recorder/_eventbuffer.c);
state.hand_off, the writer's partial takes, the drop policy and the budget's GAP steps use it
through the list operations checked here, against a real list given the same operations.
"""

from __future__ import annotations

import gc
import marshal
import weakref

import pytest
import zstandard
from hypothesis import event, given, settings
from hypothesis import strategies as st
from replay.storage import codec
from replay.storage.codec import decode_events, encode_events

from replay.events import CALL, EXTERNAL, GAP, LINE, RETURN
from replay.recorder import writer
from replay.recorder.csysmon import _ctracer

pytestmark = pytest.mark.skipif(_ctracer is None, reason="the C core is not built here")

int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
atoms = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=8)
values = st.recursive(atoms, lambda inner: st.lists(inner, max_size=4).map(tuple), max_leaves=12)
changes = st.none() | st.lists(st.tuples(st.text(max_size=4), values), max_size=3).map(tuple)
events = st.tuples(
    st.integers(0, 255),
    int64,
    int64,
    int64,
    st.integers(0, 2**31) | st.none(),
    values,
    changes,
    st.none() | st.tuples(st.text(max_size=4)),
)
recorded_like = st.lists(
    st.tuples(
        st.sampled_from([CALL, LINE, LINE, LINE, RETURN, EXTERNAL]),
        st.integers(1, 2**40),
        st.integers(0, 2**40),
        st.integers(0, 10**6),
        st.integers(0, 5000),
        values,
        changes,
        st.none(),
    ),
    min_size=1,
    max_size=60,
).map(
    lambda evs: sorted(
        # A CALL's payload is (code id, parent call id), as the writer's scan reads it.
        [(*e[:5], (e[3] % 7, e[3] // 2), *e[6:]) if e[0] == CALL else e for e in evs],
        key=lambda e: e[1],
    )
)


def buffer(items: list[tuple]) -> object:
    return _ctracer.EventBuffer(items)


def flat(changes: tuple | None) -> tuple | None:
    """An event's changes as the buffer keeps them: names and values one after the other."""
    return None if changes is None else tuple(x for pair in changes for x in pair)


@settings(max_examples=200, deadline=None)
@given(items=st.lists(events, max_size=30), data=st.data())
def test_it_behaves_as_the_list_of_its_event_tuples(
    items: list[tuple], data: st.DataObject
) -> None:
    # GIVEN events of every shape the recorder makes (a line may be None), in a buffer and a list
    b, model = buffer(items), list(items)
    # THEN it reads as the list: length, truth, items from either end, iteration
    assert len(b) == len(model) and bool(b) == bool(model)
    assert list(b) == model
    if model:
        assert b[-1] == model[-1] and b[0] == model[0]
    # AND slices are buffers of those events
    i, j = sorted(data.draw(st.tuples(st.integers(0, len(model)), st.integers(0, len(model)))))
    part = b[i:j]
    assert type(part) is type(b) and list(part) == model[i:j]
    # AND the list operations hand_off, the writer and the budget use do what they do on a list
    extra = data.draw(st.lists(events, max_size=5))
    b.extend(extra)
    model.extend(extra)
    b.extend(part)  # another buffer
    model.extend(model[i:j])
    if model:
        k = data.draw(st.integers(-len(model), len(model) - 1))
        replacement = data.draw(events)
        b[k] = replacement
        model[k] = replacement
        assert b.pop() == model.pop()
    del b[i:j]
    del model[i:j]
    b.append((GAP, 7, 8, 9, None, ("budget", "why"), None, None))
    model.append((GAP, 7, 8, 9, None, ("budget", "why"), None, None))
    assert list(b) == model


def test_what_is_not_an_event_is_refused_and_changes_nothing() -> None:
    b = buffer([(LINE, 1, 2, 3, 4, None, None, None)])
    for bad in [
        (LINE, 1, 2, 3, 4, None, None),  # seven fields
        (256, 1, 2, 3, 4, None, None, None),  # a kind past a byte
        (LINE, 2**63, 2, 3, 4, None, None, None),  # a step past 64 bits
        (True, 1, 2, 3, 4, None, None, None),  # a bool is not a kind
        [LINE, 1, 2, 3, 4, None, None, None],  # not a tuple
    ]:
        with pytest.raises(TypeError, match="an event is a"):
            b.append(bad)
    with pytest.raises(IndexError):
        b[5]
    with pytest.raises(ValueError):
        del b[::2]
    assert list(b) == [(LINE, 1, 2, 3, 4, None, None, None)]


@settings(max_examples=200, deadline=None)
@given(items=st.lists(events, min_size=1, max_size=40))
def test_the_codec_stores_the_same_events_from_a_buffer_as_from_a_list(items: list[tuple]) -> None:
    # GIVEN events in a buffer (the codec reads its columns) and the same in a list
    from_buffer = encode_events(buffer(items))
    from_list = encode_events(items)
    # THEN both chunks decode to the events
    assert decode_events(from_buffer) == decode_events(from_list) == items


@settings(max_examples=100, deadline=None)
@given(items=recorded_like)
def test_a_recorders_events_are_packed_from_the_buffers_columns(items: list[tuple]) -> None:
    # GIVEN events as a core makes them (int lines, steps that increase)
    b = buffer(items)
    # THEN the codec packs the buffer's columns (no tuple is made), into the list's layout but
    # for the changes, stored flat as the buffer keeps them: the same column part (up to
    # marshal's reference flags: they follow reference counts, which differ between the
    # buffer's fresh objects and the list's tuples) under the flat layout's tag, the same
    # payloads and deleted names, and each event's changes flat
    packed = codec._event_parts_packed(b.columns())
    assert packed is not None
    from_list = codec._event_parts(items)
    assert from_list is not None
    layout, *columns = marshal.loads(packed[0])
    assert (layout, marshal.loads(from_list[0])[0]) == (codec._AS_FLAT_COLUMNS, codec._AS_COLUMNS)
    assert columns == list(marshal.loads(from_list[0])[1:])
    (payloads, changes, deleted), (list_payloads, list_changes, list_deleted) = (
        packed[1],
        from_list[1],
    )
    assert (payloads, deleted) == (list_payloads, list_deleted)
    assert changes == [flat(c) for c in list_changes]
    assert packed[2] == from_list[2]
    # AND the chunk decodes to the events, their changes paired again
    assert decode_events(encode_events(b)) == items


def test_the_columns_the_writer_holds_are_not_seen_by_the_programs_collections() -> None:
    # GIVEN a chunk's worth of events whose values are containers, in a buffer
    items = [(LINE, i, i, 3, 4, [i], (("x", [i]),), ("y",)) for i in range(1, 4097)]
    b = buffer(items)
    # WHEN the writer takes its columns (it holds them while it writes without the GIL, when
    # the program's thread runs and its allocations set off collections)
    *_, payloads, changes, deleted = b.columns()
    # THEN the lists of values are not tracked by the garbage collector (a collection would
    # otherwise visit every item: 4% of richards' time), while holding the same values
    assert not any(map(gc.is_tracked, (payloads, changes, deleted)))
    assert payloads == [[i] for i in range(1, 4097)] and deleted == [("y",)] * 4096
    assert changes == [("x", [i]) for i in range(1, 4097)]
    # AND a value the columns hold is still collected with its cycle once nothing else holds it
    cycle: list = []
    cycle.append(cycle)
    probe = weakref.ref(holder := Holder(cycle))
    held = buffer([(LINE, 1, 2, 3, 4, holder, None, None)])
    columns = held.columns()
    del holder, cycle, held, columns
    gc.collect()
    assert probe() is None


class Holder:
    """A weakly referenceable value for the buffer to hold."""

    def __init__(self, value: object) -> None:
        self.value = value


def test_changes_that_are_not_pairs_are_kept_as_they_are() -> None:
    # GIVEN events whose changes are not a tuple of (name, value) pairs (no core makes them, but
    # the buffer is a list to Python code) beside one whose changes are
    items = [
        (LINE, 1, 2, 3, 4, None, (("x", 1),), None),
        (LINE, 2, 3, 3, 5, None, (("x", 1, 2),), None),
        (LINE, 3, 4, 3, 6, None, [("x", 1)], None),
        (LINE, 4, 5, 3, 7, None, (), None),
    ]
    b = buffer(items)
    # THEN each reads back as it was given
    assert list(b) == items
    # AND the codec, finding changes it cannot store flat, reads the tuples: the same events
    assert b.columns() is None
    assert decode_events(encode_events(b)) == items
    # AND a buffer of pairs only gives its changes flat
    assert b[:1].columns()[6] == [("x", 1)]


def test_the_scan_can_leave_out_the_changes() -> None:
    # GIVEN a CALL that binds two arguments and a RETURN
    items = [
        (CALL, 1, 2, 3, 4, (5, 0), (("a", 1), ("b", (5, 9, "list", 0, ()))), None),
        (LINE, 2, 3, 3, 5, None, (("c", 2),), None),
        (RETURN, 3, 4, 3, 6, 7, None, None),
    ]
    b = buffer(items)
    # THEN select gives the events of the kinds asked for, their changes paired again
    assert b.select(bytes([CALL, RETURN])) == [items[0], items[2]]
    # AND without them when asked (the writer's scan: no row reads them)
    assert b.select(bytes([CALL, RETURN]), False) == [(*items[0][:6], None, None), items[2]]


@settings(max_examples=100, deadline=None)
@given(items=recorded_like)
def test_without_the_c_column_loops_a_buffer_is_read_as_tuples(items: list[tuple]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(codec, "_accel", None)
        assert decode_events(encode_events(buffer(items))) == items


@settings(max_examples=100, deadline=None)
@given(items=recorded_like)
def test_the_scan_gets_the_events_that_make_rows_in_order(items: list[tuple]) -> None:
    # GIVEN a recorder-like buffer WHEN the writer's scan asks for the kinds it reads
    selected = buffer(items).select(writer._SCANNED_KINDS)
    # THEN it gets every event of those kinds, in order, and no other
    assert selected == [e for e in items if e[0] not in (LINE, EXTERNAL, GAP)]
    # AND the index the writer builds from the buffer is the one it builds from the list
    rows = [writer.IndexBuilder().scan(1, source) for source in (buffer(items), list(items))]
    assert rows[0] == rows[1]


def chunk_parts(blob: bytes) -> tuple[object, object, bytes]:
    """A chunk blob's three parts: its columns and values read back, and its noise."""
    payload = zstandard.ZstdDecompressor().decompress(blob[len(codec._HEAD) :])
    columns_size, values_size = codec._PREFIX.unpack_from(payload)
    start = codec._PREFIX.size
    columns = marshal.loads(payload[start : start + columns_size])
    values = marshal.loads(payload[start + columns_size : start + columns_size + values_size])
    return columns, values, payload[start + columns_size + values_size :]


packed_edges = st.lists(
    st.tuples(
        st.integers(0, 255),
        st.integers(-(2**62), 2**62),
        st.integers(-(2**62), 2**62),
        st.integers(-(2**62), 2**62) | st.sampled_from([0, 1, 2**31 - 1, 2**31, -(2**31)]),
        st.integers(-(2**63) + 1, 2**63 - 1),  # -(2**63) is the buffer's "no line"
        values,
        changes,
        st.none() | st.tuples(st.text(max_size=4)),
    ),
    min_size=1,
    max_size=40,
)


@pytest.mark.skipif(not codec._C_PACKED or codec.LIBZSTD is None, reason="no C chunk writer")
@settings(max_examples=200, deadline=None)
@given(items=recorded_like | packed_edges)
def test_the_chunk_writer_makes_the_chunk_of_the_packed_records_as_of_the_columns(
    items: list[tuple],
) -> None:
    # GIVEN a core's buffer of events (and events at the edges of 32 and 64 bits)
    b = buffer(items)
    # WHEN the chunk writer is handed the records themselves, as the recorder's writer hands
    # them (it makes the columns without the GIL), and when it is handed the columns the codec
    # packs from `columns()`
    from_records = codec._c_chunks([b.packed()], 1, codec._HEAD)
    from_columns = codec._c_chunks([codec._event_parts_packed(b.columns())], 1, codec._HEAD)
    # THEN both chunks hold the same columns, values and noise (their bytes may differ in
    # marshal's reference flags only), and decode to the events; or, for a value the C writer
    # does not write (an int past 64 bits), both decline
    event("declined" if from_columns is None else "made")
    if from_columns is None:
        assert from_records is None
    else:
        assert chunk_parts(from_records[0]) == chunk_parts(from_columns[0])
        assert decode_events(from_records[0]) == items
    # AND the store's own way of encoding a buffer gives that chunk (or takes another way)
    assert decode_events(encode_events(b)) == items


@pytest.mark.skipif(not codec._C_PACKED or codec.LIBZSTD is None, reason="no C chunk writer")
def test_records_the_chunk_writer_cannot_pack_go_the_codecs_other_ways() -> None:
    # GIVEN steps whose difference does not fit 64 bits (no core makes them; the codec keeps
    # such a column as a list)
    items = [(LINE, -(2**63), 1, 3, 4, None, None, None), (LINE, 2**63 - 1, 2, 3, 5, 1, None, None)]
    b = buffer(items)
    # THEN the chunk writer declines the records, and the codec stores the events its own way
    assert codec._c_chunks([b.packed()], 1, codec._HEAD) is None
    assert decode_events(encode_events(b)) == items
    # AND a buffer whose columns cannot be packed (a line of None, changes that are not pairs)
    # or that is empty gives no records at all
    assert buffer([(GAP, 1, 2, 3, None, ("budget", "why"), None, None)]).packed() is None
    assert buffer([(LINE, 1, 2, 3, 4, None, (("x", 1, 2),), None)]).packed() is None
    assert buffer([]).packed() is None


def test_the_packed_records_keep_their_buffer_alive() -> None:
    # GIVEN a buffer's records, handed over as the writer hands them, and nothing else holding
    # the buffer
    b = buffer([(LINE, 1, 2, 3, 4, Holder(1), None, None)])
    probe = weakref.ref(b[0][5])
    records = b.packed()
    del b
    gc.collect()
    # THEN the values the records point to are still there until the records are let go
    assert probe() is not None
    del records
    gc.collect()
    assert probe() is None


def test_a_buffer_absorbs_another_without_touching_its_values() -> None:
    # GIVEN two buffers the writer owns, whose values nothing else holds
    first = buffer([(LINE, 1, 2, 3, 4, Holder(1), (("x", Holder(2)),), None)])
    second = buffer([(LINE, 2, 3, 3, 5, Holder(3), None, ("y",))])
    expected = list(first) + list(second)
    probe = weakref.ref(second[0][5])
    # WHEN the first absorbs the second (the writer joining a run of lists)
    first.absorb(second)
    # THEN the first holds both lists' events in order and the second none, and each value
    # lives as long as the buffer that holds it now
    assert list(first) == expected and len(second) == 0
    del second, expected
    gc.collect()
    assert probe() is not None
    del first
    gc.collect()
    assert probe() is None
    # AND it takes nothing but another buffer
    b = buffer([])
    for bad in ([(LINE, 1, 2, 3, 4, None, None, None)], b):
        with pytest.raises(TypeError):
            b.absorb(bad)


def test_the_writer_joins_a_run_of_buffers_as_it_joins_a_run_of_lists() -> None:
    # GIVEN a backlog of full lists of two threads, as buffers and as lists
    size = writer.BATCH_EVENTS

    def full(thread: int, start: int) -> list[tuple]:
        return [(LINE, start + i, i, thread, 4, None, None, None) for i in range(size)]

    lists = [(1, full(1, 0)), (1, full(1, 10**6)), (2, full(2, 2 * 10**6)), (1, full(1, 3 * 10**6))]
    buffers = [(thread, buffer(events)) for thread, events in lists]
    # WHEN the writer, behind, joins them into chunks
    joined_lists = writer._merge_runs([(t, list(e)) for t, e in lists], writer.MERGED_CHUNK_EVENTS)
    joined_buffers = writer._merge_runs(buffers, writer.MERGED_CHUNK_EVENTS)
    # THEN both give the same chunks of the same events
    assert [(t, list(e)) for t, e in joined_buffers] == joined_lists
    assert [len(e) for _, e in joined_lists] == [2 * size, size, size]
