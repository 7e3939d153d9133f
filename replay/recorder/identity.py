"""Recording-wide object identities (`obj_id` in encoded values), without keeping objects alive.

`IdentityMap.key(obj)` gives each object a serial number (1, 2, 3, ...) that stays the same for as
long as the object lives, so a reader can tell that two names hold the same list (aliasing) and
follow back references. `id()` alone cannot do this: CPython reuses a freed object's address for
the next one (trap 3), and keeping the objects to stop the reuse would change when the program's
objects die (trap 2). So:

- Weak-referenceable objects (instances of most classes, functions, modules, classes, code,
  generators): the entry is a weak reference with a callback that removes the entry when the
  object dies. CPython runs that callback before it frees the memory, so a later object at the
  same address always gets a new serial. The callback keeps only the map's dict and the id.
- Objects that cannot be weakly referenced (list, dict, set, tuple, frozenset, deque, frames, and
  subclasses declared with `__slots__` but no `__weakref__`): nothing tells us when they die. The
  entry remembers the type (and, for tuples, which never change, their size and the ids of their
  first and last items; for frozensets their size), and a different type (or fingerprint) at the
  same address gets a new serial. The residual limitation: after such an object dies, the next
  object of the same type (and fingerprint) allocated at the same address inherits its serial;
  for lists, dicts and sets that is any later one at that address. Two *live* objects never share
  a serial; the merge can only join a dead object's history with a newer one's. Entries for such
  objects are never dropped, so the map grows with the number of distinct addresses those objects
  have occupied (bounded by address reuse; no strong references are held).

The map is shared by all traced threads. Lookups of known objects take no lock (one dict read under
the GIL); creating an entry takes a re-entrant lock (re-entrant because a garbage collection
during the insert can run a `__del__` that the recorder traces on this same thread).
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["IdentityMap"]

# C-level read of a type's tp_weaklistoffset: non-zero when its instances accept weak references.
# Read through `type`'s own descriptor so a metaclass cannot intercept it.
_weakrefoffset: Callable[[type], int] = type.__dict__["__weakrefoffset__"].__get__


class _Ref(weakref.ref):
    """A weak reference that carries the object's id and serial (no per-object closure needed)."""

    __slots__ = ("oid", "serial")
    oid: int
    serial: int


def _fingerprint(obj: Any, t: type) -> int:
    """For immutable containers, a number that cannot change while the object lives (-1: none).

    A tuple keeps its size and its items for life, so a different size or first/last item at the
    same address proves a different tuple. Item ids can be reused too, but all three matching by
    chance is much rarer than the address alone. Uses only C slots (`tuple.__len__`, ...).
    """
    if t is tuple:
        n = tuple.__len__(obj)
        if n == 0:
            return 0
        return n ^ (id(tuple.__getitem__(obj, 0)) * 31) ^ (id(tuple.__getitem__(obj, n - 1)) << 1)
    if t is frozenset:
        return frozenset.__len__(obj)
    return -1


class IdentityMap:
    """Gives every object a recording-wide serial: stable while it lives, never shared by two live
    objects. Holds no strong reference to any object it has seen."""

    __slots__ = ("__weakref__", "_drop", "_entries", "_lock", "_next")

    def __init__(self) -> None:
        # id(obj) -> _Ref (weak-referenceable objects) or (serial, id(type), fingerprint).
        entries: dict[int, _Ref | tuple[int, int, int]] = {}
        self._entries = entries
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

    def key(self, obj: Any) -> int:
        """The serial of `obj` (from 1). Never runs user code and never keeps `obj` alive."""
        # The lookup is `_known` inlined: this runs for every container and object encoded.
        entry = self._entries.get(id(obj))
        if entry is not None:
            if type(entry) is _Ref:
                if entry() is obj:
                    return entry.serial
            else:
                t = type(obj)
                if entry[1] == id(t) and (entry[2] < 0 or entry[2] == _fingerprint(obj, t)):
                    return entry[0]
        with self._lock:
            serial = self._known(obj)  # another thread may have inserted it meanwhile
            if serial:
                return serial
            return self._insert(obj)

    def _known(self, obj: Any) -> int:
        entry = self._entries.get(id(obj))
        if entry is None:
            return 0
        if type(entry) is _Ref:
            # An entry present means the object it was made for is not freed yet (its callback
            # removes the entry first), so the same id is the same object; the call double-checks.
            return entry.serial if entry() is obj else 0
        t = type(obj)
        if entry[1] == id(t) and entry[2] == _fingerprint(obj, t):
            return entry[0]
        return 0

    def _insert(self, obj: Any) -> int:
        oid = id(obj)
        t = type(obj)
        serial = self._next()
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
        self._entries[oid] = (serial, id(t), _fingerprint(obj, t))
        return serial

    def __len__(self) -> int:
        """How many entries the map holds (for tests and diagnostics)."""
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<IdentityMap entries={len(self._entries)}>"
