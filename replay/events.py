"""The event and value vocabulary shared by the recorder (which writes it) and the readers.

The layouts are documented in docs/internals.md; this module holds the numbers. Readers
unpack the tuples that `replay.recorder` packs, so any change here bumps FORMAT_VERSION.
"""

from __future__ import annotations

FORMAT_VERSION = 1
FORMAT_RECORDS = 2
"""A recording whose events' `changes` hold object records under integer keys and names'
entries (replay/recorder/versions.py); readers expand them (object_records.expand_events)."""

# Event kinds: field 0 of every event tuple (kind, step, ts, call, line, payload, changes, deleted).
CALL = 0
LINE = 1
RETURN = 2
RAISE = 3
HANDLED = 4
UNWIND = 5
YIELD = 6
RESUME = 7
THROW = 8
EXTERNAL = 9
GAP = 10

KIND_NAMES: dict[int, str] = {
    CALL: "call",
    LINE: "line",
    RETURN: "return",
    RAISE: "exception",
    HANDLED: "handled",
    UNWIND: "unwind",
    YIELD: "yield",
    RESUME: "resume",
    THROW: "throw",
    EXTERNAL: "external",
    GAP: "gap",
}
KINDS_BY_NAME: dict[str, int] = {name: kind for kind, name in KIND_NAMES.items()}

# Kinds after which the frame is no longer running on its thread.
LEAVE_KINDS = frozenset({RETURN, UNWIND, YIELD})
# Kinds whose payload is an `exc` triple (type_name, message, venc).
EXCEPTION_KINDS = frozenset({RAISE, HANDLED, UNWIND, THROW})

# Field positions in an event tuple.
F_KIND, F_STEP, F_TS, F_CALL, F_LINE, F_PAYLOAD, F_CHANGES, F_DELETED = range(8)

# Value tags: field 0 of a tagged value tuple (see docs/internals.md, "Values").
V_CUT = 1
V_BIGINT = 2
V_ATOMSUB = 3
V_REDACTED = 4
V_SEQ = 5
V_MAP = 6
V_OBJ = 7
V_REF = 8
V_OPAQUE = 9
V_ENUM = 10
V_ERROR = 11

# Types whose exact instances are stored as themselves.
ATOM_TYPES: frozenset[type] = frozenset({type(None), bool, int, float, str, bytes})
