"""The engine's cache of decoded chunks is bounded by events, not by chunks.

The recorder stores chunks of 4,096 events, or of up to 16,384 when its writer is behind (it
joins a thread's lists): a cache that counted chunks would hold four times the events, and the
memory, for such a recording. A real store, chunks of different sizes, and the cache's count
of decodings as the evidence of what it kept.
"""

from __future__ import annotations

from pathlib import Path

from replay.storage import ChunkWrite, Store
from replay.storage.codec import encode_events

from replay.engine.stream import CACHE_UNIT_EVENTS, ChunkCache
from replay.events import LINE


def _store_with_chunks(path: Path, sizes: list[int]) -> tuple[Store, list[int]]:
    store = Store.open(path, mode="w")
    recording_id = store.create_recording({"format_version": 1})
    step = 1
    for size in sizes:
        events = [(LINE, step + i, step + i, 1, 3, None, None, None) for i in range(size)]
        chunk = ChunkWrite(1, step, step, step + size - 1, size, encode_events(events))
        store.add_batch(recording_id, chunks=[chunk])
        step += size
    return store, [info.id for info in store.chunk_index(recording_id)]


def test_a_chunk_of_many_events_takes_the_room_of_several(tmp_path: Path) -> None:
    # GIVEN two chunks of one unit each and one of four units, in a cache of four units
    store, (small_a, small_b, big) = _store_with_chunks(
        tmp_path / "r.db", [CACHE_UNIT_EVENTS, 10, 4 * CACHE_UNIT_EVENTS]
    )
    cache = ChunkCache(store, capacity=4)
    try:
        # WHEN the two small ones are read, then the big one, then the small ones again
        assert len(cache.get(small_a)) == CACHE_UNIT_EVENTS
        assert len(cache.get(small_b)) == 10
        assert cache.reads == 2
        assert len(cache.get(big)) == 4 * CACHE_UNIT_EVENTS
        # THEN the big one pushed both small ones out, and they are decoded again
        cache.get(small_a)
        cache.get(small_b)
        assert cache.reads == 5
        # AND the chunk last read stays even when it alone is over the capacity
        assert len(cache.get(big)) == 4 * CACHE_UNIT_EVENTS
        assert cache.reads == 6
        cache.get(big)
        assert cache.reads == 6
    finally:
        store.close()


def test_small_chunks_share_the_room_as_before(tmp_path: Path) -> None:
    # GIVEN four chunks of one unit each in a cache of four units
    store, ids = _store_with_chunks(tmp_path / "r.db", [100, 200, 300, CACHE_UNIT_EVENTS])
    cache = ChunkCache(store, capacity=4)
    try:
        # WHEN each is read twice
        for chunk_id in ids + ids:
            cache.get(chunk_id)
        # THEN each was decoded once: four chunks of up to a unit fit
        assert cache.reads == 4
    finally:
        store.close()
