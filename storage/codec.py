"""Byte formats of the blobs the store keeps: event chunks and source files.

The store never looks inside events; this module is the one place that turns a list of event
tuples into bytes and back. The recorder's writer calls `encode_events`, readers call
`decode_events`.

Chunk layout (`chunks.data`, codec version 1)::

    offset 0      4         5
           +------+---------+------------------------------------------------+
           | RPEV | version |  zstd frame (content size + content checksum)  |
           +------+---------+------------------------------------------------+
            magic   0x01      decompresses to marshal.dumps(events, 4)

    events = [(kind, step, ts, call, line, payload, changes, deleted), ...]

Why this layout:

- `marshal` encodes plain nested tuples of ints, strings, bytes, floats and None at C speed,
  which matters because encoding runs on the recorder's writer thread, next to the traced
  program. Marshal version 4 is read by every Python replay supports (3.11+), so a recording
  made with one Python opens with another.
- marshal trusts its input, so a zstd frame with a content checksum wraps it: a damaged blob is
  caught by zstd before marshal ever sees the bytes.
- The magic and version byte come first so a future codec (or a blob that is not ours) is
  refused with a sentence instead of garbage.

Sources (`files.source`) are a bare zstd frame, also checksummed, of the file's bytes.

zstd compressors and decompressors are not thread-safe, so each thread keeps its own.
"""

from __future__ import annotations

import marshal
import threading
from typing import Final

import zstandard
from replay.storage.errors import StoreError

MAGIC: Final = b"RPEV"
CODEC_VERSION: Final = 1
_HEADER: Final = MAGIC + bytes([CODEC_VERSION])
_MARSHAL_VERSION: Final = 4
# Every zstd frame starts with these bytes (RFC 8878, 3.1.1).
ZSTD_FRAME_MAGIC: Final = b"\x28\xb5\x2f\xfd"

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


def encode_events(events: list[tuple], level: int = 3) -> bytes:
    """Encode a list of event tuples into one chunk blob.

    Raises ValueError if an event holds something marshal cannot write (a recorder bug).
    """
    return _HEADER + _compressor(level).compress(marshal.dumps(events, _MARSHAL_VERSION))


def decode_events(data: bytes) -> list[tuple]:
    """Decode a chunk blob made by `encode_events`; StoreError if it is not one we can read."""
    _check_header(data)
    payload = _unzstd(memoryview(data)[len(_HEADER) :], what="event chunk")
    try:
        events = marshal.loads(payload)
    except (ValueError, EOFError, TypeError) as exc:
        raise StoreError(
            f"The event chunk is corrupted: its events cannot be read ({exc})."
        ) from exc
    if not isinstance(events, list):
        raise StoreError(
            f"The event chunk is corrupted: it holds a {type(events).__name__}, "
            "not a list of events."
        )
    return events


def _check_header(data: bytes) -> None:
    """Refuse blobs that are not event chunks of a codec version we know."""
    if len(data) < len(_HEADER) or data[: len(MAGIC)] != MAGIC:
        raise StoreError(
            "The event chunk does not start with the replay chunk marker: it was written by "
            "a program incompatible with this version of replay, or it is damaged."
        )
    version = data[len(MAGIC)]
    if version != CODEC_VERSION:
        raise StoreError(
            f"The event chunk uses codec version {version}, which is incompatible with this "
            f"version of replay (it reads codec version {CODEC_VERSION}); "
            "use the replay that made the recording."
        )


def compress_blob(data: bytes, level: int = 3) -> bytes:
    """Compress a source file's bytes for `files.source`."""
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
