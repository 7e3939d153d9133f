"""One thread's events as a random-access sequence, read chunk by chunk.

This module owns positions. A position in a thread is `(k, i)`: event `i` of the thread's
chunk `k` (chunks ordered by first step). Chunks are decoded on demand and kept in a small LRU
cache shared by all threads, so a recording of any length costs the chunk index (a few numbers
per chunk of 4,096 to 16,384 events) plus the cache.
"""

from __future__ import annotations

import bisect
import functools
import gc
from collections import OrderedDict
from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import Any, TypeVar

from replay.events import F_STEP
from replay.storage import ChunkInfo, Store

Pos = tuple[int, int]
"""(chunk index in the thread, event index in the chunk)."""

_step_of = itemgetter(F_STEP)


CACHE_UNIT_EVENTS = 4096
"""What one unit of the chunk cache's capacity holds: a chunk of up to this many events is one
unit, a bigger one (the recorder joins lists into chunks of up to 16,384 events when its writer
is behind) counts as several, so the cache's memory does not grow with the chunks' size."""


class ChunkCache:
    """Decoded chunks by chunk id, least recently used dropped first.

    `capacity` is in units of `CACHE_UNIT_EVENTS` events; the chunk in use always stays.
    `read` decodes a chunk (the store's `read_chunk`, or a recording's, which expands object
    records into trees: `RecordingCatalog.read_chunk`).
    """

    def __init__(
        self,
        store: Store,
        capacity: int = 48,
        read: Callable[[int], list[tuple]] | None = None,
    ) -> None:
        self.store = store
        self.capacity = capacity
        self._read = read if read is not None else store.read_chunk
        self._chunks: OrderedDict[int, list[tuple]] = OrderedDict()
        self._units = 0
        self.reads = 0
        """Chunks decoded so far (for benchmarks and tests)."""

    def get(self, chunk_id: int) -> list[tuple]:
        events = self._chunks.get(chunk_id)
        if events is not None:
            self._chunks.move_to_end(chunk_id)
            return events
        events = self._read(chunk_id)
        self.reads += 1
        self._chunks[chunk_id] = events
        self._units += _units(events)
        while self._units > self.capacity and len(self._chunks) > 1:
            self._units -= _units(self._chunks.popitem(last=False)[1])
        return events

    def clear(self) -> None:
        self._chunks.clear()
        self._units = 0


def _units(events: list[tuple]) -> int:
    return -(-len(events) // CACHE_UNIT_EVENTS) or 1


class ThreadStream:
    """The events of one thread, in step order, addressed by `Pos`."""

    def __init__(self, thread_id: int, chunks: list[ChunkInfo], cache: ChunkCache) -> None:
        self.thread_id = thread_id
        self.chunks = sorted(chunks, key=lambda c: c.first_step)
        self.firsts = [c.first_step for c in self.chunks]
        self.lasts = [c.last_step for c in self.chunks]
        self.cache = cache

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def first_step(self) -> int:
        return self.firsts[0]

    @property
    def last_step(self) -> int:
        return self.lasts[-1]

    def events(self, k: int) -> list[tuple]:
        return self.cache.get(self.chunks[k].id)

    def event(self, pos: Pos) -> tuple:
        return self.events(pos[0])[pos[1]]

    def first(self) -> Pos:
        return (0, 0)

    def last(self) -> Pos:
        k = len(self.chunks) - 1
        return (k, len(self.events(k)) - 1)

    # -- finding steps -------------------------------------------------------------------

    def chunk_of(self, step: int) -> int | None:
        """The chunk whose step range holds `step`, if any."""
        k = bisect.bisect_right(self.firsts, step) - 1
        if k >= 0 and step <= self.lasts[k]:
            return k
        return None

    def find(self, step: int) -> Pos | None:
        """The position of the event with exactly this step, if this thread has it."""
        k = self.chunk_of(step)
        if k is None:
            return None
        events = self.events(k)
        i = bisect.bisect_left(events, step, key=_step_of)
        if i < len(events) and events[i][F_STEP] == step:
            return (k, i)
        return None

    def at_or_before(self, step: int) -> Pos | None:
        """The latest event with step <= `step`."""
        k = bisect.bisect_right(self.firsts, step) - 1
        if k < 0:
            return None
        events = self.events(k)
        i = bisect.bisect_right(events, step, key=_step_of) - 1
        return (k, i)  # i >= 0: the chunk's first step is <= step

    def at_or_after(self, step: int) -> Pos | None:
        """The earliest event with step >= `step`."""
        k = bisect.bisect_left(self.lasts, step)
        if k >= len(self.chunks):
            return None
        events = self.events(k)
        i = bisect.bisect_left(events, step, key=_step_of)
        return (k, i)

    # -- moving --------------------------------------------------------------------------

    def next(self, pos: Pos) -> Pos | None:
        k, i = pos
        if i + 1 < len(self.events(k)):
            return (k, i + 1)
        if k + 1 < len(self.chunks):
            return (k + 1, 0)
        return None

    def prev(self, pos: Pos) -> Pos | None:
        k, i = pos
        if i > 0:
            return (k, i - 1)
        if k > 0:
            return (k - 1, len(self.events(k - 1)) - 1)
        return None

    def forward(self, pos: Pos, *, inclusive: bool = False) -> Iterator[tuple[int, int, tuple]]:
        """(k, i, event) from `pos` on (after it unless inclusive)."""
        k, i = pos
        if not inclusive:
            i += 1
        while k < len(self.chunks):
            events = self.events(k)
            for j in range(i, len(events)):
                yield k, j, events[j]
            k += 1
            i = 0

    def backward(self, pos: Pos, *, inclusive: bool = False) -> Iterator[tuple[int, int, tuple]]:
        """(k, i, event) from `pos` back to the first event (before it unless inclusive)."""
        k, i = pos
        if not inclusive:
            i -= 1
        while k >= 0:
            events = self.events(k)
            for j in range(min(i, len(events) - 1), -1, -1):
                yield k, j, events[j]
            k -= 1
            i = 1 << 62


class _GcPause:
    """Pauses the cyclic garbage collector while the engine decodes and scans.

    Decoded events are acyclic tuples freed by reference counting; collections triggered by
    allocating them walk the whole chunk cache again and again, which costs more than the
    decoding itself (measured: 2.1 ms -> 0.9 ms per chunk). Re-entrant.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.was_enabled = False

    def __enter__(self) -> None:
        if self.depth == 0:
            self.was_enabled = gc.isenabled()
            gc.disable()
        self.depth += 1

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth == 0 and self.was_enabled:
            gc.enable()


gc_paused = _GcPause()


_F = TypeVar("_F", bound=Callable[..., Any])


def quiet_gc(method: _F) -> _F:
    """Run an engine operation with the cyclic GC paused (see `gc_paused`)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with gc_paused:
            return method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
