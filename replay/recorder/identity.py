"""Recording-wide object identities (`obj_id` in encoded values), without keeping objects alive.

`IdentityMap.key(obj)` gives each object a serial number (1, 2, 3, ...) so a reader can tell that
two names hold the same list (aliasing) and follow back references. Serials are never reused, so
**two live objects never share a serial**. `id()` alone cannot do this: CPython reuses a freed
object's address for the next one (trap 3), and keeping the objects to stop the reuse would change
when the program's objects die (trap 2). So:

- Weak-referenceable objects (instances of most classes, functions, modules, classes, code,
  generators, sets, frozensets, deques): the entry is a weak reference with a callback that
  removes the entry when the object dies. CPython runs that callback before it frees the memory,
  so a later object at the same address always gets a new serial. The callback keeps only the
  map's dict and the id. Such an object keeps its serial for life; there is one entry per live
  object seen (the program's own live objects bound these entries, not the length of the run).
- Objects that cannot be weakly referenced (list, dict, tuple, frames, and classes declared with
  `__slots__` but no `__weakref__`, such as slotted subclasses of those): nothing tells us when
  they die. The entry remembers the type (and, for tuples, which never change, their size and
  the ids of their first and last items), folded into one 64-bit check number, and a different
  check at the same address gets a new serial. The residual limitation: after such an object
  dies, the next object of the same type (and fingerprint) allocated at the same address while
  the entry is kept inherits its serial; for lists and dicts that is any later one at that
  address. The merge only ever joins a dead object's history with a newer one's.

Bound (the recorded process's memory must not grow with the length of the run): entries of the
second kind live in two generations. New ones go to the young generation; when `limit` of them
have been added, the young generation becomes the old one and the previous old one is dropped
(`_rotate`). Looking up an entry of the old generation moves it back to the young one. So at most
`2 * limit` such entries exist (about 120 bytes each), and an entry is forgotten only when its
object was not looked up while `limit` to `2 * limit` other such entries were made. Eviction rule,
and why it is safe: a forgotten object, if it is still alive and is encoded again, gets a *new*
serial (its history is split in two: before and after), never an existing one, since serials are
never reused; forgetting can only split one object's history, never merge two live objects. (It
also ends the residual merge above for that address.) The default limit, 32,768 (at most 8 MB of
entries), keeps an object on one serial for life as long as it is encoded again before some 32k
to 64k other lists, dicts or tuples are first seen; the C core's value cache reuses an unchanged
object's last encoding without asking the map, so a long-lived object that changes only rarely is
the one that can be split.

The map is shared by all traced threads. Lookups of known objects take no lock (one dict read under
the GIL); creating or promoting an entry takes a re-entrant lock (re-entrant because a garbage
collection during the insert can run a `__del__` that the recorder traces on this same thread).
The C core reads young entries in place and makes the commonest new ones itself (an object without
weak references at an address with no live entry, room in the young generation: `young_insert`;
an object that takes weak references at an address with no entry at all: `weak_insert`, a `_Ref`
with `_drop` as its callback), under the same lock, taken without waiting, through these same
attributes (replay/recorder/_encode.c): what it does must stay what `_insert` does in those
cases.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from array import array
from collections.abc import Callable
from typing import Any, Final

__all__ = ["DEFAULT_LIMIT", "IdentityMap"]

DEFAULT_LIMIT: Final = 1 << 15
"""Young-generation size of non-weakrefable entries: at most twice this many are kept."""

# An entry of a non-weakrefable object is one int: serial << _SHIFT | check (a 64-bit number).
_SHIFT: Final = 64
_MASK: Final = (1 << _SHIFT) - 1

# C-level read of a type's tp_weaklistoffset: non-zero when its instances accept weak references.
# Read through `type`'s own descriptor so a metaclass cannot intercept it.
_weakrefoffset: Callable[[type], int] = type.__dict__["__weakrefoffset__"].__get__


class _Ref(weakref.ref):
    """A weak reference that carries the object's id and serial (no per-object closure needed)."""

    __slots__ = ("oid", "serial")
    oid: int
    serial: int


def _check(obj: Any, t: type) -> int:
    """What must match for `obj` to be the object an entry was made for (or a later one).

    The type's id; for a tuple, which keeps its size and its items for life, also a fingerprint of
    them: a different size or first/last item at the same address proves a different tuple (item
    ids can be reused too, but all three matching by chance is much rarer than the address alone).
    Folded into 64 bits. Uses only C slots (`tuple.__len__`, ...): never runs user code.
    """
    if t is tuple:
        n = tuple.__len__(obj)
        if n:
            n ^= (id(tuple.__getitem__(obj, 0)) * 31) ^ (id(tuple.__getitem__(obj, n - 1)) << 1)
        return (id(t) ^ (n * 0x9E3779B97F4A7C15)) & _MASK
    return id(t)


class IdentityMap:
    """Gives every object a recording-wide serial, never shared by two live objects, stable while
    the object lives and is in use (see the module docstring for the bound). Holds no strong
    reference to any object it has seen."""

    __slots__ = (
        "__weakref__",
        "_drop",
        "_entries",
        "_limit",
        "_lock",
        "_next",
        "_old",
        "_young",
        "entry_changes",
        "rotations",
    )

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        # id(obj) -> _Ref (weak-referenceable objects) or serial << _SHIFT | check (young entries).
        entries: dict[int, _Ref | int] = {}
        self._entries = entries
        self._old: dict[int, int] = {}
        """The previous young generation: id(obj) -> serial << _SHIFT | check."""
        self._young: list[int] = []
        """Ids of the non-weakrefable entries put in `_entries` since the last rotation."""
        self._limit = limit
        self.rotations = array("Q", [0])
        """How many times the generations rotated, in a buffer the C core reads directly: an
        encoding remembered before a rotation may name entries that rotation started to forget,
        so the C core's fingerprints include this count (replay/recorder/_fingerprint.c)."""
        self.entry_changes = array("Q", [0, 0, 0])
        """Three counts the C core reads in place. [0]: how many times an entry of a
        non-weakrefable object was added or moved, or an entry was replaced (by a weak reference
        too); while it stands still, what the map holds for an address (an entry, or none) is
        still what it held. [1]: how many times an entry was replaced (a new object at an address
        that had one) or the generations rotated; while it stands still, an entry that was there
        is still there with the same serial, whatever was added at other addresses (the record
        memo, whose records name the serials of the items at the addresses it checks, needs
        that). [2]: as [1], less the replacements the C core makes itself (`young_insert`), which
        clear its memos of that one address instead: the memos of found entries and serials,
        each about its own address alone, need only that (a program that makes tuples as it runs
        replaces entries thousands of times, and each emptied those memos whole)."""
        self._next = itertools.count(1).__next__
        self._lock = threading.RLock()

        def _drop(ref: _Ref, _entries: dict[int, Any] = entries) -> None:
            # Runs when an object dies, on whatever thread freed it, possibly during interpreter
            # shutdown (module globals may already be None: use only the bound default). Must be
            # cheap and must not raise; never takes the lock (it can run inside a locked insert).
            try:
                oid = ref.oid
                if _entries.get(oid) is ref:
                    del _entries[oid]
            except Exception:  # a failing callback would print during interpreter shutdown
                pass

        self._drop = _drop

    @property
    def limit(self) -> int:
        """Young-generation size: at most `2 * limit` non-weakrefable entries are kept."""
        return self._limit

    def key(self, obj: Any) -> int:
        """The serial of `obj` (from 1). Never runs user code and never keeps `obj` alive."""
        # The young lookup is `_known` inlined: this runs for every container and object encoded.
        entry = self._entries.get(id(obj))
        if entry is not None:
            if type(entry) is _Ref:
                if entry() is obj:
                    return entry.serial
            else:
                t = type(obj)
                check = _check(obj, t) if t is tuple else id(t)
                if (entry & _MASK) == check:
                    return entry >> _SHIFT
        with self._lock:
            serial = self._known(obj)  # another thread may have inserted it meanwhile, or old
            if serial:
                return serial
            return self._insert(obj)

    def _known(self, obj: Any) -> int:
        oid = id(obj)
        entry = self._entries.get(oid)
        if entry is not None:
            if type(entry) is _Ref:
                # An entry present means the object it was made for is not freed yet (its
                # callback removes the entry first), so the same id is the same object; the call
                # double-checks.
                return entry.serial if entry() is obj else 0
            return entry >> _SHIFT if (entry & _MASK) == _check(obj, type(obj)) else 0
        entry = self._old.get(oid)
        if entry is None or (entry & _MASK) != _check(obj, type(obj)):
            return 0
        del self._old[oid]
        self._add_young(oid, entry)  # in use again: back to the young generation
        return entry >> _SHIFT

    def _insert(self, obj: Any) -> int:
        oid = id(obj)
        t = type(obj)
        serial = self._next()
        # A newer object holds this address: the old entry (if any) is of a dead object. Both
        # counts move: the entry there is replaced, and what the map holds for the address
        # changes even when the new entry is a weak reference (which `_add_young` does not count).
        if self._old.pop(oid, None) is not None or oid in self._entries:
            self.entry_changes[0] += 1
            self.entry_changes[1] += 1
            self.entry_changes[2] += 1
        if _weakrefoffset(t):
            try:
                ref = _Ref(obj, self._drop)
            except TypeError:
                pass
            else:
                ref.oid = oid
                ref.serial = serial
                self._entries[oid] = ref
                return serial
        self._add_young(oid, (serial << _SHIFT) | _check(obj, t))
        return serial

    def _add_young(self, oid: int, entry: int) -> None:
        if len(self._young) >= self._limit:
            self._rotate()
        self._entries[oid] = entry
        self._young.append(oid)
        self.entry_changes[0] += 1

    def _rotate(self) -> None:
        """The young generation becomes the old one; the previous old one is forgotten.

        Runs under the lock. A lock-free `key()` on another thread that misses an entry while it
        moves takes the lock and finds it in `_old` once this returns. The young list is swapped
        first, so an entry added re-entrantly meanwhile (a `__del__` traced during a collection)
        belongs to the next generation.
        """
        young, self._young = self._young, []
        self.rotations[0] += 1
        self.entry_changes[0] += 1
        self.entry_changes[1] += 1
        self.entry_changes[2] += 1
        entries = self._entries
        old: dict[int, int] = {}
        for oid in young:
            entry = entries.get(oid)
            if entry is not None and type(entry) is int:
                old[oid] = entry
                del entries[oid]
        self._old = old

    def __len__(self) -> int:
        """How many entries the map holds (for tests and diagnostics)."""
        return len(self._entries) + len(self._old)

    def __repr__(self) -> str:
        return f"<IdentityMap entries={len(self)} limit={self._limit}>"
