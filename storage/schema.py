"""The tables of a replay store, as SQLAlchemy Core metadata.

This module owns the layout of the database, nothing else: no queries, no connections. It is
written in portable SQLAlchemy Core (no SQLite-only SQL) because PostgreSQL will be a second
store later: blobs are `LargeBinary`, JSON is kept as `Text`, big numbers are `BigInteger`.

Everything is per recording: each child table is keyed by `recording_id`, so one store file
holds many recordings (several processes may write theirs into one file at once).

Most of a recording's bytes are written once and never updated, so they are kept as compressed
blobs rather than rows (a row costs SQLite 30-80 bytes with its index entries, a call in a block
about 2): the event chunks, and the calls and exceptions the recorder's writer hands over in
`call_blocks` and `exception_blocks` (see codec.py). Only what changes after it is written stays
in rows: recordings, threads, and the calls still running when their batch was written.

Schema 1 (replay before the blocks) kept every call and exception as a row. Its stores are still
read: their `calls` table has the columns of today's, and their `exceptions` table is described
by `legacy_metadata` below. Opened for writing, such a store gains the new tables and becomes a
schema-2 store (opening.py).

If you change the schema: bump SCHEMA_VERSION and update docs/schema.md.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

# If you change the schema: bump SCHEMA_VERSION and update docs/schema.md.
SCHEMA_VERSION: Final = 2
OLDEST_READABLE_VERSION: Final = 1
"""Stores of schema versions from this one to SCHEMA_VERSION are read."""

CALL_BLOCK_SPAN: Final = 16_384
"""No call block spans more call ids than this (last_call - first_call < CALL_BLOCK_SPAN): a
lookup by call id only looks at the blocks starting in the span below it."""
CALL_BLOCK_CALLS: Final = 1024
"""At most this many calls in a call block, so that looking one up decodes a tenth of a
millisecond's worth of columns (the writer may hand tens of thousands at once when it is behind)."""

# Written in meta.magic: tells a replay store from any other SQLite database.
MAGIC: Final = "replay-store"

metadata = MetaData()


def _recording_id(*, primary_key: bool = True) -> Column[int]:
    """The column every per-recording table starts with (part of its key where it has one)."""
    return Column(
        "recording_id",
        Integer,
        ForeignKey("recordings.id"),
        primary_key=primary_key,
        nullable=False,
        autoincrement=False,
        comment="The recording this row belongs to (recordings.id).",
    )


meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True, comment="Setting name."),
    Column("value", Text, nullable=False, comment="Setting value, as text."),
    comment="Facts about the store file: magic, schema_version, created_at.",
)

recordings = Table(
    "recordings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="Recording id."),
    Column("name", Text, comment="A label for the recording (optional)."),
    Column("command", Text, comment="The command line as the user typed it."),
    Column("argv", Text, comment="sys.argv of the traced program, as a JSON list."),
    Column("cwd", Text, comment="Working directory at start."),
    Column("python", String(64), comment="Python version string (platform.python_version())."),
    Column("implementation", String(32), comment="sys.implementation.name, e.g. cpython."),
    Column("pid", BigInteger, comment="Process id of the traced process."),
    Column("ppid", BigInteger, comment="Parent process id."),
    Column("host", Text, comment="Host name."),
    Column("started_at", Double, nullable=False, comment="Start time, seconds since the epoch."),
    Column("ended_at", Double, comment="End time, seconds since the epoch; NULL while running."),
    Column("exit_code", Integer, comment="Exit status of the process; NULL while running."),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="'running', 'ok', 'failed' or 'killed'.",
    ),
    Column("exception_type", Text, comment="Qualified type of the uncaught exception, if any."),
    Column("exception_message", Text, comment="Message of the uncaught exception, if any."),
    Column("exception_step", BigInteger, comment="Step at which the uncaught exception left."),
    Column("steps", BigInteger, nullable=False, comment="Events recorded so far."),
    Column("events_dropped", BigInteger, nullable=False, comment="Events lost (see GAP events)."),
    Column("tracer_faults", BigInteger, nullable=False, comment="Faults inside the tracer."),
    Column("fault_message", Text, comment="The first tracer fault, as a sentence."),
    Column("backend", String(32), comment="Tracing core: 'sysmon', 'settrace', ..."),
    Column("config", Text, comment="Recording options, as a JSON object."),
    Column("parent_id", Integer, comment="Recording of the parent process, if recorded too."),
    Column(
        "format_version",
        Integer,
        nullable=False,
        comment="Event format (replay.events.FORMAT_VERSION) of this recording's chunks.",
    ),
    comment="One row per traced process.",
    sqlite_autoincrement=True,  # ids of deleted recordings are never reused
)

threads = Table(
    "threads",
    metadata,
    _recording_id(),
    Column(
        "thread_id",
        Integer,
        primary_key=True,
        autoincrement=False,
        comment="Small id of the thread in this recording; 1 is the main thread.",
    ),
    Column("ident", BigInteger, comment="threading.get_ident() of the thread."),
    Column("name", Text, comment="Thread name (the last one seen)."),
    Column("first_step", BigInteger, comment="First step recorded on the thread."),
    Column("last_step", BigInteger, comment="Last step recorded on the thread so far."),
    comment="Threads seen in a recording.",
)

files = Table(
    "files",
    metadata,
    _recording_id(),
    Column(
        "file_id",
        Integer,
        primary_key=True,
        autoincrement=False,
        comment="Id of the source file in this recording.",
    ),
    Column("path", Text, nullable=False, comment="Path of the file (co_filename)."),
    Column("sha256", String(64), comment="Hex SHA-256 of the file's bytes when recorded."),
    Column("size", BigInteger, comment="Size of the file in bytes."),
    Column("source", LargeBinary, comment="The file's bytes, zstd-compressed (codec)."),
    comment="Source files of the recorded code, kept so a recording replays without them.",
)

functions = Table(
    "functions",
    metadata,
    _recording_id(),
    Column(
        "function_id",
        Integer,
        primary_key=True,
        autoincrement=False,
        comment="Id of the code object (the code_id of CALL events).",
    ),
    Column("file_id", Integer, comment="files.file_id of its source file."),
    Column("name", Text, nullable=False, comment="co_name."),
    Column("qualname", Text, comment="co_qualname."),
    Column("firstlineno", Integer, comment="co_firstlineno."),
    comment="Code objects (functions, methods, module bodies...) that ran.",
)

chunks = Table(
    "chunks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="Chunk id."),
    _recording_id(primary_key=False),
    Column("thread_id", Integer, nullable=False, comment="threads.thread_id of its events."),
    Column("seq", Integer, nullable=False, comment="Orders the thread's chunks (its first step)."),
    Column("first_step", BigInteger, nullable=False, comment="Step of its first event."),
    Column("last_step", BigInteger, nullable=False, comment="Step of its last event."),
    Column("n_events", Integer, nullable=False, comment="Number of events in the chunk."),
    Column("codec", Integer, nullable=False, comment="Chunk codec version (storage/codec.py)."),
    Column("data", LargeBinary, nullable=False, comment="Encoded events (codec.encode_events)."),
    comment="The event stream: each thread's events, cut into compressed chunks.",
)
Index("ix_chunks_thread_seq", chunks.c.recording_id, chunks.c.thread_id, chunks.c.seq, unique=True)
Index("ix_chunks_first_step", chunks.c.recording_id, chunks.c.first_step)
Index("ix_chunks_last_step", chunks.c.recording_id, chunks.c.last_step)

calls = Table(
    "calls",
    metadata,
    _recording_id(),
    Column(
        "call_id",
        BigInteger,
        primary_key=True,
        autoincrement=False,
        comment="Id of the frame activation (the call field of events).",
    ),
    Column("parent_id", BigInteger, comment="call_id of the caller; NULL for a root call."),
    Column("function_id", Integer, nullable=False, comment="functions.function_id."),
    Column("thread_id", Integer, nullable=False, comment="threads.thread_id."),
    Column("depth", Integer, nullable=False, comment="Nesting depth; roots are 0."),
    Column("first_step", BigInteger, nullable=False, comment="Step of its CALL event."),
    Column("last_step", BigInteger, comment="Step of its last event; NULL while running."),
    Column("exception", Boolean, nullable=False, comment="True if it was left by an exception."),
    Column("generator", Boolean, nullable=False, comment="True for generator/coroutine frames."),
    comment="Calls written before they ended (updated later); the others are in call_blocks.",
    sqlite_with_rowid=False,  # the primary key is the table: no second copy of every key
)
# No secondary index: the rows are few (calls alive when their batch was written), and every
# lookup is by primary key or a scan that is cheaper than an index on every row.

call_blocks = Table(
    "call_blocks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="Block id."),
    _recording_id(primary_key=False),
    Column("thread_id", Integer, nullable=False, comment="threads.thread_id of its calls."),
    Column("first_call", BigInteger, nullable=False, comment="Smallest call_id in the block."),
    Column("last_call", BigInteger, nullable=False, comment="Largest call_id in the block."),
    Column("first_step", BigInteger, nullable=False, comment="Smallest first_step of its calls."),
    Column("last_step", BigInteger, nullable=False, comment="Largest last_step of its calls."),
    Column("n_calls", Integer, nullable=False, comment="Number of calls in the block."),
    Column("data", LargeBinary, nullable=False, comment="The calls (codec.encode_calls)."),
    comment="Calls that started and ended in one batch, compressed together, never updated.",
)
Index(
    "ix_call_blocks_call",
    call_blocks.c.recording_id,
    call_blocks.c.first_call,
    call_blocks.c.last_call,
)
Index("ix_call_blocks_step", call_blocks.c.recording_id, call_blocks.c.first_step)

exception_blocks = Table(
    "exception_blocks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, comment="Block id."),
    _recording_id(primary_key=False),
    Column("first_step", BigInteger, nullable=False, comment="Step of its first exception."),
    Column("last_step", BigInteger, nullable=False, comment="Step of its last exception."),
    Column("n_exceptions", Integer, nullable=False, comment="Number of exception events."),
    Column("data", LargeBinary, nullable=False, comment="The rows (codec.encode_exceptions)."),
    comment="Exception events of one batch, compressed together.",
)
Index("ix_exception_blocks_step", exception_blocks.c.recording_id, exception_blocks.c.first_step)

checkpoints = Table(
    "checkpoints",
    metadata,
    _recording_id(),
    Column(
        "thread_id",
        Integer,
        primary_key=True,
        autoincrement=False,
        comment="threads.thread_id.",
    ),
    Column(
        "step",
        BigInteger,
        primary_key=True,
        autoincrement=False,
        comment="The snapshot holds the state just after this step.",
    ),
    Column("data", LargeBinary, nullable=False, comment="Snapshot, in the engine's format."),
    comment="Reserved for the engine: full-state snapshots every N steps.",
)
# The primary key (recording_id, thread_id, step) is the lookup index for nearest_checkpoint.

# -- schema 1 ------------------------------------------------------------------------------

legacy_metadata = MetaData()
"""Tables of schema-1 stores that schema 2 no longer creates; read when a store has them."""

legacy_exceptions = Table(
    "exceptions",
    legacy_metadata,
    Column("recording_id", Integer, nullable=False, comment="recordings.id."),
    Column("step", BigInteger, nullable=False, comment="Step of the event."),
    Column("thread_id", Integer, nullable=False, comment="threads.thread_id."),
    Column("call_id", BigInteger, nullable=False, comment="calls.call_id of the frame."),
    Column("kind", String(16), nullable=False, comment="'raise', 'handled', 'unwind', 'uncaught'."),
    Column("type", Text, nullable=False, comment="Qualified type name of the exception."),
    Column("message", Text, comment="Its message, made without running user code."),
    Column("line", Integer, comment="Line number in the frame's code."),
    comment="Schema 1: exception events, one row each (now in exception_blocks).",
)
