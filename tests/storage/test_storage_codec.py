"""The chunk codec: events survive a round trip, and bad blobs are refused with a sentence."""

from __future__ import annotations

import marshal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from replay.storage import StoreError
from replay.storage.codec import (
    CODEC_VERSION,
    MAGIC,
    compress_blob,
    decode_events,
    decompress_blob,
    encode_events,
)
from storage_testkit import line_events

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


@settings(max_examples=100, deadline=None)
@given(events=events_lists)
def test_any_nested_events_round_trip(events: list[tuple]) -> None:
    # GIVEN events made of nested tuples of ints, str, bytes, floats and None
    # WHEN they are encoded and decoded
    decoded = decode_events(encode_events(events))
    # THEN the same events come back
    assert decoded == events


def test_realistic_events_round_trip_and_compress() -> None:
    # GIVEN 5000 line events of the documented 8-field shape, with payloads of every kind
    events = line_events(1, 5000)
    events.append((0, 5001, 9, 2, 1, (17, 1), (("x", (5, 3, "list", 2, (1, 2))),), ("y",)))
    events.append((2, 5002, 9, 2, 4, (1, "str", "ab", 9000), None, None))
    # WHEN encoded
    blob = encode_events(events)
    # THEN the blob is framed as documented, smaller than marshal alone, and decodes exactly
    assert blob[:4] == MAGIC
    assert blob[4] == CODEC_VERSION
    assert blob[5:9] == b"\x28\xb5\x2f\xfd"  # a zstd frame follows the header
    assert len(blob) < len(marshal.dumps(events, 4)) / 3
    assert decode_events(blob) == events


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
    with pytest.raises(StoreError, match=r"codec version 2.*incompatible.*reads codec version 1"):
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
        decode_events(MAGIC + bytes([CODEC_VERSION]) + payload)


@given(data=st.binary(max_size=2000))
def test_source_blobs_round_trip(data: bytes) -> None:
    assert decompress_blob(compress_blob(data)) == data


def test_damaged_source_blob_is_refused() -> None:
    blob = bytearray(compress_blob(b"print('hello')\n" * 50))
    blob[-3] ^= 0xFF
    with pytest.raises(StoreError, match="compressed source is corrupted"):
        decompress_blob(bytes(blob))
