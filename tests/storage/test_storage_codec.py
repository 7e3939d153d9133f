"""The codec: events and blocks survive a round trip exactly, old chunks still decode, and bad
blobs are refused with a sentence."""

from __future__ import annotations

import gc
import itertools
import marshal
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from replay.storage import StoreError, codec
from replay.storage.codec import (
    CALL_FIELDS,
    CODEC_VERSION,
    EXCEPTION_FIELDS,
    MAGIC,
    compress_blob,
    decode_calls,
    decode_events,
    decode_exceptions,
    decompress_blob,
    encode_calls,
    encode_event_chunks,
    encode_events,
    encode_exceptions,
)
from storage_testkit import line_events, mixed_events, v1_chunk

# Values as a venc can hold them: atoms, and tuples of values nested a few levels.
atoms = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
values = st.recursive(atoms, lambda inner: st.lists(inner, max_size=5).map(tuple), max_leaves=25)
events_lists = st.lists(st.lists(values, min_size=1, max_size=8).map(tuple), max_size=30)

# Events of the documented shape, with the values a recorder gives and the edges of the column
# layout: ints past 32 and 64 bits, negative steps and times, kinds up to 255.
ints = st.integers(min_value=-(2**70), max_value=2**70) | st.integers(-300, 300)
names = st.text(max_size=6)
changes = st.none() | st.lists(st.tuples(names, values), max_size=3).map(tuple)
deleted = st.none() | st.lists(names, min_size=1, max_size=2).map(tuple)
shaped_events = st.tuples(st.integers(0, 255), ints, ints, ints, ints, values, changes, deleted)
shaped_lists = st.lists(shaped_events, max_size=40)


def exactly(data: object) -> object:
    """`data` with every scalar tagged by its type, so 1 == True == 1.0 and 0.0 == -0.0 differ."""
    if isinstance(data, tuple | list):
        return (type(data).__name__, [exactly(item) for item in data])
    if isinstance(data, float):
        return ("float", data.hex())
    return (type(data).__name__, data)


@settings(max_examples=100, deadline=None)
@given(events=events_lists)
def test_any_nested_events_round_trip(events: list[tuple]) -> None:
    # GIVEN events made of nested tuples of ints, str, bytes, floats and None
    # WHEN they are encoded and decoded
    decoded = decode_events(encode_events(events))
    # THEN the same events come back, down to the type of every value
    assert exactly(decoded) == exactly(events)


@settings(max_examples=300, deadline=None)
@given(events=shaped_lists)
def test_events_of_the_documented_shape_round_trip_exactly(events: list[tuple]) -> None:
    # GIVEN 8-field events (the column layout), with any ints and values
    # WHEN they are encoded and decoded THEN exactly the same tuples come back
    assert exactly(decode_events(encode_events(events))) == exactly(events)


@pytest.mark.parametrize(
    "odd",
    [
        (True, 1, 2, 3, 4, None, None, None),  # a bool kind
        (1, 2, 3.0, 3, 4, None, None, None),  # a float time
        (1, 2, 3, 3, False, None, None, None),  # a bool line
        (256, 2, 3, 3, 4, None, None, None),  # a kind past a byte
        (1, 2, None, 3, 4, None, None, None),  # no time
        [1, 2, 3, 3, 4, None, None, None],  # a list, not a tuple
        (1, 2, 3, 3, 4, None, None),  # seven fields
    ],
)
def test_events_outside_the_column_layout_still_round_trip(odd: tuple | list) -> None:
    # GIVEN regular events and one that the columns cannot hold exactly
    events = [*line_events(1, 50), odd, *line_events(60, 5)]
    # WHEN encoded and decoded THEN it comes back as it was, type for type
    assert exactly(decode_events(encode_events(events))) == exactly(events)


def test_codec_1_chunks_still_decode() -> None:
    # GIVEN a chunk as schema-1 replays wrote it: RPEV, 1, zstd(marshal.dumps(events, 4))
    events = mixed_events(1, 3000)
    blob = v1_chunk(events)
    assert blob[4] == 1
    # WHEN it is decoded THEN its events come back
    assert decode_events(blob) == events


def test_shared_values_are_written_once() -> None:
    # GIVEN 1000 events whose changes hold the same (big) value object
    big = (5, 7, "list", 64, [f"item number {i}" for i in range(64)])
    events = [(1, s, s * 300, 1, 10, None, (("x", big),), None) for s in range(1, 1001)]
    # WHEN encoded THEN the chunk is barely bigger than one copy of the value
    assert len(encode_events(events)) < 2_000
    decoded = decode_events(encode_events(events))
    assert decoded == events
    assert decoded[0][6][0][1] is decoded[-1][6][0][1]  # one object, referred to


def test_realistic_events_round_trip_and_compress() -> None:
    # GIVEN 5000 line events of the documented 8-field shape, with payloads of every kind
    events = line_events(1, 5000)
    events.append((0, 5001, 9, 2, 1, (17, 1), (("x", (5, 3, "list", 2, (1, 2))),), ("y",)))
    events.append((2, 5002, 9, 2, 4, (1, "str", "ab", 9000), None, None))
    # WHEN encoded
    blob = encode_events(events)
    # THEN the blob is framed as documented, smaller than codec 1, and decodes exactly
    assert blob[:4] == MAGIC
    assert blob[4] == CODEC_VERSION == 3
    assert blob[5:9] == b"\x28\xb5\x2f\xfd"  # a zstd frame follows the header
    assert len(blob) < len(marshal.dumps(events, 4)) / 10
    assert len(blob) < len(v1_chunk(events)) / 2
    assert decode_events(blob) == events


def test_realistic_events_cost_a_few_bytes_each() -> None:
    # GIVEN 4096 events of every kind, with times a few hundred ns apart
    events = mixed_events(1, 4096)
    # WHEN encoded THEN the chunk is well under codec 1's (half, on such random data)
    assert len(encode_events(events)) * 1.8 < len(v1_chunk(events))


@pytest.mark.parametrize("level", [1, 3, 19])
def test_every_compression_level_decodes(level: int) -> None:
    events = line_events(1, 100)
    assert decode_events(encode_events(events, level=level)) == events


def test_empty_event_list_round_trips() -> None:
    assert decode_events(encode_events([])) == []


def test_threads_encode_concurrently_without_mixing() -> None:
    # GIVEN 8 threads, each encoding and decoding its own events many times
    barrier = threading.Barrier(8)

    def work(thread: int) -> bool:
        barrier.wait()
        events = line_events(thread * 1000 + 1, 200, call=thread)
        return all(decode_events(encode_events(events)) == events for _ in range(50))

    # WHEN they run at the same time (each thread has its own compressor)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    # THEN every round trip was exact
    assert all(results)


def test_wrong_magic_is_refused_as_incompatible() -> None:
    blob = b"XXXX" + encode_events(line_events(1, 3))[4:]
    with pytest.raises(StoreError, match="incompatible with this version of replay"):
        decode_events(blob)


def test_newer_codec_version_is_refused_with_both_versions() -> None:
    blob = bytearray(encode_events(line_events(1, 3)))
    blob[4] = CODEC_VERSION + 1
    with pytest.raises(
        StoreError, match=r"codec version 4, .*incompatible.*reads codec versions 1, 2 and 3\)"
    ):
        decode_events(bytes(blob))


@pytest.mark.parametrize("blob", [b"", b"RP", b"RPEV"], ids=["empty", "short", "header-only"])
def test_truncated_blobs_are_refused(blob: bytes) -> None:
    with pytest.raises(StoreError):
        decode_events(blob)


@pytest.mark.parametrize("offset", [6, 12, -8, -2])
def test_corrupted_blob_is_caught_before_marshal(offset: int) -> None:
    # GIVEN a chunk with one byte flipped inside its zstd frame
    blob = bytearray(encode_events(line_events(1, 500)))
    blob[offset] ^= 0x5A
    # WHEN decoded THEN a StoreError says it is corrupted (zstd's checksum or framing caught it)
    with pytest.raises(StoreError, match="corrupted"):
        decode_events(bytes(blob))


def test_cut_blob_is_refused() -> None:
    blob = encode_events(line_events(1, 500))
    with pytest.raises(StoreError, match="corrupted"):
        decode_events(blob[: len(blob) // 2])


def test_valid_frame_of_non_marshal_bytes_is_refused() -> None:
    # GIVEN a well-formed frame whose content is not marshal data
    blob = MAGIC + bytes([CODEC_VERSION]) + zstandard.ZstdCompressor().compress(b"\xff\x00junk")
    with pytest.raises(StoreError, match="corrupted"):
        decode_events(blob)


def test_valid_frame_of_something_else_than_a_list_is_refused() -> None:
    payload = zstandard.ZstdCompressor().compress(marshal.dumps({"a": 1}, 4))
    with pytest.raises(StoreError, match="not a list of events"):
        decode_events(MAGIC + b"\x01" + payload)
    with pytest.raises(StoreError, match="corrupted"):
        decode_events(MAGIC + bytes([CODEC_VERSION]) + payload)


def v2_chunk(
    columns: object,
    values: object = ((), (), ()),
    noise: bytes = b"",
    version: int = CODEC_VERSION,
) -> bytes:
    """A codec-2 (or 3: the same parts) chunk made by hand from its three parts (codec.py)."""
    parts = [marshal.dumps(columns, 4), marshal.dumps(values, 4)]
    payload = struct.pack("<II", *map(len, parts)) + b"".join(parts) + noise
    return MAGIC + bytes([version]) + zstandard.ZstdCompressor().compress(payload)


# The layout as docs/schema.md describes it: two events, times 1000 and 1300.
HAND_INTS = (4, 1, b"\x01\x00\x00\x00")  # first 1, then +1
HAND_TIMES = (4, 1000, b"\x01\x00\x00")  # planes 1-3 of +300; plane 0 (0x2c) is the noise
HAND_COLUMNS = (2, b"\x00\x01", HAND_INTS, HAND_TIMES, (4, 5, b"\x00" * 4), (4, 7, b"\x08\0\0\0"))
HAND_EVENTS = [
    (0, 1, 1000, 5, 7, (1, 0), None, None),
    (1, 2, 1300, 5, 8, None, (("x", 1), ("y", (5, 9, "list", 0, ()))), None),
]


@pytest.mark.parametrize("version", [2, 3])
def test_a_hand_made_chunk_decodes(version: int) -> None:
    # GIVEN a chunk of the columns layout (1: changes as pairs), as codec 2 and 3 write it
    values = (((1, 0), None), (None, (("x", 1), ("y", (5, 9, "list", 0, ())))), (None, None))
    # THEN it decodes to its events
    assert decode_events(v2_chunk((1, *HAND_COLUMNS), values, b"\x2c", version)) == HAND_EVENTS


def test_a_hand_made_chunk_with_flat_changes_decodes_to_pairs() -> None:
    # GIVEN a codec-3 chunk of layout 2: each event's changes as names and values in a row
    values = (((1, 0), None), (None, ("x", 1, "y", (5, 9, "list", 0, ()))), (None, None))
    # THEN the events come back with their changes as pairs, as the recorder made them
    assert decode_events(v2_chunk((2, *HAND_COLUMNS), values, b"\x2c")) == HAND_EVENTS


@pytest.mark.parametrize("changes", [("x", 1, "y"), [("x", 1)], "xy"], ids=["odd", "list", "str"])
def test_flat_changes_that_are_not_names_and_values_are_refused(changes: object) -> None:
    values = (((1, 0), None), (None, changes), (None, None))
    with pytest.raises(StoreError, match="corrupted"):
        decode_events(v2_chunk((2, *HAND_COLUMNS), values, b"\x2c"))


GOOD = (1, 2, b"\x01\x01", *[(4, 1, b"\x00" * 4)] * 4)
GOOD_VALUES = ((None, None), (None, None), (None, None))


@pytest.mark.parametrize(
    ("columns", "values", "noise"),
    [
        ((7, []), GOOD_VALUES, b""),  # an unknown layout
        (GOOD[:5], GOOD_VALUES, b""),  # too few columns
        ((1, 3, *GOOD[2:]), GOOD_VALUES, b""),  # lengths disagree
        (GOOD, ((None,), (None,), (None,)), b""),  # too few values
        ((*GOOD[:3], (4, 1, b"\x01"), *GOOD[4:]), GOOD_VALUES, b""),  # a short int column
        ((*GOOD[:3], (9, 1, b"abcdefgh"), *GOOD[4:]), GOOD_VALUES, b""),  # an unknown width
        (GOOD, GOOD_VALUES, b"\x01\x02"),  # too much noise
        ("nope", GOOD_VALUES, b""),  # not a tuple
    ],
    ids=["layout", "columns", "lengths", "values", "short-ints", "width", "noise", "type"],
)
def test_chunks_with_inconsistent_columns_are_refused(
    columns: object, values: object, noise: bytes
) -> None:
    assert len(decode_events(v2_chunk(GOOD, GOOD_VALUES))) == 2  # the good one, for scale
    with pytest.raises(StoreError, match="corrupted"):
        decode_events(v2_chunk(columns, values, noise))


def test_chunks_whose_parts_do_not_fit_are_refused() -> None:
    payload = struct.pack("<II", 1000, 5) + b"x" * 20
    blob = MAGIC + bytes([CODEC_VERSION]) + zstandard.ZstdCompressor().compress(payload)
    with pytest.raises(StoreError, match="corrupted"):
        decode_events(blob)


# -- call and exception blocks ---------------------------------------------------------------

call_rows = st.lists(
    st.tuples(
        ints,  # call_id
        st.none() | ints,  # parent_id
        ints,  # function_id
        ints,  # thread_id
        ints,  # depth
        ints,  # first_step
        st.none() | ints,  # last_step
        st.booleans(),
        st.booleans(),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(rows=call_rows)
def test_call_blocks_round_trip_exactly(rows: list[tuple]) -> None:
    assert len(CALL_FIELDS) == 9
    assert exactly(decode_calls(encode_calls(rows))) == exactly(rows)


def test_realistic_call_blocks_are_small() -> None:
    # GIVEN 1000 calls of a call tree: each a child of the one before or of its parent
    rows = []
    for n in range(1, 1001):
        first = 10 * n
        parent = n - 1 - n % 3 or None
        rows.append((n, parent, 1 + n % 7, 1, n % 5, first, first + 7, False, n % 9 == 0))
    # WHEN packed THEN a call costs a few bytes, and they come back as they were
    blob = encode_calls(rows)
    assert len(blob) < 4 * len(rows)
    assert decode_calls(blob) == rows


@pytest.mark.parametrize(
    "rows",
    [
        [(1, 1, 1, 1, 0, 5, 9, False, False)],  # its own parent
        [(1, None, 1, 1, 0, 5, 4, False, False)],  # ends before it starts
        [(1, None, 1, 1, 0, 5, 9, 0, 1)],  # int flags
        [(1, None, True, 1, 0, 5, 9, False, False)],  # a bool function id
        [(1, None, 1, 1, 0, 5, 9, False)],  # a field short
        [(1, None, 1, 1, 0, 5, 9, False, False), (2, 2, 1, 1, 1, 6, 7, False, False)],  # root
        [(1, None, 1, 1, 0, 5, None, False, False), (2, 1, 1, 1, 1, 6, 5, False, False)],
    ],
)
def test_call_rows_outside_the_columns_round_trip(rows: list[tuple]) -> None:
    assert exactly(decode_calls(encode_calls(rows))) == exactly(rows)


exception_rows = st.lists(
    st.tuples(
        ints,
        ints,
        ints,
        st.sampled_from(["raise", "handled", "unwind", "throw"]),
        st.text(max_size=10),
        st.none() | st.text(max_size=20),
        st.none() | ints,
    ),
    max_size=30,
)


@settings(max_examples=100, deadline=None)
@given(rows=exception_rows)
def test_exception_blocks_round_trip_exactly(rows: list[tuple]) -> None:
    assert len(EXCEPTION_FIELDS) == 7
    assert exactly(decode_exceptions(encode_exceptions(rows))) == exactly(rows)


@pytest.mark.parametrize("decode", [decode_calls, decode_exceptions])
def test_damaged_blocks_are_refused(decode: Callable[[bytes], list[tuple]]) -> None:
    blob = bytearray(encode_calls([(1, None, 1, 1, 0, 5, 9, False, False)] * 50))
    blob[-3] ^= 0xFF
    with pytest.raises(StoreError, match="corrupted"):
        decode(bytes(blob))
    junk = zstandard.ZstdCompressor(write_checksum=True).compress(marshal.dumps([1, 2], 4))
    with pytest.raises(StoreError, match="corrupted"):
        decode(junk)


@given(data=st.binary(max_size=2000))
def test_source_blobs_round_trip(data: bytes) -> None:
    assert decompress_blob(compress_blob(data)) == data


def test_damaged_source_blob_is_refused() -> None:
    blob = bytearray(compress_blob(b"print('hello')\n" * 50))
    blob[-3] ^= 0xFF
    with pytest.raises(StoreError, match="compressed source is corrupted"):
        decompress_blob(bytes(blob))


# -- the C column loops (storage/_columns.c) give the bytes of the Python ones ----------------


def _python_only(make: Callable[[], bytes], monkeypatch: pytest.MonkeyPatch) -> bytes:
    with monkeypatch.context() as patch:
        patch.setattr(codec, "_accel", None)
        return make()


needs_accel = pytest.mark.skipif(codec._accel is None, reason="storage/_columns.c is not built")


@needs_accel
@settings(max_examples=300, deadline=None)
@given(events=shaped_lists)
def test_c_and_python_columns_give_the_same_chunk(events: list[tuple]) -> None:
    # GIVEN 8-field events with any ints (past 32 and 64 bits, negative) and values
    # WHEN encoded with the C loops and with the Python ones THEN the bytes are the same
    with pytest.MonkeyPatch.context() as monkeypatch:
        python = _python_only(lambda: encode_events(events), monkeypatch)
    assert encode_events(events) == python


needs_libzstd = pytest.mark.skipif(
    codec.LIBZSTD is None, reason="no libzstd to compress with in C (storage/_zstd.c)"
)


def _frame_parts(blob: bytes) -> tuple[bytes, object, bytes]:
    """A chunk's three parts, its values loaded (marshal's reference flags may differ)."""
    payload = zstandard.ZstdDecompressor().decompress(blob[len(codec._HEAD) :])
    columns, values = codec._PREFIX.unpack_from(payload)
    start = codec._PREFIX.size
    parts = payload[start : start + columns], payload[start + columns : start + columns + values]
    loaded = exactly(marshal.loads(parts[1])) if parts[1] else b""  # b"": kept whole in [0]
    return parts[0], loaded, payload[start + columns + values :]


@needs_libzstd
@settings(max_examples=200, deadline=None)
@given(
    batches=st.lists(shaped_lists | events_lists, min_size=1, max_size=5),
    level=st.sampled_from([1, 3, 6]),
)
def test_chunks_compressed_in_c_hold_what_python_zstandard_chunks_hold(
    batches: list[list[tuple]], level: int
) -> None:
    # GIVEN the chunks of one write (the documented shape, and others kept whole by marshal)
    # WHEN written by the C writer with libzstd (values and compression in one release of the
    # GIL) and by marshal and python-zstandard THEN each is a codec-3 blob of one zstd frame
    # with the same parts, and decodes to the events given
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(codec, "LIBZSTD", None)
        python = encode_event_chunks(batches, level)
    blobs = encode_event_chunks(batches, level)
    assert len(blobs) == len(python) == len(batches)
    for blob, theirs in zip(blobs, python, strict=True):
        assert blob[: len(codec._HEAD)] == codec._HEAD == MAGIC + bytes([CODEC_VERSION])
        assert _frame_parts(blob) == _frame_parts(theirs)
        assert exactly(decode_events(blob)) == exactly(decode_events(theirs))
        # One frame whose header says its size, checksummed, as python-zstandard writes it.
        params = zstandard.get_frame_parameters(blob[len(codec._HEAD) :])
        assert params.has_checksum
        assert params.content_size == len(
            zstandard.ZstdDecompressor().decompress(blob[len(codec._HEAD) :])
        )


@needs_libzstd
@settings(max_examples=100, deadline=None)
@given(
    data=st.binary(max_size=5000) | st.text(max_size=3000).map(str.encode),
    level=st.sampled_from([3, 9]),
)
def test_small_blobs_compressed_in_c_are_python_zstandards_frames(data: bytes, level: int) -> None:
    # GIVEN a block's or a source's bytes WHEN compressed by libzstd holding the GIL (the way the
    # writer compresses them) THEN the frame reads back through python-zstandard, checksummed
    # and sized as its own compressor makes them
    made = codec._compress_small(data, level)
    assert made == codec._c_compress(data, level)
    assert decompress_blob(made) == data
    params = zstandard.get_frame_parameters(made)
    assert params.has_checksum and params.content_size == len(data)
    theirs = codec._compressor(level).compress(data)
    assert zstandard.get_frame_parameters(theirs).has_checksum


@needs_libzstd
def test_values_the_c_writer_does_not_take_send_the_whole_write_to_python() -> None:
    # A value marshal writes and the C writer does not (a set, an int past 64 bits): the chunks
    # of that write are made by the Python path, and read back the same.
    batches = [
        [(1, 1, 0, 1, 3, None, (("x", 1),), None)],
        [(1, 2, 0, 1, 4, None, (("s", frozenset({1, 2})), ("big", 2**80)), None)],
    ]
    assert codec._c_chunks([(b"", ([], [frozenset({1})], []), b"")], 1, codec._HEAD) is None
    blobs = encode_event_chunks(batches, 1)
    assert [decode_events(blob) for blob in blobs] == batches


@needs_accel
@settings(max_examples=200, deadline=None)
@given(rows=call_rows)
def test_c_and_python_columns_give_the_same_call_block(rows: list[tuple]) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        python = _python_only(lambda: encode_calls(rows), monkeypatch)
    assert encode_calls(rows) == python


edge_ints = st.sampled_from(
    [0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1]
)


edge_call_rows = st.lists(
    st.tuples(
        edge_ints,  # call_id
        st.none() | edge_ints,  # parent_id
        edge_ints | st.just(True),  # function_id
        edge_ints,  # thread_id
        edge_ints,  # depth
        edge_ints,  # first_step
        st.none() | edge_ints,  # last_step
        st.booleans() | st.just(1),
        st.booleans(),
    ),
    min_size=1,
    max_size=6,
)


@needs_accel
@settings(max_examples=500, deadline=None)
@given(rows=edge_call_rows)
def test_c_call_columns_give_the_python_block_or_decline(rows: list[tuple]) -> None:
    # GIVEN call rows with ints at the edges of 32 and 64 bits (as values, as differences of
    # call ids, parents and steps), a bool id or an int flag here and there
    made = codec._accel.call_columns(rows)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(codec, "_accel", None)
        python = codec._call_columns(rows)
        python_block = encode_calls(rows)
    # THEN the C pass gives the Python columns, or declines (the Python code then decides)
    assert made is None or made == python

    # AND it declines only rows with a value past 64 bits (a field, or a parent's or a last
    # step's difference as the block stores it), or what Python does not pack within 64 bits
    # (a plain list, or a difference between rows past them)
    def stored(row: tuple) -> list[object]:
        call, parent, *_, first, last = row[:7]
        gap = None if parent is None or type(parent) is not int else call - parent
        span = None if last is None or type(last) is not int else last - first
        return [*row[:7], gap, span]

    in_64_bits = all(
        type(x) is int and -(2**63) <= x < 2**63
        for row in rows
        for x in stored(row)
        if x is not None
    )
    if made is None and in_64_bits:
        assert python[0] == codec._AS_LIST or any(column[0] == 0 for column in python[2:9])
    # AND the blocks are the same bytes either way, and read back as the rows
    assert encode_calls(rows) == python_block
    assert exactly(decode_calls(python_block)) == exactly(rows)


@needs_accel
@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(edge_ints | st.integers(), min_size=1, max_size=20),
    delta=st.booleans(),
    planar=st.booleans(),
)
def test_c_packs_ints_as_python_does_or_declines(
    values: list[int], delta: bool, planar: bool
) -> None:
    # GIVEN ints at the edges of 32 and 64 bits, as values and as differences
    packed = codec._accel.pack_ints(values, delta, planar)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(codec, "_accel", None)
        python = codec._pack_ints(values, delta=delta, planar=planar)
    # THEN the C loop gives the Python column, or declines (and Python packs it) only when a
    # value or a difference is past 64 bits
    items = [b - a for a, b in itertools.pairwise(values)] if delta else values[1:]
    past_64_bits = any(not -(2**63) <= x < 2**63 for x in [*values, *items])
    assert packed == (None if past_64_bits else python)


@needs_accel
@pytest.mark.parametrize(
    "odd",
    [
        [(True, 1, 2, 3, 4, None, None, None)],
        [(1, 2, 3, 3, False, None, None, None)],
        [(256, 2, 3, 3, 4, None, None, None)],
        [(-1, 2, 3, 3, 4, None, None, None)],
        [(1, 2, 3.0, 3, 4, None, None, None)],
        [(1, 2**64, 3, 3, 4, None, None, None), (1, 0, 3, 3, 4, None, None, None)],
        [(1, 2**63 - 1, 3, 3, 4, None, None, None), (1, -(2**63), 3, 3, 4, None, None, None)],
        [(1, 2, 3, 3, 4, None, None)],
    ],
)
def test_c_columns_leave_odd_events_to_python(
    odd: list[tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN events the C loops do not take as they are (bools, big ints, a difference past 64
    # bits, seven fields) among regular ones
    events = [*line_events(1, 20), *odd]
    # WHEN encoded THEN the chunk is the one the Python code makes, and it round-trips
    python = _python_only(lambda: encode_events(events), monkeypatch)
    assert encode_events(events) == python
    assert exactly(decode_events(python)) == exactly(events)


@needs_accel
def test_c_transpose_declines_rows_that_are_not_exact_tuples_of_the_width() -> None:
    transpose = codec._accel.transpose
    assert transpose([(1, 2), (3, 4)], 2) == [[1, 3], [2, 4]]
    assert transpose([], 3) == [[], [], []]
    assert transpose([(1, 2), (3,)], 2) is None
    assert transpose([(1, 2), [3, 4]], 2) is None
    assert transpose([(1, 2)], 0) is None


flat_changes = st.lists(
    st.none()
    | st.lists(st.text(max_size=3) | st.integers(), max_size=8).map(tuple)
    | st.just(("x",))
    | st.just([("x", 1)]),
    max_size=12,
)


@needs_accel
@settings(max_examples=300, deadline=None)
@given(changes=flat_changes)
def test_c_pairing_gives_the_python_pairs_or_declines(changes: list[object]) -> None:
    # GIVEN a chunk's column of flat changes: None, tuples of any length, or a list now and then
    # WHEN paired in C
    made = codec._accel.paired(changes)

    # THEN it gives what the Python loop gives, or declines exactly what that loop refuses
    def readable(item: object) -> bool:
        return item is None or (type(item) is tuple and len(item) % 2 == 0)

    if all(map(readable, changes)):
        assert made == list(map(codec._paired, changes))
        assert [type(item) for item in made] == [type(item) for item in changes]
    else:
        assert made is None
        with pytest.raises((ValueError, TypeError)):
            list(map(codec._paired, changes))


@needs_accel
def test_decoded_events_are_left_to_reference_counting() -> None:
    # GIVEN a chunk of realistic events, and one whose changes are stored flat (codec 3, as
    # the C cores' event buffers are written)
    events = mixed_events(1, 2000)
    flat_values = ([(1, 0), None], [None, ("x", 1, "y", (5, 9, "list", 0, ()))], [None, None])
    flat = decode_events(v2_chunk((2, *HAND_COLUMNS), flat_values, b"\x2c"))
    # WHEN decoded with the C loops
    decoded = decode_events(encode_events(events))
    # THEN the events are the same, and neither they nor the change pairs made from flat
    # changes are watched by the cyclic garbage collector (no cycle can run through decoded
    # data; the engine decodes with the collector paused, which otherwise walked them all at
    # its next collection)
    assert decoded == events and flat == HAND_EVENTS
    assert not any(map(gc.is_tracked, decoded + flat))
    changes = flat[1][6]
    assert not gc.is_tracked(changes) and not any(map(gc.is_tracked, changes))
    # AND the list holding them, and the containers inside their values, are still watched
    held = [
        value[4]
        for event in decoded
        if event[6]
        for _, value in event[6]
        if type(value) is tuple and len(value) == 5 and type(value[4]) is list
    ]
    assert gc.is_tracked(decoded) and held and all(map(gc.is_tracked, held))
