"""Object records, the read side: a value held as records of objects, expanded into its venc.

The value model of the performance issue ("objects with versions", docs/internals.md, "Objects
as records") holds each container and object once, as a *record* of its own level: its type,
its length, and its first items or attributes, where each item that is itself a container or an
object is a reference to that object's record, `(V_OREF, obj_id)`. A name's value is such a
reference (or an atom, or a leaf venc). A mutation of one object is then one new record, seen
through every reference to it, instead of a new tree for every name that reaches it.

Readers show trees (`replay export`, `show`, the engine): `expand` turns a reference and the
records of the objects it reaches into exactly the venc that `SnapshotEncoder` gives for the
live value at that moment, with the same capture limits applied from that name: the depth cut
(an object reached at depth d from the name is cut at `max_depth` - d, whatever depth it was
recorded from), the node budget (`max_nodes` per name, spent in the encoder's order, with its
reservations for objects' attributes given back as the encoder gives them back), back
references (an object on the path from the name becomes a `V_REF`), and redactions (decided in
the record: a secret-looking attribute, key or pair name hides its value wherever the record is
read; a secret-looking *name* hides its whole value and never refers to a record).

A record holds its object's own level to the limits that do not depend on where it is met
(`max_items`, `max_attrs`, `max_string`), so one record serves every name and depth. Record
layouts (each a tuple; the object's `obj_id` is the key it is filed under):

- `(R_SEQ, type_name, length, items)`: list, tuple, set, frozenset, deque and their subclasses;
  `items` the first `max_items` item forms.
- `(R_MAP, type_name, length, pairs)`: dict and its subclasses; `pairs` the first `max_items`
  `(key form, value form)` pairs (the value form redacted under a secret-looking key).
- `(R_OBJ, type_name, args, dict_length, dict_pairs, slots)`: other objects. `args` is the form
  of an exception's `args`, else `NO_ARGS`; `dict_length` is -1 without an instance dict, and
  `dict_pairs` the first `max_attrs` `(name, form)` pairs of it, `(None, None)` standing for a
  key that is not an exact str (skipped, and the object marked truncated, as the encoder does);
  `slots` the first `max_attrs` + 1 set `__slots__` members as `(name, form)`.
- `(R_NAMEDTUPLE, type_name, length, field_count, fields)`: `fields` the first
  `min(length, field_count, max_attrs)` `(name, form)` pairs.
- A `V_ERROR` venc: the encoder failed on that object (shown in its place).

An item form is an atom, a leaf venc (`V_CUT`, `V_BIGINT`, `V_ATOMSUB`, `V_OPAQUE`, `V_REDACTED`,
`V_ERROR`), an enum member `(V_ENUM, type_name, member, value form)`, a reference
`(V_OREF, obj_id)`, or, inside a sequence, a secret-looking pair `(R_PAIR, obj_id, type_name,
key form, value type name)` (a 2-item tuple or list whose first item names a secret: the
encoder shows its name and hides its value there, and only there).

Nothing here imports the recorder or needs the original objects; the write side is
`replay.recorder.records`.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import Any, NamedTuple, Protocol

from replay.events import V_ENUM, V_ERROR, V_MAP, V_OBJ, V_REDACTED, V_REF, V_SEQ

try:  # the same walk in C (replay/_expand.c), optional: it declines what it does not handle
    from replay import _expand as _c_walk
except ImportError:  # pragma: no cover - a build without a compiler
    _c_walk = None
_c_expand_events = None if _c_walk is None else _c_walk.expand_events

__all__ = [
    "NO_ARGS",
    "R_GROWN",
    "R_MAP",
    "R_NAMEDTUPLE",
    "R_OBJ",
    "R_PAIR",
    "R_SEQ",
    "V_OREF",
    "ExpansionLimits",
    "ExpansionMemo",
    "RecordLimits",
    "apply_record",
    "expand",
    "expand_events",
    "form_reference",
    "grown",
    "references",
]

V_OREF = 12  # (V_OREF, obj_id): the object filed under obj_id, as its record is at that moment

R_SEQ = 20
R_MAP = 21
R_OBJ = 22
R_NAMEDTUPLE = 23
R_PAIR = 24
R_GROWN = 25
"""`(R_GROWN, length, more)` in an event, under an obj_id: that object's record as the chunk last
holds it (an `R_SEQ` or `R_MAP`), with its length now `length` and the item or pair forms `more`
after its own. Most changes of a list or dict in place add at its end (an append, a new key),
and past `max_items` only the length changes: a few bytes instead of the whole record."""

NO_ARGS = (R_OBJ, "no args")  # the `args` field of a record of an object that is no exception


class RecordLimits(Protocol):
    """The capture limits the expansion applies: a recording's `CaptureLimits` serves as is."""

    @property
    def max_depth(self) -> int: ...
    @property
    def max_items(self) -> int: ...
    @property
    def max_attrs(self) -> int: ...
    @property
    def max_nodes(self) -> int: ...


class ExpansionLimits(NamedTuple):
    """A recording's capture limits as its metadata keeps them (`config["limits"]`)."""

    max_depth: int
    max_items: int
    max_attrs: int
    max_nodes: int

    @classmethod
    def of_config(cls, config: Mapping[str, Any]) -> ExpansionLimits:
        """The limits a recording of object records was made with; ValueError if it does not
        say (a recording without them cannot be expanded, and guessing would show wrong trees)."""
        limits = config.get("limits") if isinstance(config, Mapping) else None
        if not isinstance(limits, Mapping):
            raise ValueError("the recording holds object records but not its capture limits")
        values = [limits.get(name) for name in cls._fields]
        if not all(type(v) is int and v >= 0 for v in values):
            raise ValueError(f"the recording's capture limits are not whole numbers: {limits}")
        return cls(*values)


def apply_record(table: dict[int, Any], oid: int, value: Any) -> None:
    """File an event's record (or `R_GROWN` change of one) for `oid` in `table`.

    A growth of a record the table does not hold drops the object from the table instead: a
    value that needs it then shows as lost, never as a wrong record."""
    if type(value) is tuple and value and value[0] == R_GROWN:
        base = table.get(oid)
        if base is None or base[0] not in (R_SEQ, R_MAP):
            table.pop(oid, None)
            return
        value = (base[0], base[1], value[1], [*base[3], *value[2]])
    table[oid] = value


def grown(old: Any, new: Any) -> Any:
    """`new` as an `R_GROWN` change of `old` if that is what it is (same kind and type, `old`'s
    item or pair forms first), else `new` itself."""
    if (
        type(old) is tuple
        and old[0] == new[0]
        and new[0] in (R_SEQ, R_MAP)
        and old[1] == new[1]
        and len(new[3]) >= len(old[3])
        and new[3][: len(old[3])] == old[3]
    ):
        return (R_GROWN, new[2], new[3][len(old[3]) :])
    return new


def expand_events(events: list[tuple], limits: RecordLimits) -> list[tuple]:
    """One chunk's events with each name's entry expanded into its tree, records left out.

    A chunk of a recording of object records holds, in each event's `changes`, records under
    integer `obj_id`s and entries under names (replay/recorder/versions.py). A chunk is whole
    lists of one thread and each list holds the records its entries reach, so the records met so
    far in the chunk are all an expansion needs. The events come out as a recording of trees
    has them: `changes` the `(name, tree)` pairs, None when the event changed no name.

    With replay/_expand.c built, the loop and the walk run in C, which hands the names it
    declines (a lost record, a fault the walk replays, a shape it does not know) to the walk
    below, over the same table and memo: the trees are the same either way.
    """
    memo = ExpansionMemo()

    def expanded(entry: Any, table: Mapping[int, Any]) -> Any:
        try:
            return _Expansion(table, limits, memo).form(entry, 0)
        except KeyError:  # a record the chunk does not hold: say so, never guess
            return (V_ERROR, "?", "replay lost the records of this value")

    if _c_expand_events is not None and type(events) is list:
        bounds = (limits.max_depth, limits.max_items, limits.max_attrs, limits.max_nodes)
        return _c_expand_events(events, *bounds, memo, expanded)
    table: dict[int, Any] = {}
    out: list[tuple] = []
    append = out.append
    for event in events:
        changes = event[6]
        if not changes:
            append(event)
            continue
        named: list[tuple[str, Any]] = []
        for key, value in changes:
            if type(key) is int:
                apply_record(table, key, value)
                memo.forget(key)
            else:
                named.append((key, expanded(value, table)))
        append((*event[:6], tuple(named) if named else None, event[7]))
    return out


def references(record: Any) -> list[int]:
    """The `obj_id`s a record refers to, in its order (the records an expansion may need)."""
    out: list[int] = []
    kind = record[0]
    if kind == R_SEQ:
        forms = record[3]
    elif kind == R_MAP:
        forms = [f for pair in record[3] for f in pair]
    elif kind == R_OBJ:
        forms = [record[2]] + [f for _, f in record[4]] + [f for _, f in record[5]]
    elif kind == R_NAMEDTUPLE:
        forms = [f for _, f in record[4]]
    else:
        forms = []
    for form in forms:
        oid = form_reference(form)
        if oid is not None:
            out.append(oid)
    return out


def form_reference(form: Any) -> int | None:
    """The `obj_id` a form (a name's entry, or an item's) refers to, if any."""
    f = form
    while type(f) is tuple and f[0] == V_ENUM:
        f = f[3]  # an enum member's value
    if type(f) is tuple and f[0] == V_OREF:
        return f[1]
    return None


def expand(
    form: Any,
    records: Mapping[int, Any],
    limits: RecordLimits,
    memo: ExpansionMemo | None = None,
) -> Any:
    """The venc the encoder gives for the value `form` stands for, cut from where it is named.

    `form` is a name's entry (an atom, a leaf venc, an enum member or a reference) and
    `records` maps each `obj_id` it reaches to that object's record as of the moment shown. A
    reference to an object without a record raises KeyError: the caller handed too few. A
    `memo` reuses subtrees of earlier expansions over the same records (the caller tells it of
    every record it changes: `ExpansionMemo.forget`).
    """
    return _Expansion(records, limits, memo).form(form, 0)


class ExpansionMemo:
    """Trees of objects already expanded, reused while nothing they show can differ.

    Names that reach the same objects (nbody's `bodies` and `pairs`, an alias, the next change
    of a name whose other parts stayed) expand the same subtrees again and again; a subtree is
    kept under `(obj_id, depth)` with what it depends on, and used again when all of it holds:
    no record it reached has changed since (`forget` drops every tree that reached a changed
    object), no object it reached is on the path it is met from (that one would be a `V_REF`),
    and the node budget left where it is met is at least the least budget under which none of
    its cuts depended on the budget (`need`), so that it is spent alike (`spent`). A tree whose
    cut depended on the budget, or that met a fault, is not kept. The trees are shared, not
    copied: readers never change a venc.
    """

    __slots__ = ("dependents", "hits", "trees")

    def __init__(self) -> None:
        self.hits = 0
        """Subtrees used again (for tests and benchmarks)."""
        self.trees: dict[tuple[int, int], tuple[Any, int, int, frozenset[int]]] = {}
        """(obj_id, depth) -> (tree, spent, need, reach)."""
        self.dependents: dict[int, list[tuple[int, int]]] = {}
        """obj_id -> the keys of the trees that reached it."""

    def keep(
        self, key: tuple[int, int], tree: Any, spent: int, need: int, reached: set[int]
    ) -> None:
        reach = frozenset(reached)
        self.trees[key] = (tree, spent, need, reach)
        dependents = self.dependents
        for oid in reach:
            keys = dependents.get(oid)
            if keys is None:
                dependents[oid] = [key]
            else:
                keys.append(key)

    def forget(self, oid: int) -> None:
        """`oid` has a new record: drop every tree that reached it."""
        keys = self.dependents.pop(oid, None)
        if keys:
            trees = self.trees
            for key in keys:
                trees.pop(key, None)


_UNBOUNDED = 1 << 62


class _Expansion:
    """One top-level value's walk: the encoder's budget and path, replayed over records.

    Each method mirrors the `SnapshotEncoder` handler named in its docstring, step for step:
    the same checks in the same order, so that the budget is spent and given back alike. With
    a memo, each object's expansion also notes what it depends on (`track`: per object being
    expanded, the objects it reached and its least slack, how far the budget could fall before
    one of its cuts would change), and a subtree kept in the memo is used instead of expanded.
    """

    __slots__ = ("budget", "limits", "memo", "path", "records", "track")

    def __init__(
        self, records: Mapping[int, Any], limits: RecordLimits, memo: ExpansionMemo | None = None
    ) -> None:
        self.records = records
        self.limits = limits
        self.budget = limits.max_nodes
        self.path: list[int] = []
        self.memo = memo
        self.track: list[list[Any]] = []  # [reach set, least slack] per object being expanded

    def slack(self, least_budget: int) -> None:
        """A cut that holds as long as the budget here is at least `least_budget`."""
        track = self.track
        if track:
            slack = self.budget - least_budget
            top = track[-1]
            top[1] = min(top[1], slack)

    def form(self, f: Any, depth: int) -> Any:
        if type(f) is not tuple:
            return f  # an atom
        tag = f[0]
        if tag == V_OREF:
            return self.object(f[1], depth)
        if tag == V_ENUM:
            return (V_ENUM, f[1], f[2], self.form(f[3], depth + 1))
        if tag == R_PAIR:
            return self.secret_pair(f, depth)
        return f  # a leaf venc

    def object(self, oid: int, depth: int) -> Any:
        record = self.records[oid]
        path = self.path
        track = self.track
        if oid in path:
            if track:
                track[-1][0].add(oid)
            return (V_REF, oid, record[1])
        memo = self.memo
        if memo is None:
            return self._object(oid, record, depth)
        kept = memo.trees.get((oid, depth))
        budget = self.budget
        if kept is not None:
            tree, spent, need, reach = kept
            if budget >= need and reach.isdisjoint(path):
                memo.hits += 1
                self.budget = budget - spent
                if track:
                    top = track[-1]
                    top[0] |= reach
                    top[1] = min(top[1], budget - need)
                return tree
        mine: list[Any] = [{oid}, _UNBOUNDED]
        track.append(mine)
        try:
            tree = self._object(oid, record, depth)
        finally:
            track.pop()
        reach, slack = mine
        if track:
            top = track[-1]
            top[0] |= reach
            top[1] = min(top[1], slack)
        if slack >= 0 and reach.isdisjoint(path):
            memo.keep((oid, depth), tree, budget - self.budget, budget - slack, reach)
        return tree

    def _object(self, oid: int, record: Any, depth: int) -> Any:
        kind = record[0]
        if kind == V_ERROR:
            return record
        try:
            if kind in (R_SEQ, R_MAP):
                return self.container(oid, record, depth)
            if kind == R_OBJ:
                return self.obj(oid, record, depth)
            return self.namedtuple(oid, record, depth)
        except Exception as exc:  # the encoder's own fault, replayed (SnapshotEncoder._fault)
            self.slack(_UNBOUNDED)  # never kept: a fault is not worth a rule of its own
            args = exc.args
            text = args[0] if len(args) == 1 and type(args[0]) is str else ""
            what = type(exc).__qualname__
            return (V_ERROR, record[1], f"{what}: {text}" if text else what)

    def room(self, n: int) -> int:
        """`SnapshotEncoder._room`."""
        if not n:
            return 0
        k = n if n < self.limits.max_items else self.limits.max_items
        return k if k < self.budget else self.budget

    def container(self, oid: int, record: Any, depth: int) -> Any:
        """`_list`, `_tuple`, `_dict`, `_seq`, `_map`, `_odict`, with `_items` and `_pairs`."""
        kind, type_name, n, parts = record
        tag = V_SEQ if kind == R_SEQ else V_MAP
        k = self.room(n)
        if depth >= self.limits.max_depth:
            return (tag, oid, type_name, n, None)
        if n:
            max_items = self.limits.max_items
            self.slack(n if n < max_items else max_items)
            if k <= 0:
                return (tag, oid, type_name, n, None)
        self.budget -= k
        depth += 1
        self.path.append(oid)
        try:
            if kind == R_SEQ:
                items = [self.form(x, depth) for x in parts[:k]]
            else:
                items = [(self.form(kf, depth), self.form(vf, depth)) for kf, vf in parts[:k]]
        finally:
            self.path.pop()
        return (tag, oid, type_name, n, items)

    def secret_pair(self, f: Any, depth: int) -> Any:
        """`_secret_pair`: no path check, two nodes, even past the budget."""
        _, oid, type_name, key, value_type = f
        if depth >= self.limits.max_depth:
            return (V_SEQ, oid, type_name, 2, None)
        self.budget -= 2
        return (V_SEQ, oid, type_name, 2, [self.form(key, depth + 1), (V_REDACTED, value_type)])

    def namedtuple(self, oid: int, record: Any, depth: int) -> Any:
        """`_namedtuple`."""
        _, type_name, n, field_count, fields = record
        if depth >= self.limits.max_depth:
            return (V_OBJ, oid, type_name, None, True)
        self.slack(max(1, min(n, field_count, self.limits.max_attrs)))
        if self.budget <= 0:
            return (V_OBJ, oid, type_name, None, True)
        k = min(n, field_count, self.limits.max_attrs, self.budget)
        self.budget -= k
        self.path.append(oid)
        try:
            attrs = {name: self.form(vf, depth + 1) for name, vf in fields[:k]}
        finally:
            self.path.pop()
        return (V_OBJ, oid, type_name, attrs, k < n)

    def obj(self, oid: int, record: Any, depth: int) -> Any:
        """`_obj` with `_slot_attrs`: attributes reserved from the budget, the rest given back."""
        _, type_name, args, dict_length, dict_pairs, slots = record
        budget = self.budget
        if depth >= self.limits.max_depth:
            return (V_OBJ, oid, type_name, None, True)
        max_attrs = self.limits.max_attrs
        self.slack(max(1, max_attrs))
        if budget <= 0:
            return (V_OBJ, oid, type_name, None, True)
        room = max_attrs if max_attrs < budget else budget
        self.budget = budget - room
        depth += 1
        attrs: dict[str, Any] = {}
        truncated = False
        self.path.append(oid)
        try:
            if args != NO_ARGS:  # compared by value: records may have been through marshal
                attrs["args"] = self.form(args, depth)
                room -= 1
            if dict_length >= 0:
                n = dict_length
                # As the encoder takes them, an islice that refuses a negative room included.
                pairs = dict_pairs[:n] if n <= room else list(islice(dict_pairs, room))
                truncated = n > len(pairs)
                room -= len(pairs)
                for name, vf in pairs:
                    if name is None:
                        truncated = True
                        continue
                    attrs[name] = self.form(vf, depth)
            for name, vf in slots:
                if room <= 0:
                    truncated = True
                    break
                room -= 1
                if name in attrs:
                    continue
                attrs[name] = self.form(vf, depth)
        finally:
            self.path.pop()
        if room > 0:
            self.budget += room
        return (V_OBJ, oid, type_name, attrs, truncated)
