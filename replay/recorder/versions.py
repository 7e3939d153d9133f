"""Object versions on the traced thread: a name's change written as its entry and records.

Stage (b) of the version model (docs/internals.md, "The plan"), on the Python cores. Which names
changed is decided as the tree cores decide it (`state.diff_locals`: a name rebound, or its
value's tree different from the one last recorded), so the events name exactly the same
changes; what an event holds for them is what changes. A changed name holds its *entry* (an
atom, a leaf, or a reference `(V_OREF, obj_id)`), and before it, under the object's integer
`obj_id`, the *record* of each object the name reaches within the capture depth that the
thread's current list does not already hold in that version (`replay.recorder.records`). A
mutation of one body seen through three names is then one small record and three references,
not three trees.

Each list a thread hands to the writer is self-contained: the table of records the list holds
(`ThreadState.written`) is forgotten at every hand-off, so the first change that reaches an
object in a list writes its record there again, and a reader expands any chunk (whole lists of
one thread) from the chunk alone (`replay.object_records.expand_events`). The events a
hand-off keeps back for the next list (steps still open to redaction) take with them the
records they refer to (`carry_records`). And a list is cut only by its own thread, between two
events: the writer, which cuts a tree recording's lists at its ticks from its own thread, could
cut between an event's records and its append, so here it asks the thread instead
(`ThreadState.cut_requested`, taken at the thread's next event; a thread that has ended is cut
by the writer as before). What that costs, known and not fixed yet: a live thread's events
since its last hand-off reach the store at its next event or when the recording stops, not at
the writer's next tick, nor at the flushes before a crash (an uncaught exception's, a signal's):
a process killed outright (SIGKILL) loses them, up to one list per thread, where a recording of
trees loses half a second at most. The cure is for the writer to know when a thread is between
events (a flag the C cores can set at no cost), for stage (c).

Which names changed is still decided on trees (the C cores' fingerprints and encoder, the
Python cores' encoder), and the records of a changed name come on top: the C cores read them
off the tree they just made (`fp_records` in _encode.c, for lists, tuples, sets, dicts, plain
and slotted objects, exceptions and namedtuples), and ask `records_of` here for the rest. So
recording costs more than with trees (every changed name's whole reach is walked again for its
records); what removes that cost is stage (d), the reader deciding which names changed
(docs/internals.md, "The plan").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import Any

from replay.events import V_ERROR
from replay.object_records import R_GROWN, apply_record, form_reference, grown, references
from replay.recorder.records import RecordEncoder
from replay.recorder.snapshot import SnapshotEncoder
from replay.recorder.state import FrameState, RecordingState, diff_locals, read_locals

_MISSING = object()


class ObjectVersions:
    """A recording's object records (`RecordingState.use_versions`): the Python cores' diff,
    `records_for` for the C cores' diff, and `carry` for the hand-off."""

    def __init__(self, state: RecordingState, encoder: SnapshotEncoder) -> None:
        self.state = state
        self.records = RecordEncoder(encoder)

    def diff_locals(
        self,
        st: FrameState,
        frame: FrameType,
        encode_named: Callable[[str, Any], Any],
        touched: frozenset[str] | None = None,
    ) -> tuple[tuple | None, tuple | None]:
        """`state.diff_locals`, each changed name's tree replaced by its entry and records."""
        state = self.state
        ts = state.local.ts
        if ts.cut_requested:  # the writer's tick: between events, the list may be cut here
            state.hand_off(ts)
        changes, deleted = diff_locals(st, frame, encode_named, touched)
        if changes is None:
            return None, deleted
        values = read_locals(frame, st.code)
        out: list[tuple[Any, Any]] = []
        self._convert(ts.written, values or {}, changes, out.append)
        return tuple(out), deleted

    def carry(self, handed: list[tuple], kept: list[tuple]) -> None:
        """`carry_records`, for `RecordingState.hand_off`."""
        carry_records(handed, kept)

    def records_for(self, values: Mapping[str, Any], flat: tuple) -> tuple:
        """The C cores' way in (`_ctracer.c`, to_records) for what their C record encoder
        leaves: changes, flat (name, tree, name, tree, ...), with the names' values, made flat
        entries and records."""
        out: list[Any] = []
        pairs = zip(flat[::2], flat[1::2], strict=True)
        self._convert(self.state.local.ts.written, values, pairs, out.extend)
        return tuple(out)

    def _convert(
        self,
        written: dict[int, Any],
        values: Mapping[str, Any],
        changes: Iterable[tuple[str, Any]],
        put: Callable[[tuple[Any, Any]], Any],
    ) -> None:
        """Each changed name's records (those `written` does not hold in that version), then
        its entry, handed to `put` as (key, value) pairs in that order."""
        records_of = self.records.records_of
        for name, tree in changes:
            value = values.get(name, _MISSING)
            if value is _MISSING or _is_fault(tree):
                put((name, tree))  # the tree is its own entry (a leaf, as expand sees it)
                continue
            try:
                entry, records = records_of(name, value)
            except Exception as exc:  # never lose the event: the tree stands for the value
                self.state.fault(exc)
                put((name, tree))
                continue
            for oid, record in records.items():
                old = written.get(oid, _MISSING)
                if old is not record and old != record:  # `is`: the C encoder's kept records
                    written[oid] = record
                    put((oid, record if old is _MISSING else grown(old, record)))
            put((name, entry))


def _is_fault(tree: Any) -> bool:
    """Whether the encoder failed on the value itself (its tree is one `V_ERROR`): the records
    would fail alike, and the tree already says so."""
    return type(tree) is tuple and len(tree) == 3 and tree[0] == V_ERROR


def carry_records(handed: list[tuple], kept: list[tuple]) -> None:
    """Give the first of the `kept` events the records of `handed` that the kept ones refer to.

    A hand-off keeps the events after a step still open to redaction for the thread's next
    list; their entries may refer to records written earlier in the list handed off, which the
    next list's chunk will not hold. The latest version of each (as the handed list leaves it)
    goes in front of the first kept event's changes; a later record in `kept` still overrides it.
    """
    table: dict[int, Any] = {}
    for event in handed:
        changes = event[6]
        if changes:
            for key, value in changes:
                if type(key) is int:
                    apply_record(table, key, value)
    if not table:
        return
    carried: dict[int, Any] = {}
    todo: list[int] = []
    after = dict(table)  # the records as the kept events change them, to follow their references
    for event in kept:
        for key, value in event[6] or ():
            if type(key) is not int:
                oid = form_reference(value)
                if oid is not None:
                    todo.append(oid)
                continue
            if type(value) is tuple and value[0] == R_GROWN:
                todo.append(key)  # grown from a record handed: that record goes with it
            apply_record(after, key, value)
            if key in after:
                todo.extend(references(after[key]))
    while todo:
        oid = todo.pop()
        if oid in carried or oid not in table:
            continue
        carried[oid] = table[oid]
        todo.extend(references(carried[oid]))
    if carried:
        first = kept[0]
        kept[0] = (*first[:6], (*carried.items(), *(first[6] or ())), first[7])
