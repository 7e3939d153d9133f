"""Byte formats of the blobs the store keeps: event chunks, call and exception blocks, sources.

The store never looks inside events; this module is the one place that turns a list of event
tuples into bytes and back. The recorder's writer calls `encode_events`, readers call
`decode_events`. The store itself calls `encode_calls`/`encode_exceptions` to pack the index
rows that are written once and never updated (see store.py), and their `decode_*` to read them.

Every event chunk starts with a magic and a codec version byte, so a blob of a codec this
replay does not know (or that is not ours) is refused with a sentence instead of garbage::

    offset 0      4         5
           +------+---------+------------------------------------------------+
           | RPEV | version |  zstd frame (content size + content checksum)  |
           +------+---------+------------------------------------------------+

    events = [(kind, step, ts, call, line, payload, changes, deleted), ...]

Codec version 1 (written by schema-1 replays, still read): the frame holds
`marshal.dumps(events, 4)`.

Codec version 2 stores the events by *columns*. The frame decompresses to::

    +---------------------------+---------+--------+-------+
    | size(columns) size(values)| columns | values | noise |      sizes: 2 x uint32 LE
    +---------------------------+---------+--------+-------+

    columns = marshal.dumps((1, n, kinds, steps, ts, calls, lines), 4)
    values  = marshal.dumps((payloads, changes, deleted), 4)
    noise   = the low byte of every time difference, n - 1 bytes

- `kinds`: `bytes`, one byte per event.
- `steps`, `ts`, `calls`, `lines`: integer columns `(width, first, data)`: the first value, then
  the other n-1 as fixed-width little-endian integers (`width` 4 or 8 bytes), transformed per
  column: steps, ts and calls are stored as the difference from the previous event (a step is
  almost always the previous one plus 1, a time the previous one plus a few hundred ns, a call
  the previous one), lines as they are. Steps, ts and lines are also split into byte planes
  (every item's byte 0, then every byte 1...), so that each byte position of the numbers sits
  with its kind; the first plane of `ts` (the low bytes of the time differences, nearly random)
  is the `noise` part and `ts`'s data holds the others. A column with a value past 64 bits is
  `(0, first, marshal list)` (and no noise).
- `payloads`, `changes`, `deleted`: tuples of the events' fields as they are, in one marshal
  call, so a value object that several events share (the recorder hands the same venc object
  for an unchanged value) is written once and referred to by marshal's back-references.
- Each of the three parts ends a zstd block, so each gets its own entropy tables: the values'
  text, the columns' small numbers and the clock's noise do not share one Huffman table (3% of
  a chunk, measured).

A list that is not made of 8-field tuples with exact `int` kind (0-255), step, ts, call and
line is stored as `columns = marshal.dumps((0, events), 4)` and empty values and noise, so every
list of marshal-able tuples round-trips exactly.

Codec version 3 (written now) is version 2 plus one layout: `columns` starting with 2 instead of
1 says that each event's `changes` is stored *flat*, `(name, value, name, value, ...)` rather
than `((name, value), ...)`, and `decode_events` pairs them again. That is how the C cores keep
them in their event buffers (one tuple per event instead of one more per changed name: on
richards.py 1.9 million objects fewer for the traced program to allocate and for the writer to
free, holding the GIL; 7% of the recording's time), and the writer stores what the buffer
holds. A version-2 replay refuses a version-3 chunk by its version byte, with a sentence.

Why this layout (measured on the benchmark workloads, docs/schema.md): an event is a few bytes
of integers and the values it changed; v1 compressed the interleaved tuples to 12-19 bytes per
event, the columns bring it to 3-6 (60 to 24 on nbody, whose every line re-encodes lists of
floats). The time column was most of what was left on most workloads: about 10 bits of clock
noise per event, 1.4-1.6 bytes, that no lossless layout removes. replay's recorder now keeps
times in steps of 256 ns, which makes the noise plane zeros (richards: 0.96 bytes a step to
0.00); the layout still stores any times exactly.

- `marshal`'s format encodes plain nested tuples at C speed, which matters because encoding
  runs on the recorder's writer thread, next to the traced program; the Python-level work here
  is a few C calls per column (zip, map, array), about 0.3 us per event. The values part, the
  biggest, is written by `storage/_dumps.c` (marshal's format, without the GIL, the values of
  all the chunks of a write in one go: `encode_event_chunks`), and zstd releases the GIL while
  it compresses, so the traced program runs meanwhile.
- marshal trusts its input, so a zstd frame with a content checksum wraps it: a damaged blob is
  caught by zstd before marshal ever sees the bytes. Version 4 is read by every Python replay
  supports (3.11+), so a recording made with one Python opens with another.
- Not done, measured: a zstd dictionary trained on a recording's first chunks (chunks are tens
  of kilobytes to megabytes, so a dictionary primes little and its statistics fit worse: 1-5%
  bigger); an explicit per-chunk value table, interning equal values (or subtrees) in Python:
  0.06-0.46 bytes per event fewer than marshal's back-references to shared objects, none on
  nbody, for 0.4-2.7 us more per event on the writer thread, holding the GIL (richards would
  record 45% slower).

Call and exception blocks (`call_blocks.data`, `exception_blocks.data`) are bare zstd frames
(checksummed) of a marshal tuple `(1, n, column, ...)` of integer columns as above and plain
marshal tuples for the others; see `encode_calls` and `encode_exceptions`.

Sources (`files.source`) are a bare zstd frame, also checksummed, of the file's bytes.

zstd compressors and decompressors are not thread-safe, so each thread keeps its own.
"""

from __future__ import annotations

import marshal
import struct
import sys
import threading
from array import array
from collections.abc import Sequence
from itertools import accumulate, islice, repeat
from operator import lshift, or_, sub
from typing import Any, Final, NamedTuple

import zstandard
from replay.storage.errors import StoreError

try:  # the column loops in C (storage/_columns.c): same bytes, built by pip install if it can
    from replay.storage import _columns as _accel
except ImportError:  # no compiler at install time, or another Python implementation
    _accel = None
C_LOOPS: Final = _accel is not None
"""Whether the column loops run in C (`replay --version` says which)."""
C_CALL_BLOCKS: Final = getattr(_accel, "call_blocks", None) is not None
"""Whether call blocks are made from packed records (`CallRecords`) in C."""
_c_chunks = getattr(_accel, "chunks", None)
_C_PACKED: Final = getattr(_accel, "PACKED_EVENTS", 0) == 1
_c_compress = getattr(_accel, "compress", None)
LIBZSTD: Final[int | None] = _accel.libzstd() if _c_chunks is not None else None
"""The version of the libzstd the C writer compresses chunks with (one release of the GIL for a
whole write: storage/_zstd.c), or None: python-zstandard compresses them."""

MAGIC: Final = b"RPEV"
CODEC_VERSION: Final = 3
"""The chunk codec `encode_events` writes (`chunks.codec`)."""
_HEAD: Final = MAGIC + bytes([CODEC_VERSION])
"""What an event chunk's blob starts with, before its zstd frame."""
READ_VERSIONS: Final = (1, 2, 3)
"""Chunk codecs `decode_events` reads."""
_MARSHAL_VERSION: Final = 4
# Every zstd frame starts with these bytes (RFC 8878, 3.1.1).
ZSTD_FRAME_MAGIC: Final = b"\x28\xb5\x2f\xfd"

EVENTS_LEVEL: Final = 6
"""zstd level of event chunks while the writer keeps up: against level 3, chunks 10-40% smaller
(json_requests, richards, nbody); level 9 gains 3% more and is measurably slower."""
FAST_EVENTS_LEVEL: Final = 1
"""zstd level of event chunks while the writer is behind the program (the recorder's writer
picks it, see replay/recorder/writer.py): on richards, 0.22 s of compression for 3.2 million
events against level 6's 0.77 s, for chunks 18% bigger. Level 1 came out smaller than 2 and 3
there. Compression releases the GIL, but a program that produces events faster than the writer
stores them waits for it (the backlog bound), so its cost is the program's."""
BLOCK_LEVEL: Final = 9
"""zstd level of call and exception blocks (small, written once)."""
SOURCE_LEVEL: Final = 3
CHUNKS_PER_RELEASE: Final = 16
"""Chunks whose values `encode_event_chunks` writes in one release of the GIL: a write of the
recorder takes a few (at most the backlog bound, 8, plus a partial list per thread), and the
written values of this many chunks are what it holds at once (a few MB on nbody)."""

_PREFIX: Final = struct.Struct("<II")
"""A v2 chunk's payload starts with the sizes of its first two parts."""
_Values = tuple[list[Any], list[Any], list[Any]]
"""A v2 chunk's values before they are written: its payloads, changes and deleted names."""
_Parts = tuple[bytes, _Values, bytes]
"""A v2 chunk's columns (written), values (not yet) and noise."""
# Layout tags: the first item of a v2 chunk's (or a block's) marshal tuple.
_AS_LIST: Final = 0
_AS_COLUMNS: Final = 1
_AS_FLAT_COLUMNS: Final = 2
"""Columns whose changes are flat, names and values one after the other (codec version 3)."""

_EVENT_FIELDS: Final = 8
_TRANSPOSE_SLICE: Final = 256
CALL_FIELDS: Final = (
    "call_id",
    "parent_id",
    "function_id",
    "thread_id",
    "depth",
    "first_step",
    "last_step",
    "exception",
    "generator",
)
"""The fields of a call row, in the order of the tuples `encode_calls` takes."""
EXCEPTION_FIELDS: Final = ("step", "thread_id", "call_id", "kind", "type", "message", "line")
"""The fields of an exception row, in the order of the tuples `encode_exceptions` takes."""

# Fixed-width integer columns: a platform typecode for each stored width, little-endian.
_TYPECODES: Final = {
    width: next(code for code in "hilq" if array(code).itemsize == width) for width in (4, 8)
}
_SWAP: Final = sys.byteorder == "big"
IntColumn = tuple[int, int, bytes]

_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    """This thread's compressor for `level`, made once: building one allocates its context."""
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "compressors", None)
    if cache is None:
        cache = _local.compressors = {}
    compressor = cache.get(level)
    if compressor is None:
        compressor = cache[level] = zstandard.ZstdCompressor(
            level=level, write_checksum=True, write_content_size=True
        )
    return compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    """This thread's decompressor."""
    decompressor: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    return decompressor


# -- integer columns -------------------------------------------------------------------------


def _pack_ints(values: Sequence[int], *, delta: bool, planar: bool) -> IntColumn:
    """An integer column (see the module docstring); `values` are exact ints, at least one."""
    if _accel is not None and type(values) is list:
        packed: IntColumn | None = _accel.pack_ints(values, delta, planar)
        if packed is not None:  # None: a value or a difference past 64 bits
            return packed
    first = values[0]
    rest = list(map(sub, islice(values, 1, None), values)) if delta else values[1:]
    for width, code in _TYPECODES.items():
        try:
            items = array(code, rest)
        except OverflowError:
            continue
        if _SWAP:
            items.byteswap()
        data = items.tobytes()
        if planar:
            data = b"".join([data[i::width] for i in range(width)])
        return width, first, data
    return 0, first, marshal.dumps(rest, _MARSHAL_VERSION)


def _unpack_ints(column: IntColumn, n: int, *, delta: bool, planar: bool) -> Sequence[int]:
    """The n values of an integer column made by `_pack_ints` with the same flags."""
    width, first, data = column
    count = n - 1
    if width == 0:
        rest = marshal.loads(data)
    else:
        if (
            delta
            and planar
            and len(data) == width * count
            and data.count(1, 0, count) == count
            and data.count(0, count) == len(data) - count
        ):
            return range(first, first + n)  # every difference 1: the steps of one thread
        if planar:
            joined = bytearray(len(data))
            for i in range(width):
                joined[i::width] = data[i * count : (i + 1) * count]
            data = joined
        rest = array(_TYPECODES[width])
        rest.frombytes(data)
        if _SWAP:
            rest.byteswap()
    if len(rest) != count:
        raise ValueError(f"an integer column holds {len(rest) + 1} values, not {n}")
    if delta:
        return list(accumulate(rest, initial=first))
    return [first, *rest]


def _exact_ints(*columns: Sequence[Any]) -> bool:
    """True when every item is an `int` (not a bool or another subclass): they round-trip."""
    return all(set(map(type, column)) == {int} for column in columns)


# -- event chunks ----------------------------------------------------------------------------


def encode_events(events: Sequence[tuple], level: int = EVENTS_LEVEL) -> bytes:
    """Encode a list of event tuples into one chunk blob (codec version 3).

    `events` may also be a sequence of event tuples that gives its columns (`columns()`: see
    `_event_parts_packed`), which saves reading the tuples; the blob decodes to the same events
    in the same layout (marshal's reference flags may differ: they follow reference counts).

    Raises ValueError if an event holds something marshal cannot write (a recorder bug).
    """
    return encode_event_chunks([events], level)[0]


def encode_event_chunks(
    batches: Sequence[Sequence[tuple]], level: int = EVENTS_LEVEL
) -> list[bytes]:
    """`encode_events` of each batch: the chunk blobs, in order.

    One call for all the chunks of a write, because of the GIL: the values of every chunk are
    written by one call of the C writer (`_columns.dumps`, storage/_dumps.c), which lets go of
    the GIL once for all of them, so that the traced program runs meanwhile. Letting go costs
    the writer the wait to get the GIL back (up to the interpreter's switch interval, 5 ms),
    which once per chunk kept the writer behind the program it was meant to overlap with.
    The events must not change while they are encoded (the recorder's writer owns the events
    it hands here; the values in them are immutable).
    """
    blobs: list[bytes] = []
    for start in range(0, len(batches), CHUNKS_PER_RELEASE):
        group = batches[start : start + CHUNKS_PER_RELEASE]
        # Values and compression in one release of the GIL, where libzstd is there to call
        # without it (storage/_zstd.c); else the values in one release, then python-zstandard.
        made = None
        if LIBZSTD is not None:
            made = _c_chunks([_job_parts(events) for events in group], level, _HEAD)
        if made is None:
            parts = [_chunk_parts(events) for events in group]
            values = _dump_values([part[1] for part in parts])
            made = [
                _compress_chunk(columns, data, noise, level)
                for (columns, _, noise), data in zip(parts, values, strict=True)
            ]
        blobs.extend(made)
    return blobs


def _job_parts(events: Sequence[tuple]) -> object:
    """What the C chunk writer takes for a chunk: its events as packed records where they give
    them (the C recorder's event buffer: `packed()`, storage/_packedevents.h), whose columns it
    then makes without the GIL too; else `_chunk_parts`."""
    packed = getattr(events, "packed", None) if _C_PACKED and _accel is not None else None
    capsule = packed() if packed is not None else None
    return capsule if capsule is not None else _chunk_parts(events)


def _chunk_parts(events: Sequence[tuple]) -> _Parts | tuple[bytes, bytes, bytes]:
    """A chunk's three parts, its values not yet written: the column layout's, or a marshal
    layout's (events of another shape)."""
    found = _event_parts(events)
    if found is None:
        found = (marshal.dumps((_AS_LIST, list(events)), _MARSHAL_VERSION), b"", b"")
    return found


class EventChunks:
    """The chunks of a write, encoded where they are stored.

    The recorder's writer gives its events this way (as `PendingChunk`s of the chunk rows), so
    that a store that can make the chunks in the same release of the GIL as its statements does
    (storage/_sqlite.c: each release costs the writer a wait to get the GIL back); any other
    store asks for `blobs`, `encode_event_chunks` of the events. `sizes` are the blobs' sizes
    once made, either way. The events must not change meanwhile (as for encode_event_chunks).
    """

    def __init__(self, batches: Sequence[Sequence[tuple]], level: int = EVENTS_LEVEL) -> None:
        self.batches = batches
        self.level = level
        self.head = _HEAD
        self.sizes: list[int] | None = None
        self._blobs: list[bytes] | None = None

    def chunk(self, index: int) -> PendingChunk:
        return PendingChunk(self, index)

    def parts(self) -> list[object] | None:
        """Each chunk's parts (`_job_parts`), for `_columns.sqlite_run` to make the blobs of;
        None where the C writer or libzstd is missing."""
        if LIBZSTD is None:
            return None
        return [_job_parts(events) for events in self.batches]

    def blobs(self) -> list[bytes]:
        if self._blobs is None:
            self._blobs = encode_event_chunks(self.batches, self.level)
            self.sizes = list(map(len, self._blobs))
        return self._blobs


class PendingChunk(NamedTuple):
    """A chunk row's `data` still to be made: chunk `index` of `chunks`."""

    chunks: EventChunks
    index: int


def _dump_values(values: list[_Values | bytes]) -> list[bytes]:
    """`marshal.dumps(v, 4)` of each chunk's values (bytes stay as they are), by the C writer
    where it can (it declines values it does not write, which marshal then writes)."""
    todo = [i for i, value in enumerate(values) if type(value) is not bytes]
    if _accel is not None and todo:
        written = _accel.dumps([values[i] for i in todo])
    else:
        written = [None] * len(todo)
    dumped = list(values)
    for i, data in zip(todo, written, strict=True):
        dumped[i] = marshal.dumps(values[i], _MARSHAL_VERSION) if data is None else data
    return dumped


def _compress_chunk(columns: bytes, values: bytes, noise: bytes, level: int) -> bytes:
    """A chunk blob of its three parts: magic, codec version, one zstd frame (`_columns.chunks`
    makes the same, in C)."""
    # Each part ends a zstd block, so that each gets its own entropy tables (see above).
    size = _PREFIX.size + len(columns) + len(values) + len(noise)
    compressor = _compressor(level).compressobj(size=size)
    frame = [compressor.compress(_PREFIX.pack(len(columns), len(values)) + columns)]
    for part in (values, noise):
        frame.append(compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))
        frame.append(compressor.compress(part))
    frame.append(compressor.flush())
    return b"".join([_HEAD, *frame])


def _event_parts(events: Sequence[tuple]) -> _Parts | None:
    """The three parts of a column layout, the values not yet written (`_dump_values` writes
    those of a whole write at once), or None when `events` do not have its shape."""
    if not events:
        return None
    if type(events) is not list:
        # The packed columns need the C loops: without them, the tuples are read instead.
        columns = getattr(events, "columns", None) if _accel is not None else None
        parts = _event_parts_packed(columns()) if columns is not None else None
        if parts is not None:
            return parts
        events = list(events)
    if _accel is not None and type(events) is list:
        parts = _event_parts_plain(events)
        if parts is not None:
            return parts
    if set(map(type, events)) != {tuple}:
        return None
    try:
        kinds, steps, ts, calls, lines, payloads, changes, deleted = _transpose(events)
    except ValueError:  # not 8 fields each (checked by the strict zips, no pass of its own)
        return None
    if not _exact_ints(kinds, steps, ts, calls, lines):
        return None
    try:
        kind_bytes = bytes(kinds)
    except ValueError:  # a kind outside 0..255
        return None
    ints = (
        _pack_ints(steps, delta=True, planar=True),
        _pack_ints(ts, delta=True, planar=True),
        _pack_ints(calls, delta=True, planar=False),
        _pack_ints(lines, delta=False, planar=True),
    )
    return _join_parts(kind_bytes, ints, (payloads, changes, deleted))


def _event_parts_plain(events: list[tuple]) -> _Parts | None:
    """`_event_parts` by the C loops alone, for the usual events (exact 8-tuples of 64-bit
    ints); None for anything else, which `_event_parts` then decides in Python."""
    assert _accel is not None
    columns = _accel.transpose(events, _EVENT_FIELDS)
    if columns is None:
        return None
    kinds, steps, ts, calls, lines, payloads, changes, deleted = columns
    kind_bytes = _accel.kind_bytes(kinds)
    ints = (
        _accel.pack_ints(steps, True, True),
        _accel.pack_ints(ts, True, True),
        _accel.pack_ints(calls, True, False),
        _accel.pack_ints(lines, False, True),
    )
    if kind_bytes is None or None in ints:
        return None
    return _join_parts(kind_bytes, ints, (payloads, changes, deleted))


def _event_parts_packed(columns: tuple | None) -> _Parts | None:
    """`_event_parts` of an event sequence that gives its columns (`columns()`, as the C
    recorder's event buffer does: kinds as bytes, steps, times, calls and lines as bytes of
    native int64s, the rest as lists, each event's changes flat); None to take the events one
    by one instead."""
    if columns is None or _accel is None:
        return None
    kinds, steps, ts, calls, lines, payloads, changes, deleted = columns
    ints = (
        _accel.pack_int64(steps, True, True),
        _accel.pack_int64(ts, True, True),
        _accel.pack_int64(calls, True, False),
        _accel.pack_int64(lines, False, True),
    )
    if None in ints:
        return None
    return _join_parts(kinds, ints, (payloads, changes, deleted), _AS_FLAT_COLUMNS)


def _join_parts(
    kinds: bytes,
    ints: Sequence[IntColumn],
    values: _Values,
    layout: int = _AS_COLUMNS,
) -> _Parts:
    """The columns, values (not yet written) and noise parts from the kinds and the packed
    steps, times, calls and lines; `layout` says how the changes are (paired or flat)."""
    steps, ts, calls, lines = ints
    width, first, data = ts
    n = len(kinds)
    low = data[: n - 1] if width else b""
    columns = (layout, n, kinds, steps, (width, first, data[len(low) :]), calls, lines)
    return marshal.dumps(columns, _MARSHAL_VERSION), values, low


def _transpose(events: Sequence[tuple], width: int = _EVENT_FIELDS) -> list[list[Any]]:
    """The `width` fields of `events` as lists, at C speed; ValueError if a tuple has not
    `width` fields. (Also the rows of a call block, tuples of `len(CALL_FIELDS)`.)

    By slices: `zip(*events)` makes an iterator per event, all alive at once, which sets the
    traced program's garbage collector going (measured: three times the full collections while
    recording generators.py); a slice's few hundred stay under its threshold.
    """
    if _accel is not None and type(events) is list:
        transposed: list[list[Any]] | None = _accel.transpose(events, width)
        if transposed is not None:  # None: not all exact tuples of `width` (decided below)
            return transposed
    columns: list[list[Any]] = [[] for _ in range(width)]
    for start in range(0, len(events), _TRANSPOSE_SLICE):
        for column, part in zip(
            columns, zip(*events[start : start + _TRANSPOSE_SLICE], strict=True), strict=True
        ):
            column.extend(part)
    return columns


def decode_events(data: bytes) -> list[tuple]:
    """Decode a chunk blob made by `encode_events`; StoreError if it is not one we can read."""
    version = _check_header(data)
    payload = _unzstd(memoryview(data)[len(MAGIC) + 1 :], what="event chunk")
    try:
        events = marshal.loads(payload) if version == 1 else _events_from_payload(payload)
    except (
        ValueError,
        EOFError,
        TypeError,
        IndexError,
        KeyError,
        OverflowError,
        struct.error,
    ) as exc:
        raise StoreError(
            f"The event chunk is corrupted: its events cannot be read ({exc})."
        ) from exc
    if not isinstance(events, list):
        raise StoreError(
            f"The event chunk is corrupted: it holds a {type(events).__name__}, "
            "not a list of events."
        )
    return events


def _events_from_payload(payload: bytes) -> Any:
    """The events of a v2 chunk's decompressed payload (see the module docstring)."""
    columns_size, values_size = _PREFIX.unpack_from(payload)
    view = memoryview(payload)
    start = _PREFIX.size
    noise_start = start + columns_size + values_size
    if noise_start > len(payload):
        raise ValueError("its parts are longer than the chunk")
    body = marshal.loads(view[start : start + columns_size])
    if type(body) is not tuple or not body:
        raise ValueError(f"the chunk holds a {type(body).__name__}, not a layout")
    layout = body[0]
    if layout == _AS_LIST and len(body) == 2:
        return body[1]
    if layout not in (_AS_COLUMNS, _AS_FLAT_COLUMNS) or len(body) != 7:
        raise ValueError(f"unknown layout {layout!r}")
    _, n, kinds, steps, (width, first, high), calls, lines = body
    payloads, changes, deleted = marshal.loads(view[start + columns_size : noise_start])
    if not (len(kinds) == len(payloads) == len(changes) == len(deleted) == n):
        raise ValueError("its columns have different lengths")
    if layout == _AS_FLAT_COLUMNS:
        flat = changes
        changes = _accel.paired(flat) if _accel is not None else None
        if changes is None:
            changes = list(map(_paired, flat))
    ts = (width, first, bytes(view[noise_start:]) + high if width else high)
    events = list(
        zip(
            kinds,
            _unpack_ints(steps, n, delta=True, planar=True),
            _unpack_ints(ts, n, delta=True, planar=True),
            _unpack_ints(calls, n, delta=True, planar=False),
            _unpack_ints(lines, n, delta=False, planar=True),
            payloads,
            changes,
            deleted,
            strict=True,
        )
    )
    if _accel is not None:
        _accel.untrack(events)  # no cycle runs through decoded events (see _columns.c)
    return events


def _paired(flat: tuple | None) -> tuple | None:
    """An event's changes stored flat, (name, value, ...), as the event has them: pairs."""
    if flat is None:
        return None
    if type(flat) is not tuple:
        raise ValueError(f"an event's changes are a {type(flat).__name__}, not a tuple")
    values = iter(flat)
    return tuple(zip(values, values, strict=True))


def _check_header(data: bytes) -> int:
    """The codec version of an event chunk; refuse blobs that are not chunks we can read."""
    if len(data) < len(MAGIC) + 1 or data[: len(MAGIC)] != MAGIC:
        raise StoreError(
            "The event chunk does not start with the replay chunk marker: it was written by "
            "a program incompatible with this version of replay, or it is damaged."
        )
    version = data[len(MAGIC)]
    if version not in READ_VERSIONS:
        *earlier, last = map(str, READ_VERSIONS)
        readable = f"{', '.join(earlier)} and {last}"
        raise StoreError(
            f"The event chunk uses codec version {version}, which is incompatible with this "
            f"version of replay (it reads codec versions {readable}); "
            "use the replay that made the recording."
        )
    return version


# -- call and exception blocks ---------------------------------------------------------------


def encode_calls(rows: Sequence[tuple], level: int = BLOCK_LEVEL) -> bytes:
    """A call block: rows are tuples in `CALL_FIELDS` order, ideally sorted by first_step.

    Columns: call ids as differences; the parent as `call_id - parent_id` (0: no parent); the
    last step as `last_step - first_step` (-1: none); exception and generator as bit 0 and 1 of
    one byte. Rows that do not fit (a bool where an int belongs, a parent equal to the call)
    are stored as a plain list.
    """
    return _encode_call_columns(_call_columns(rows), level)


def _encode_call_columns(columns: tuple, level: int = BLOCK_LEVEL) -> bytes:
    """A call block's blob from its columns (`_call_columns`, `_columns.call_blocks`)."""
    return _call_columns_blob(columns, level).made()


def _call_columns_blob(columns: tuple, level: int = BLOCK_LEVEL) -> PendingBlob:
    """A call block's blob from its columns, still to be compressed."""
    return PendingBlob(marshal.dumps(columns, _MARSHAL_VERSION), level)


CALL_RECORD: Final = struct.Struct("<7q2B6x")
"""One ended call packed for `Store.add_batch` (`CallRecords`): call_id, parent call id (0: no
parent), function_id, thread_id, depth, first_step and last_step as 64-bit ints, then exception
and generator as 0 or 1, little-endian, 64 bytes. The recorder's C index scan
(replay/recorder/_scan.c) writes records in this layout."""


class CallRecords:
    """Ended calls packed as `CALL_RECORD` records (any bytes-like object), which
    `Store.add_batch` takes as its `ended_calls`: a writer that hands a few hundred thousand
    calls a second makes no tuple per call, and the store makes the call blocks from the records
    in one C pass (`_columns.call_blocks`) instead of checking, sorting and packing tuples."""

    __slots__ = ("data",)

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        if len(data) % CALL_RECORD.size:
            raise ValueError(f"CallRecords needs whole {CALL_RECORD.size}-byte records")
        self.data = data

    def __len__(self) -> int:
        return len(self.data) // CALL_RECORD.size

    def rows(self) -> list[tuple]:
        """The records as ended-call tuples in `CALL_FIELDS` order."""
        return [
            (call, parent or None, function, thread, depth, first, last, bool(exc), bool(gen))
            for call, parent, function, thread, depth, first, last, exc, gen in (
                CALL_RECORD.iter_unpack(self.data)
            )
        ]


class PendingBlob(NamedTuple):
    """A block's blob still to be compressed: one zstd frame of `raw` at `level`. The store
    compresses it in the same release of the GIL as the write's chunks where it writes through
    SQLite's C API (storage/_sqlite.c), else just before its statements (`made`)."""

    raw: bytes
    level: int

    def made(self) -> bytes:
        return _compress_small(self.raw, self.level)


def call_blocks_of_records(
    records: CallRecords, block_calls: int, block_span: int, *, pending: bool = False
) -> list[tuple[int, int, int, int, int, int, bytes | PendingBlob]] | None:
    """The call blocks of packed ended calls, as `batch.call_blocks_of` cuts them: (thread_id,
    first_call, last_call, first_step, last_step, n_calls, data) in the order it gives them; or
    None where the C loop is not built (the caller then cuts `records.rows()`). `pending`: each
    block's data is a `PendingBlob`, compressed later (the recorder's writer: richards' call
    blocks took it 0.12 s holding the GIL at level 9, which the program waited out)."""
    parts = _accel.call_blocks(records.data, block_calls, block_span) if C_CALL_BLOCKS else None
    if parts is None:
        return None
    blocks = []
    for part in parts:
        blob = _call_columns_blob(part[6] if type(part[6]) is tuple else _call_columns(part[6]))
        blocks.append((*part[:6], blob if pending else blob.made()))
    return blocks


def _call_columns(rows: Sequence[tuple]) -> tuple:
    if _accel is not None and type(rows) is list:
        # The usual rows in one C pass (`_columns.call_columns`: the same columns), else below.
        columns: tuple | None = _accel.call_columns(rows)
        if columns is not None:
            return columns
    plain = (_AS_LIST, list(rows))
    if not rows or set(map(len, rows)) != {len(CALL_FIELDS)}:
        return plain
    call_ids, parents, functions, threads, depths, firsts, lasts, exceptions, generators = (
        _transpose(rows, len(CALL_FIELDS))
    )
    if not _exact_ints(call_ids, functions, threads, depths, firsts):
        return plain
    flag_types = set(map(type, exceptions)) | set(map(type, generators))
    if not flag_types <= {bool} or not set(map(type, parents)) <= {int, type(None)}:
        return plain
    if not set(map(type, lasts)) <= {int, type(None)}:
        return plain
    # Built at C speed when no parent or last step is None (most blocks: the store writes the
    # calls that ended, and roots are few); the checks count instead of comparing pairs.
    roots = parents.count(None)
    if roots:
        parent_gaps = [0 if p is None else c - p for c, p in zip(call_ids, parents, strict=True)]
    else:
        parent_gaps = list(map(sub, call_ids, parents))
    if parent_gaps.count(0) != roots:  # a parent equal to its call (0 stands for no parent)
        return plain
    if None in lasts:
        spans = [-1 if last is None else last - f for f, last in zip(firsts, lasts, strict=True)]
        if any(last is not None and last < f for f, last in zip(firsts, lasts, strict=True)):
            return plain
    else:
        spans = list(map(sub, lasts, firsts))
        if min(spans) < 0:  # a last step before the first
            return plain
    flags = bytes(map(or_, exceptions, map(lshift, generators, repeat(1))))
    return (
        _AS_COLUMNS,
        len(rows),
        _pack_ints(call_ids, delta=True, planar=True),
        _pack_ints(parent_gaps, delta=False, planar=True),
        _pack_ints(functions, delta=False, planar=True),
        _pack_ints(threads, delta=False, planar=True),
        _pack_ints(depths, delta=False, planar=True),
        _pack_ints(firsts, delta=True, planar=True),
        _pack_ints(spans, delta=False, planar=True),
        flags,
    )


def decode_calls(blob: bytes) -> list[tuple]:
    """The rows of a call block made by `encode_calls`; StoreError if it is damaged."""
    return CallBlock(blob).rows()


class CallBlock:
    """A decoded call block, kept as columns: a lookup by call id builds one row, not all.

    (The engine looks calls up one at a time, each in whichever block holds it: decoding the
    columns of 1024 calls is a tenth of a millisecond, making their 1024 tuples twice that.)
    """

    __slots__ = ("_columns", "_rows", "call_ids")

    def __init__(self, blob: bytes) -> None:
        """Decode `blob`; StoreError if it is damaged."""
        body = _block_body(blob, "call block")
        self._rows: list[tuple] | None = None
        try:
            if body[0] == _AS_LIST:
                self._rows = list(body[1])
                self.call_ids: list[Any] = [row[0] if row else None for row in self._rows]
                self._columns: list[Sequence[Any]] = []
                return
            n = body[1]
            flags = body[9]
            self.call_ids = list(_unpack_ints(body[2], n, delta=True, planar=True))
            self._columns = [
                self.call_ids,
                _unpack_ints(body[3], n, delta=False, planar=True),  # call_id - parent_id
                *(_unpack_ints(col, n, delta=False, planar=True) for col in body[4:7]),
                _unpack_ints(body[7], n, delta=True, planar=True),  # first_step
                _unpack_ints(body[8], n, delta=False, planar=True),  # last_step - first_step
                flags,
            ]
            if len(flags) != n or len(body) != 10:
                raise ValueError("its columns have different lengths")
        except (ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
            raise StoreError(
                f"The call block is corrupted: its rows cannot be read ({exc})."
            ) from exc

    def __len__(self) -> int:
        return len(self.call_ids)

    def find(self, call_id: int) -> tuple | None:
        """The row of `call_id`, or None if the block does not hold it."""
        try:
            i = self.call_ids.index(call_id)
        except ValueError:
            return None
        if self._rows is not None:
            return self._rows[i]
        call, gap, function, thread, depth, first, span, flags = (c[i] for c in self._columns)
        return (
            call,
            None if gap == 0 else call - gap,
            function,
            thread,
            depth,
            first,
            None if span < 0 else first + span,
            bool(flags & 1),
            bool(flags & 2),
        )

    def rows(self) -> list[tuple]:
        """Every row, in the block's order."""
        if self._rows is None:
            calls, gaps, functions, threads, depths, firsts, spans, flags = self._columns
            self._rows = list(
                zip(
                    calls,
                    [None if gap == 0 else c - gap for c, gap in zip(calls, gaps, strict=True)],
                    functions,
                    threads,
                    depths,
                    firsts,
                    [None if span < 0 else f + span for f, span in zip(firsts, spans, strict=True)],
                    [bool(f & 1) for f in flags],
                    [bool(f & 2) for f in flags],
                    strict=True,
                )
            )
        return self._rows


def encode_exceptions(rows: Sequence[tuple], level: int = BLOCK_LEVEL) -> bytes:
    """An exception block: rows are tuples in `EXCEPTION_FIELDS` order, sorted by step.

    Steps are stored as differences; the other fields as marshal tuples, one per field.
    """
    if not rows or set(map(len, rows)) != {len(EXCEPTION_FIELDS)}:
        body: tuple = (_AS_LIST, list(rows))
    else:
        steps, *others = zip(*rows, strict=True)
        if _exact_ints(steps):
            body = (_AS_COLUMNS, len(rows), _pack_ints(steps, delta=True, planar=True), *others)
        else:
            body = (_AS_LIST, list(rows))
    return _compress_small(marshal.dumps(body, _MARSHAL_VERSION), level)


def decode_exceptions(blob: bytes) -> list[tuple]:
    """The rows of an exception block made by `encode_exceptions`; StoreError if damaged."""
    body = _block_body(blob, "exception block")
    try:
        if body[0] == _AS_LIST:
            return list(body[1])
        _, n, step_col, *others = body
        if len(others) != len(EXCEPTION_FIELDS) - 1:
            raise ValueError(f"it has {len(others) + 1} columns")
        steps = _unpack_ints(step_col, n, delta=True, planar=True)
        return list(zip(steps, *others, strict=True))
    except (ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
        raise StoreError(
            f"The exception block is corrupted: its rows cannot be read ({exc})."
        ) from exc


def _block_body(blob: bytes, what: str) -> tuple:
    """The marshal tuple inside a block's zstd frame."""
    payload = _unzstd(blob, what=what)
    try:
        body = marshal.loads(payload)
    except (ValueError, EOFError, TypeError) as exc:
        raise StoreError(f"The {what} is corrupted: it cannot be read ({exc}).") from exc
    if type(body) is not tuple or len(body) < 2 or body[0] not in (_AS_LIST, _AS_COLUMNS):
        raise StoreError(f"The {what} is corrupted: it holds no layout this replay knows.")
    return body


# -- sources ---------------------------------------------------------------------------------


def compress_blob(data: bytes, level: int = SOURCE_LEVEL) -> bytes:
    """Compress a source file's bytes for `files.source`."""
    return _compress_small(data, level)


SMALL_BLOB: Final = 1 << 20
"""Blobs up to this size are compressed holding the GIL, where libzstd is there
(`_compress_small`)."""


def _compress_small(data: bytes, level: int) -> bytes:
    """One zstd frame of a block or a source: by libzstd holding the GIL when it is small (the
    writer's wait to get the GIL back after python-zstandard lets go of it is longer than the
    compression: storage/_zstd.c), else by python-zstandard. The same frame either way."""
    if LIBZSTD is not None and len(data) <= SMALL_BLOB:
        made: bytes | None = _c_compress(data, level)
        if made is not None:
            return made
    return _compressor(level).compress(data)


def decompress_blob(blob: bytes) -> bytes:
    """Undo `compress_blob`; StoreError if the blob is damaged."""
    return _unzstd(blob, what="compressed source")


def _unzstd(data: bytes | memoryview, *, what: str) -> bytes:
    """Decompress one zstd frame, verifying its checksum; damage becomes a StoreError."""
    try:
        return _decompressor().decompress(data)
    except zstandard.ZstdError as exc:
        raise StoreError(f"The {what} is corrupted: {exc}.") from exc
