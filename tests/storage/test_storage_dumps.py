"""The C writer of chunk values (storage/_dumps.c) against `marshal` itself, the oracle.

It must write exactly what `marshal.dumps(value, 4)` writes for the data it takes, decline
anything else without harm, and stay right while another thread changes the reference counts
of what it reads (it reads with the GIL released, beside the traced program).
"""

from __future__ import annotations

import marshal
import math
import sys
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay.storage import codec
from replay.storage.codec import decode_events, encode_event_chunks, encode_events
from storage_testkit import mixed_events

_columns = codec._accel
pytestmark = pytest.mark.skipif(_columns is None, reason="the C column loops are not built")

atoms = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.integers(-(2**31) - 2, 2**31 + 2)
    | st.floats()
    | st.text(max_size=12)
    | st.text(alphabet=st.characters(codec="utf-8", exclude_categories=()), max_size=12)
    | st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3)
    | st.binary(max_size=12)
)
plain = st.recursive(
    atoms,
    lambda inner: (
        st.lists(inner, max_size=6).map(tuple)
        | st.lists(inner, max_size=6)
        | st.dictionaries(st.text(max_size=4) | st.integers(-5, 5), inner, max_size=4)
    ),
    max_leaves=40,
)


def same(a: Any, b: Any) -> bool:
    """Equal with the same exact types all the way down (NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=300, deadline=None)
@given(value=plain)
def test_plain_data_is_written_as_marshal_writes_it(value: Any) -> None:
    # GIVEN plain data, held the same way by both writers (so the reference counts that decide
    # marshal's back-reference flags are the same)
    values = [value]
    # WHEN the C writer and marshal write it
    (written,) = _columns.dumps(values)
    # THEN the bytes are marshal's, and read back as the value with its exact types
    assert written == marshal.dumps(value, 4)
    assert same(marshal.loads(written), value)


def test_the_edges_of_each_encoding_are_marshals() -> None:
    edges = [
        *(2**k + d for k in (15, 30, 31, 32, 45, 60, 62) for d in (-1, 0, 1)),
        *(-(2**k) + d for k in (15, 30, 31, 32, 45, 60, 63) for d in (0, 1)),
        2**63 - 1,
        "a" * 255,
        "a" * 256,
        "é" * 300,
        "\U0001f600\ud800",
        sys.intern("an interned name"),
        b"",
        b"x" * 70_000,
        tuple(range(255)),
        tuple(range(256)),
        (),
        -0.0,
        float("inf"),
        float("nan"),
        {},
        {"k": ({"n": [1]},)},
    ]
    for value in edges:
        values = [value]
        (written,) = _columns.dumps(values)
        assert written == marshal.dumps(value, 4), value
        assert same(marshal.loads(written), value)


@pytest.mark.parametrize(
    "odd",
    [
        2**63,
        -(2**63) - 1,
        {1, 2},
        frozenset(),
        object(),
        type("Text", (str,), {})("subclass"),
        type("Number", (int,), {})(3),
        ("fine", [1, {2: 2**70}]),
        1j,
        ...,
    ],
    ids=repr,
)
def test_anything_else_is_declined_and_marshal_writes_it(odd: Any) -> None:
    # GIVEN data the C writer does not write (a big int, a set, a subclass...)
    values = [odd]
    # THEN it declines that value alone
    assert _columns.dumps([1, odd, "x"]) == [marshal.dumps(1, 4), None, marshal.dumps("x", 4)]
    # AND the codec's values are marshal's, or marshal's refusal
    try:
        expected = [marshal.dumps(odd, 4)]
    except ValueError:
        with pytest.raises(ValueError, match="unmarshallable"):
            codec._dump_values(values)
    else:
        assert codec._dump_values(values) == expected


def test_nesting_deeper_than_values_go_is_declined() -> None:
    deep: Any = 1
    for _ in range(100):
        deep = (deep,)
    assert _columns.dumps([deep]) == [None]
    assert marshal.loads(codec._dump_values([deep])[0]) == deep


def test_a_shared_object_is_written_once_and_read_back_shared() -> None:
    shared = ("a venc", 12, ("nested", 1.5))
    value = ([shared] * 50, {"x": shared})
    (written,) = _columns.dumps([value])
    assert len(written) < 50 * len(marshal.dumps(shared, 4))
    back = marshal.loads(written)
    assert all(item is back[0][0] for item in back[0]) and back[1]["x"] is back[0][0]


def test_reference_counts_changing_meanwhile_do_not_change_what_is_read() -> None:
    # GIVEN values big enough to be written with the GIL released, whose parts another thread
    # keeps taking and dropping references to (as the recorder's caches do, beside the writer)
    parts = [("venc", i, ("name", float(i)), "é" * (i % 5)) for i in range(600)]
    value = ([p for p in parts for _ in range(4)], [{"n": p} for p in parts], [None] * 3000)
    stop = threading.Event()

    def churn() -> None:
        held: list[Any] = []
        while not stop.is_set():
            held.extend(parts)
            held.clear()

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        # WHEN it is written again and again meanwhile
        results = [_columns.dumps([value])[0] for _ in range(40)]
    finally:
        stop.set()
        thread.join()
    # THEN every writing reads back as the value (the flags may differ, the values do not)
    assert all(same(marshal.loads(data), value) for data in results)


def test_the_chunks_of_a_write_are_the_chunks_of_each_batch() -> None:
    # GIVEN more batches than one release of the GIL takes, of several shapes
    # (one of them big enough to be written with the GIL released)
    batches = [mixed_events(1, 40 + 30 * i, seed=i) for i in range(codec.CHUNKS_PER_RELEASE + 3)]
    batches[1] = mixed_events(1, 5000)
    batches[2] = [(1, 2), "not the column layout"]
    batches[5] = []
    # WHEN they are encoded together, and one by one
    together = encode_event_chunks(batches)
    # THEN each chunk decodes to its batch, as the one-by-one chunk does
    assert len(together) == len(batches)
    for events, blob in zip(batches, together, strict=True):
        assert decode_events(blob) == decode_events(encode_events(events)) == events


def test_without_the_c_writer_the_chunks_decode_the_same(monkeypatch) -> None:
    batches = [mixed_events(1, 300), mixed_events(301, 5000, seed=3)]
    with_c = [decode_events(blob) for blob in encode_event_chunks(batches)]
    monkeypatch.setattr(codec, "_accel", None)
    assert [decode_events(blob) for blob in encode_event_chunks(batches)] == with_c == batches
