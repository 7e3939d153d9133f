"""The engine's per-thread index: full-state checkpoints and chunk summaries.

This module owns what makes random access cheap on a recording of any length. For each chunk
`k` of a thread it keeps:

- a **checkpoint**: the thread's state (stack + every live frame's locals and arguments) just
  before the chunk's first event, so the state at any event is the checkpoint plus at most one
  chunk of replay; a chunk of more than INNER_EVENTS events (the recorder joins lists into
  chunks of up to 16,384 when its writer is behind) also has *inner* checkpoints every
  INNER_EVENTS events, so that no jump replays more than INNER_EVENTS events;
- a **digest**: the changes made during chunk `k` by the frames already live at its start, with
  the line that made each one, so the history of a long-running frame's variable reads small
  digests instead of decoding every chunk;
- a **summary**: the (code, line) pairs, event kinds, called code ids, live code ids and changed
  names of the chunk, so scans (continue, reverse-continue, search, history) skip chunks that
  cannot match without decoding them.

The index is built lazily and incrementally: checkpoint `k` needs chunks `0..k-1` replayed once.
Blobs live in an anonymous temporary file (the reading process keeps only offsets); once a
thread is fully built and the recording has finished, `persist` writes them into the store's
`checkpoints` table, so the next opening of the recording reads them instead of rebuilding.

Rows in `checkpoints` (engine format version INDEX_VERSION):

- `(thread, step=-1)`: the thread's summaries:
  `(version, INNER_EVENTS, n_chunks, last_chunk_id, [summary])`;
- `(thread, step=S)` with S the last step of chunk k-1: `(state bytes, digest bytes)` for chunk k;
- `(thread, step=S)` with S the step of event j-1 of chunk k, j a multiple of INNER_EVENTS: the
  inner checkpoint `(state bytes, b"")` before event j.

All blobs are zstd frames of marshal data (the same tools as the chunk codec).
"""

from __future__ import annotations

import marshal
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO

from replay.engine.model import Resolver, ThreadState
from replay.engine.stream import ThreadStream
from replay.events import CALL, GAP, LEAVE_KINDS, YIELD
from replay.storage import Store, StoreError, codec

INDEX_VERSION = 5
INNER_EVENTS = 4096
"""Events between a chunk's inner checkpoints (format 5)."""
LINE_BITS = 24
"""A (code id, line) pair is kept as the int `code_id << LINE_BITS | line`."""
SUMMARY_STEP = -1
_LEVEL = 1  # zstd level: the build is CPU-bound, size matters less than speed


@dataclass(frozen=True, slots=True)
class ChunkSummary:
    """What a chunk can match, for skipping it without decoding."""

    pairs: frozenset[int]
    """`code_id << LINE_BITS | line` of every event (which function ran which line)."""
    kinds: frozenset[int]
    called: frozenset[int]
    """Code ids of the chunk's CALL events."""
    codes: frozenset[int]
    """Code ids of frames live at some point of the chunk (may include a few more)."""
    names: frozenset[str]
    """Local names bound, rebound or deleted in the chunk."""

    def pack(self) -> tuple:
        return (self.pairs, self.kinds, self.called, self.codes, self.names)


Digest = dict[int, list[tuple[int, int, Any, Any]]]
"""call_id -> [(step, line that made the change, changes, deleted)] for frames live at start."""


class BlobFile:
    """Append-only blobs in an anonymous temporary file: the index costs no resident memory."""

    def __init__(self) -> None:
        self._file: BinaryIO | None = None
        self._size = 0

    def put(self, data: bytes) -> tuple[int, int]:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="replay-engine-")  # noqa: SIM115
        self._file.seek(self._size)
        self._file.write(data)
        ref = (self._size, len(data))
        self._size += len(data)
        return ref

    def get(self, ref: tuple[int, int]) -> bytes:
        assert self._file is not None
        self._file.seek(ref[0])
        return self._file.read(ref[1])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ThreadIndex:
    """Checkpoints, digests and summaries of one thread, built on demand."""

    def __init__(
        self,
        stream: ThreadStream,
        resolve: Resolver,
        blobs: BlobFile,
        store: Store,
        recording_id: int,
    ) -> None:
        self.stream = stream
        self.resolve = resolve
        self.blobs = blobs
        self.store = store
        self.recording_id = recording_id
        n = len(stream)
        self.summaries: list[ChunkSummary | None] = [None] * n
        self.ready = 0
        """Chunks replayed: checkpoints 0..ready and summaries 0..ready-1 are known."""
        self.from_store = False
        self._refs: dict[tuple[int, int], tuple[int, int]] = {}
        """Where each checkpoint's blob is, by (chunk k, event j): j 0 for chunk k's own (with
        its digest), a multiple of INNER_EVENTS for an inner one."""
        self._state: ThreadState | None = ThreadState()
        """The state after `ready` chunks (while building incrementally)."""
        self._pending: bytes | None = None
        """Checkpoint `ready` (dumped), until chunk `ready` is built and its digest known."""
        self._decoded: OrderedDict[tuple[int, int], tuple[bytes, bytes]] = OrderedDict()
        self.on_progress: Callable[[int, int], None] | None = None

    @property
    def complete(self) -> bool:
        return self.ready >= len(self.stream)

    # -- reading -------------------------------------------------------------------------

    def checkpoint(self, k: int) -> ThreadState:
        """A fresh copy of the thread's state just before chunk k's first event."""
        if k == 0:
            return ThreadState()
        self.ensure(k)
        return ThreadState.loads(self._pair(k)[0])

    def checkpoint_before(self, k: int, i: int) -> tuple[ThreadState, int]:
        """A fresh copy of the thread's state just before event j of chunk k, and j: the
        nearest checkpoint at or before event i (an inner one in a big chunk)."""
        j = i - i % INNER_EVENTS
        if j == 0:
            return self.checkpoint(k), 0
        self.ensure(k + 1)
        return ThreadState.loads(self._cached(k, j)[0]), j

    def digest(self, k: int) -> Digest:
        """Changes made during chunk k by the frames live at its start."""
        if k == 0:
            return {}  # nothing is live before the thread's first event
        self.ensure(k + 1)
        return marshal.loads(self._pair(k)[1])

    def summary(self, k: int) -> ChunkSummary:
        self.ensure(k + 1)
        summary = self.summaries[k]
        assert summary is not None
        return summary

    def _pair(self, k: int) -> tuple[bytes, bytes]:
        if k == self.ready and self._pending is not None:
            return self._pending, marshal.dumps({}, 4)
        return self._cached(k, 0)

    def _cached(self, k: int, j: int) -> tuple[bytes, bytes]:
        """The (state, digest) pair of the checkpoint before event j of chunk k (its digest
        empty for an inner one), the last 64 kept decoded."""
        key = (k, j)
        pair = self._decoded.get(key)
        if pair is not None:
            self._decoded.move_to_end(key)
            return pair
        if self.from_store:
            blob = self._read_row(k, self._row_step(k, j))
        else:
            blob = self.blobs.get(self._refs[key])
        pair = marshal.loads(codec.decompress_blob(blob))
        self._decoded[key] = pair
        if len(self._decoded) > 64:
            self._decoded.popitem(last=False)
        return pair

    def _row_step(self, k: int, j: int) -> int:
        """The `step` of the stored row of the checkpoint before event j of chunk k: the step of
        the event before it."""
        return self.stream.lasts[k - 1] if j == 0 else self.stream.events(k)[j - 1][1]

    def _read_row(self, k: int, step: int) -> bytes:
        row = self.store.nearest_checkpoint(self.recording_id, self.stream.thread_id, step)
        if row is None or row[0] != step:
            raise LookupError(f"the engine index of thread {self.stream.thread_id} lacks chunk {k}")
        return row[1]

    # -- building ------------------------------------------------------------------------

    def ensure(self, k: int) -> None:
        """Make checkpoints up to k (and summaries below k) available.

        When what would be left to build is at most a quarter of what is asked, the rest is
        built too: only a complete index is saved in the store (`Engine._maybe_persist`), and
        the first look at a recording is mostly near its end (where it failed), so finishing
        there costs at most a quarter more and spares every later opening the rebuild.
        """
        n = len(self.stream)
        k = min(k, n)
        if n - k <= k // 4:
            k = n
        while self.ready < k:
            self._build_next()

    def build_all(self) -> None:
        self.ensure(len(self.stream))

    def _build_next(self) -> None:
        k = self.ready
        state = self._state
        assert state is not None
        summary, digest = self._build_chunk(k, state)
        self.summaries[k] = summary
        if k > 0:
            # Checkpoint k (the state at chunk k's start) is stored with chunk k's digest.
            assert self._pending is not None
            blob = marshal.dumps((self._pending, marshal.dumps(digest, 4)), 4)
            self._refs[k, 0] = self.blobs.put(codec.compress_blob(blob, _LEVEL))
        self.ready = k + 1
        self._pending = state.dumps() if self.ready < len(self.stream) else None
        if self.on_progress is not None:
            self.on_progress(self.ready, len(self.stream))

    def _build_chunk(self, k: int, state: ThreadState) -> tuple[ChunkSummary, Digest]:
        """`build_chunk` of chunk k, INNER_EVENTS at a time (a chunk of more events is one the
        recorder joined), keeping the state between parts as inner checkpoints; the parts'
        summaries and digests joined into the chunk's (a digest only for frames live at the
        chunk's start, as `build_chunk` keeps it)."""
        events = self.stream.events(k)
        live_at_start = set(state.frames)
        parts: list[ChunkSummary] = []
        digest: Digest = {}
        for start in range(0, len(events), INNER_EVENTS):
            if start:
                blob = marshal.dumps((state.dumps(), b""), 4)
                self._refs[k, start] = self.blobs.put(codec.compress_blob(blob, _LEVEL))
            part, part_digest = build_chunk(
                state, events[start : start + INNER_EVENTS], self.resolve
            )
            parts.append(part)
            for call_id, entries in part_digest.items():
                if call_id in live_at_start:
                    digest.setdefault(call_id, []).extend(entries)
        summary = ChunkSummary(
            *(frozenset().union(*fields) for fields in zip(*(p.pack() for p in parts), strict=True))
        )
        return summary, digest

    # -- persistence ---------------------------------------------------------------------

    def rows(self) -> Iterable[dict[str, Any]]:
        """Checkpoint rows for the store, summary row last (its presence means complete)."""
        thread_id = self.stream.thread_id
        for (k, j), ref in sorted(self._refs.items()):
            yield {"thread_id": thread_id, "step": self._row_step(k, j),
                   "data": self.blobs.get(ref)}  # fmt: skip
        summaries = [s.pack() for s in self.summaries if s is not None]
        data = marshal.dumps(
            (INDEX_VERSION, INNER_EVENTS, len(self.stream), self.stream.chunks[-1].id, summaries),
            4,
        )
        yield {"thread_id": thread_id, "step": SUMMARY_STEP, "data": codec.compress_blob(data)}

    def load(self) -> bool:
        """Use an index persisted in the store for exactly these chunks, if there is one."""
        row = self.store.nearest_checkpoint(self.recording_id, self.stream.thread_id, SUMMARY_STEP)
        if row is None or row[0] != SUMMARY_STEP:
            return False
        try:
            version, inner, n_chunks, last_chunk_id, summaries = marshal.loads(
                codec.decompress_blob(row[1])
            )
        except (ValueError, EOFError, TypeError, codec.StoreError):  # format 4 had 4 fields
            return False
        if (
            version != INDEX_VERSION
            or inner != INNER_EVENTS
            or n_chunks != len(self.stream)
            or last_chunk_id != self.stream.chunks[-1].id
        ):
            return False
        self.summaries = [ChunkSummary(*packed) for packed in summaries]
        self.ready = n_chunks
        self.from_store = True
        self._state = None
        return True


def build_chunk(  # noqa: PLR0915 - one hot loop, inlined on purpose
    state: ThreadState, events: list[tuple], resolve: Resolver
) -> tuple[ChunkSummary, Digest]:
    """Replay one chunk into `state` (in place); its summary and digest.

    The hot loop of the index build. Most events belong to the frame on top of the stack, so
    that case is inlined (the same effect as `ThreadState.apply`, which handles the rest).
    """
    frames = state.frames
    stack = state.stack
    live_at_start = set(frames)
    codes = {frame.code_id for frame in frames.values()}
    digest: Digest = {}
    called: set[int] = set()
    all_changes: list[tuple] = []
    all_deleted: list[tuple] = []
    pairs: set[int] = set()
    kinds = {event[0] for event in events}
    apply = state.apply
    leave_kinds = LEAVE_KINDS
    top = stack[-1] if stack else None
    top_frame = frames.get(top) if top is not None else None
    top_key = top_frame.code_id << LINE_BITS if top_frame is not None else 0
    add_pair = pairs.add
    for event in events:
        call_id = event[3]
        kind = event[0]
        if call_id == top and kind != CALL:
            assert top_frame is not None
            changes = event[6]
            deleted = event[7]
            if changes or deleted:
                if call_id in live_at_start:
                    digest.setdefault(call_id, []).append(
                        (event[1], top_frame.line, changes, deleted)
                    )
                if changes:
                    top_frame.locals.update(changes)
                    all_changes.append(changes)
                if deleted:
                    all_deleted.append(deleted)
                    values = top_frame.locals
                    for name in deleted:
                        values.pop(name, None)
            line = event[4]
            if line or kind != GAP:  # as ThreadState.apply: a gap's unknown line keeps the frame's
                top_frame.line = line
            add_pair(top_key | line)
            if kind in leave_kinds:
                stack.pop()
                if kind != YIELD:
                    del frames[call_id]
                top = stack[-1] if stack else None
                top_frame = frames.get(top) if top is not None else None
                top_key = top_frame.code_id << LINE_BITS if top_frame is not None else 0
            continue
        # Entries, and events of frames not on top (resynchronisation): the model decides.
        if kind == CALL:
            called.add(event[5][0])
        elif (event[6] or event[7]) and call_id in live_at_start and call_id in frames:
            digest.setdefault(call_id, []).append(
                (event[1], frames[call_id].line, event[6], event[7])
            )
        if event[6]:
            all_changes.append(event[6])
        if event[7]:
            all_deleted.append(event[7])
        frame = apply(event, resolve)
        codes.add(frame.code_id)
        add_pair((frame.code_id << LINE_BITS) | event[4])
        top = stack[-1] if stack else None
        top_frame = frames.get(top) if top is not None else None
        top_key = top_frame.code_id << LINE_BITS if top_frame is not None else 0
    names = {name for changes in all_changes for name, _ in changes}
    names.update(name for deleted in all_deleted for name in deleted)
    codes |= called
    codes.update(frame.code_id for frame in frames.values())
    summary = ChunkSummary(
        frozenset(pairs), frozenset(kinds), frozenset(called), frozenset(codes), frozenset(names)
    )
    return summary, digest


def save_indexes(
    store_path: str | os.PathLike[str], recording_id: int, indexes: Iterable[ThreadIndex]
) -> str | None:
    """Write complete thread indexes into the store's checkpoints table; the error, if any.

    The store is opened for writing only for this, in transactions of 256 rows, so recorders
    writing other recordings into the same file wait at most for one of them.
    """
    try:
        with Store.open(store_path, mode="w") as writer:
            for index in indexes:
                batch: list[dict[str, Any]] = []
                for row in index.rows():
                    batch.append(row)
                    if len(batch) >= 256:
                        writer.add_checkpoints(recording_id, batch)
                        batch = []
                if batch:
                    writer.add_checkpoints(recording_id, batch)
    except (StoreError, OSError) as error:
        return str(error)
    return None
