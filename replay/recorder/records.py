"""Object records, the write side: each container and object's own level, children by reference.

The record layouts and what reads them are in `replay.object_records` (the read side). A record
is what `SnapshotEncoder` would read of one object if the object were met at the top of a value
with an unlimited node budget, except that each item, key or attribute which is itself a
container or an object is a reference `(V_OREF, obj_id)` to its own record instead of its tree.
So a record depends on the object alone, never on where it is met: the depth and budget cuts
are applied when a name's value is expanded (`object_records.expand`), which gives exactly the
encoder's tree.

The encoder's rule holds here too: nothing runs user code. Every read goes through the
encoder's own accessors (its type cache, `_instance_dict`, the base types' C slots), and leaves
(atoms past the limits, opaque values, atom subclasses) are encoded by the encoder itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import islice
from typing import Any

from replay.events import V_ENUM, V_REDACTED
from replay.object_records import (
    NO_ARGS,
    R_MAP,
    R_NAMEDTUPLE,
    R_OBJ,
    R_PAIR,
    R_SEQ,
    V_OREF,
    expand,
)
from replay.recorder.snapshot import (
    K_ENUM,
    K_MAP,
    K_NAMEDTUPLE,
    K_OBJ,
    K_ODICT,
    K_SEQ,
    SnapshotEncoder,
    _exc_args,
    _odict_pairs,
    _set_slots,
    _slot_members,
    _type_mro,
)

__all__ = ["RecordEncoder"]

NoneType = type(None)
_CONTAINER_KINDS = frozenset((K_SEQ, K_MAP, K_ODICT, K_NAMEDTUPLE, K_OBJ))


class RecordEncoder:
    """Makes the entries of names and the records of objects, through one `SnapshotEncoder`
    (its limits, redactor, identity map and type cache)."""

    def __init__(self, encoder: SnapshotEncoder) -> None:
        self.encoder = encoder
        limits = encoder.limits
        self._max_items = limits.max_items
        self._max_attrs = limits.max_attrs
        self._max_depth = limits.max_depth
        self._met: dict[int, Any] | None = None  # obj_id -> object, of each reference made

    def records_of(self, name: str | None, value: Any) -> tuple[Any, dict[int, Any]]:
        """The entry of `name` (None: a value without a name, such as a return value) and the
        records of the objects its expansion shows, which `expand` needs.

        Exactly those: the records are made as the expansion asks for them (`_RecordsOnDemand`),
        so the work is bounded by the capture limits as the encoder's is (`max_nodes` per name),
        however far the objects reach. Making the records of everything within the capture
        depth instead would take up to `max_items` ** `max_depth` records for one name.
        """
        met: dict[int, Any] = {}
        self._met = met
        try:
            entry = self.form(value) if name is None else self.entry_named(name, value)
            records = _RecordsOnDemand(self, met)
            expand(entry, records, self.encoder.limits)
        finally:
            self._met = None
        return entry, records.made

    def _ref(self, x: Any) -> Any:
        oid = self.encoder._key(x)
        if self._met is not None:
            self._met[oid] = x
        return (V_OREF, oid)

    # -- entries ---------------------------------------------------------------------------------

    def entry_named(self, name: str, value: Any) -> Any:
        """What a name holds: as `encode_named`, with a reference where a tree would start."""
        enc = self.encoder
        if type(name) is str and enc._is_secret_key(name):
            return (V_REDACTED, enc.type_name(value))
        return self.form(value)

    def form(self, x: Any) -> Any:
        """The form of a value met as an item, key, attribute or name."""
        t = type(x)
        if t is list or t is dict or t is tuple:
            return self._ref(x)
        enc = self.encoder
        if t is int or t is str or t is float or t is bool or t is NoneType:
            return enc.encode(x)  # itself, or cut
        try:
            info = enc._info(t)
            kind = info[0]
            if kind in _CONTAINER_KINDS:
                return self._ref(x)
            if kind == K_ENUM:
                member = self._enum_member(x, t, info)
                return member if member is not None else self._ref(x)
        except Exception as exc:
            return enc._fault(t, exc)
        return enc.encode(x)  # a leaf: no budget, no depth

    def item_form(self, x: Any) -> Any:
        """A sequence item's form: a secret-looking (name, value) pair is shown there alone."""
        t = type(x)
        enc = self.encoder
        if (t is tuple or t is list) and len(x) == 2 and enc._is_secret_key(x[0]):
            return (
                R_PAIR,
                enc._key(x),
                "tuple" if t is tuple else "list",
                self.form(x[0]),
                enc.type_name(x[1]),
            )
        return self.form(x)

    def _enum_member(self, x: Any, t: type, info: Any) -> Any:
        member = self.encoder.enum_member(x, t, info)
        return None if member is None else (V_ENUM, info[1], member[0], self.form(member[1]))

    # -- records ---------------------------------------------------------------------------------

    def record(self, obj: Any) -> Any:
        """The record of a container or object (one that `form` gives a reference for)."""
        t = type(obj)
        enc = self.encoder
        try:
            if t is list or t is tuple:
                items = obj[: self._max_items]
                return (R_SEQ, "list" if t is list else "tuple", len(obj), self._items(items))
            if t is dict:
                return (R_MAP, "dict", len(obj), self._pairs(_dict_pairs(obj, self._max_items)))
            info = enc._info(t)
            kind = info[0]
            if kind == K_SEQ:
                length, take = info[2]
                n = length(obj)
                items = take(obj, n if n < self._max_items else self._max_items)
                return (R_SEQ, info[1], n, self._items(items))
            if kind in (K_MAP, K_ODICT):
                n = dict.__len__(obj)
                taken = _odict_pairs if kind == K_ODICT else _dict_pairs
                return (R_MAP, info[1], n, self._pairs(taken(obj, self._max_items)))
            if kind == K_NAMEDTUPLE:
                return self._namedtuple(obj, info)
            if kind == K_ENUM:  # not a normal member: shown as an object, as `_enum` does
                info = (K_OBJ, info[1], (info[2], _slot_members(_type_mro(t)), False, None), None)
            return self._obj(obj, t, info)
        except Exception as exc:
            return enc._fault(t, exc)

    def _items(self, items: Any) -> list[Any]:
        return [self.item_form(x) for x in items]

    def _pairs(self, pairs: list[Any]) -> list[Any]:
        enc = self.encoder
        out = []
        for k, v in pairs:
            tk = type(k)
            if (tk is str or tk is bytes) and enc._is_secret_key(k):
                out.append((self.form(k), (V_REDACTED, enc.type_name(v))))
            else:
                out.append((self.form(k), self.form(v)))
        return out

    def _named(self, name: str, value: Any) -> Any:
        enc = self.encoder
        if enc._is_secret_key(name):
            return (V_REDACTED, enc.type_name(value))
        return self.form(value)

    def _namedtuple(self, obj: Any, info: Any) -> Any:
        fields = info[2]
        n = tuple.__len__(obj)
        k = min(n, len(fields), self._max_attrs)
        items = tuple.__getitem__(obj, slice(0, k))
        return (
            R_NAMEDTUPLE,
            info[1],
            n,
            len(fields),
            [(name, self._named(name, x)) for name, x in zip(fields, items, strict=False)],
        )

    def _obj(self, obj: Any, t: type, info: Any) -> Any:
        loc, slots, is_exc, _ = info[2]
        args = self.form(_exc_args(obj)) if is_exc else NO_ARGS
        d = self.encoder._instance_dict(obj, t, loc)
        dict_length = -1
        dict_pairs: list[Any] = []
        if d is not None:
            dict_length = dict.__len__(d)
            for name, val in islice(dict.items(d), self._max_attrs):
                if type(name) is not str:  # a str subclass key could hash in user code
                    dict_pairs.append((None, None))
                else:
                    dict_pairs.append((name, self._named(name, val)))
        set_slots = [
            (name, self._named(name, val))
            for name, val in islice(_set_slots(obj, t, slots), self._max_attrs + 1)
        ]
        return (R_OBJ, info[1], args, dict_length, dict_pairs, set_slots)


def _dict_pairs(obj: Any, k: int) -> list[Any]:
    return list(islice(dict.items(obj), k))


class _RecordsOnDemand(Mapping[int, Any]):
    """The records an expansion asks for, made when it asks (`RecordEncoder.records_of`)."""

    def __init__(self, encoder: RecordEncoder, met: dict[int, Any]) -> None:
        self.encoder = encoder
        self.met = met
        self.made: dict[int, Any] = {}

    def __getitem__(self, oid: int) -> Any:
        record = self.made.get(oid, _NOT_MADE)
        if record is _NOT_MADE:
            record = self.made[oid] = self.encoder.record(self.met[oid])
        return record

    def __iter__(self) -> Iterator[int]:
        return iter(self.made)

    def __len__(self) -> int:
        return len(self.made)


_NOT_MADE = object()
