"""The value snapshot encoder: turns any Python value into a `venc` without running user code.

This module owns the write side of the "Values" section of docs/internals.md: the tracing cores
call `SnapshotEncoder.encode_named(name, value)` for every changed local, `encode(value)` for return
and yield values and `encode_exception(exc)` for exceptions, on the traced thread, at every event.

THE RULE: the encoder never runs user code. A `repr()`, `len()`, `iter()`, `==`, `hash()`,
`isinstance()` or attribute lookup on a user object can run a user `__repr__`, `__len__`,
`__eq__`, `__hash__`, `__instancecheck__`, `__getattr__`, property or lazy ORM loader, with side
effects (a database query, a consumed iterator, a lock) or failures that would change the program
being recorded. So everything here reads objects through C-level slots and descriptors of the
*base* types, fetched from `type.__dict__` and the MRO, never through attribute lookup:

- type facts: `type(v)` (the C `ob_type`), and `type.__dict__[...]` descriptors for a class's
  `__mro__`, `__dict__`, `__qualname__` and `__module__`, so a metaclass cannot intercept them;
- containers: `list.__len__(v)`, `list.__getitem__(v, slice)`, `dict.items(v)`, `set.__iter__(v)`,
  ... called on the base type, so an overriding subclass method is never reached; each copy of the
  items is made by one C call, so it is atomic with respect to other Python threads;
- objects: the instance `__dict__` through the real `__dict__` getset descriptor found in the MRO
  (or the C API `PyObject_GenericGetDict` when a class hides it behind a property) and `__slots__`
  through their member descriptors; class attributes, properties and `__getattr__` are never read,
  so lazy attributes (SQLAlchemy relationships, Django querysets) are never loaded;
- no hashing of user objects: state is keyed by `id()`; the type cache is keyed by `id(type)` and
  cleaned up by a weak reference callback when the class dies.

Known stdlib value types (datetime, Decimal, UUID, Fraction, pathlib, re, locks, sockets) get a
readable text computed from C-level data; every other C object gets `<module.Type object>`.

Values are bounded by `CaptureLimits` (depth, items per container, string length, attributes per
object, int digits, and a budget of expanded slots per top-level value). Any exception inside the
encoder is caught, counted in `faults`, and the value becomes `(V_ERROR, type_name, message)`:
`encode*` never raise (except `KeyboardInterrupt`/`SystemExit`, which belong to the program).
"""

from __future__ import annotations

import functools
import sys
import types
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any, NamedTuple

from replay.config import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ITEMS, DEFAULT_MAX_STRING
from replay.events import (
    V_ATOMSUB,
    V_BIGINT,
    V_CUT,
    V_ENUM,
    V_ERROR,
    V_MAP,
    V_OBJ,
    V_OPAQUE,
    V_REDACTED,
    V_REF,
    V_SEQ,
)
from replay.exceptions import ConfigError
from replay.recorder.identity import IdentityMap, _Ref
from replay.recorder.redaction import Redactor
from replay.values import short_repr

__all__ = ["CaptureLimits", "SnapshotEncoder"]

NoneType = type(None)


class _Limits(NamedTuple):
    """CaptureLimits' fields; the first three are `replay record`'s own defaults."""

    max_depth: int = DEFAULT_MAX_DEPTH
    max_items: int = DEFAULT_MAX_ITEMS
    max_string: int = DEFAULT_MAX_STRING
    max_attrs: int = 64
    max_int_digits: int = 1000
    max_nodes: int = 1024


class CaptureLimits(_Limits):
    """How much of a value the encoder keeps (record it with the trace: readers show what was cut).

    `max_nodes` bounds the work per top-level value: every item, pair or attribute that gets
    expanded costs one, and once the budget is spent deeper containers are left unexpanded (a
    64 x 64 list of lists would otherwise cost 4096 item encodings on every change).

    A NamedTuple checked as it is made, not a dataclass: `dataclasses` imports `inspect`, about
    10 ms of every recorded process's start.
    """

    __slots__ = ()

    def __new__(cls, *args: int, **kwargs: int) -> CaptureLimits:
        self = super().__new__(cls, *args, **kwargs)
        for field in ("max_depth", "max_items", "max_string", "max_attrs", "max_nodes"):
            value = getattr(self, field)
            if type(value) is not int or value < 0:
                raise ConfigError(
                    f"capture limit {field} must be a whole number >= 0, not {value!r}"
                )
        if type(self.max_int_digits) is not int or self.max_int_digits < 1:
            raise ConfigError(
                "capture limit max_int_digits must be a whole number >= 1, "
                f"not {self.max_int_digits!r}"
            )
        return self


# ---------------------------------------------------------------------------------------------
# C-level accessors. Each is a descriptor's __get__ taken from a builtin type's own dict, so it
# runs the C getter of that base type whatever the object's class or metaclass overrides.

_type_dict: Callable[[type], Any] = type.__dict__["__dict__"].__get__  # -> mappingproxy
_type_mro: Callable[[type], tuple[type, ...]] = type.__dict__["__mro__"].__get__
_type_qualname: Callable[[type], str] = type.__dict__["__qualname__"].__get__
_type_module: Callable[[type], Any] = type.__dict__["__module__"].__get__
_type_dictoffset: Callable[[type], int] = type.__dict__["__dictoffset__"].__get__
_GetSet = types.GetSetDescriptorType
_Member = types.MemberDescriptorType
_getset_get = _GetSet.__get__  # _getset_get(descriptor, obj, type)
_member_get = _Member.__get__
_module_dict = types.ModuleType.__dict__["__dict__"].__get__
_func_qualname = types.FunctionType.__dict__["__qualname__"].__get__
_func_module = types.FunctionType.__dict__["__module__"].__get__
_method_func = types.MethodType.__dict__["__func__"].__get__
_method_self = types.MethodType.__dict__["__self__"].__get__
_builtin_name = types.BuiltinFunctionType.__dict__["__name__"].__get__
_builtin_self = types.BuiltinFunctionType.__dict__["__self__"].__get__
_wrapper_name = types.MethodWrapperType.__dict__["__name__"].__get__
_wrapper_self = types.MethodWrapperType.__dict__["__self__"].__get__
_exc_args = BaseException.__dict__["args"].__get__
_BASE_EXC_STR = BaseException.__dict__["__str__"]
# BaseExceptionGroup's C __str__ reads only its message (a str, enforced) and the exception count.
_GROUP_STR = BaseExceptionGroup.__dict__["__str__"]
_code_qualname = types.CodeType.__dict__["co_qualname"].__get__
_code_filename = types.CodeType.__dict__["co_filename"].__get__
_code_firstlineno = types.CodeType.__dict__["co_firstlineno"].__get__
_frame_code = types.FrameType.__dict__["f_code"].__get__
_frame_lineno = types.FrameType.__dict__["f_lineno"].__get__
_memoryview_nbytes = memoryview.__dict__["nbytes"].__get__
_WrapperDescriptor = types.WrapperDescriptorType


@functools.cache
def _generic_get_dict() -> Callable[[Any, Any], Any] | None:
    """PyObject_GenericGetDict through ctypes, for classes that hide their real `__dict__`
    getset behind a class attribute; made when such a class is first met (importing ctypes took
    1.7 ms of every recorded start)."""
    try:
        import ctypes  # noqa: PLC0415 - see the docstring

        get_dict = ctypes.pythonapi.PyObject_GenericGetDict
        get_dict.restype = ctypes.py_object
        get_dict.argtypes = (ctypes.py_object, ctypes.c_void_p)
    except Exception:  # pragma: no cover - CPython always has ctypes.pythonapi
        return None
    return get_dict  # type: ignore[no-any-return]


_EnumType: type | None
try:
    import enum

    _EnumType = enum.EnumType
except Exception:  # pragma: no cover
    _EnumType = None

# Value kinds, decided once per type (field 0 of a type-cache entry).
(
    K_SEQ,
    K_MAP,
    K_ODICT,
    K_NAMEDTUPLE,
    K_ENUM,
    K_SUBINT,
    K_SUBFLOAT,
    K_SUBSTR,
    K_SUBBYTES,
    K_BYTEARRAY,
    K_OBJ,
    K_CLASS,
    K_MODULE,
    K_FUNC,
    K_METHOD,
    K_BUILTIN,
    K_DESCR,
    K_METHODWRAPPER,
    K_CODE,
    K_FRAME,
    K_GEN,
    K_CREPR,
    K_UUID,
    K_FRACTION,
    K_PATH,
    K_LOCK,
    K_SOCKET,
    K_MEMVIEW,
    K_OPAQUE,
) = range(29)


def _take_list(v: Any, k: int) -> list[Any]:
    return list.__getitem__(v, slice(0, k))


def _take_tuple(v: Any, k: int) -> tuple[Any, ...]:
    return tuple.__getitem__(v, slice(0, k))


def _take_set(v: Any, k: int) -> list[Any]:
    return list(islice(set.__iter__(v), k))


def _take_frozenset(v: Any, k: int) -> list[Any]:
    return list(islice(frozenset.__iter__(v), k))


def _take_deque(v: Any, k: int) -> list[Any]:
    return list(islice(deque.__iter__(v), k))


# Base types the encoder knows by identity. Walking a type's MRO, the first base found here
# decides its kind (so OrderedDict wins over dict, bool over int). Keyed by id(): these types
# live as long as the interpreter, and ids never run a metaclass __hash__.
_BASE_KINDS: dict[int, tuple[int, Any]] = {
    id(list): (K_SEQ, (list.__len__, _take_list)),
    id(tuple): (K_SEQ, (tuple.__len__, _take_tuple)),
    id(set): (K_SEQ, (set.__len__, _take_set)),
    id(frozenset): (K_SEQ, (frozenset.__len__, _take_frozenset)),
    id(deque): (K_SEQ, (deque.__len__, _take_deque)),
    id(OrderedDict): (K_ODICT, None),
    id(dict): (K_MAP, None),
    id(int): (K_SUBINT, None),
    id(float): (K_SUBFLOAT, None),
    id(str): (K_SUBSTR, None),
    id(bytes): (K_SUBBYTES, None),
    id(bytearray): (K_BYTEARRAY, None),
    id(type): (K_CLASS, None),
    id(types.ModuleType): (K_MODULE, None),
    id(types.FunctionType): (K_FUNC, None),
    id(types.MethodType): (K_METHOD, None),
    id(types.BuiltinFunctionType): (K_BUILTIN, None),
    id(types.MethodWrapperType): (K_METHODWRAPPER, None),
    id(types.CodeType): (K_CODE, None),
    id(types.FrameType): (K_FRAME, None),
    id(types.GeneratorType): (
        K_GEN,
        ("generator", types.GeneratorType.__dict__["__qualname__"].__get__),
    ),
    id(types.CoroutineType): (
        K_GEN,
        ("coroutine", types.CoroutineType.__dict__["__qualname__"].__get__),
    ),
    id(types.AsyncGeneratorType): (
        K_GEN,
        ("async_generator", types.AsyncGeneratorType.__dict__["__qualname__"].__get__),
    ),
    id(memoryview): (K_MEMVIEW, None),
    id(complex): (K_CREPR, (complex.__repr__, None)),
    id(range): (K_CREPR, (range.__repr__, None)),
    id(type(...)): (K_CREPR, (type(...).__repr__, None)),
    id(type(NotImplemented)): (K_CREPR, (type(NotImplemented).__repr__, None)),
}
for _descr_type, _word in (
    (types.MethodDescriptorType, "method"),
    (types.ClassMethodDescriptorType, "method"),
    (types.WrapperDescriptorType, "slot wrapper"),
    (types.GetSetDescriptorType, "attribute"),
    (types.MemberDescriptorType, "member"),
):
    _BASE_KINDS[id(_descr_type)] = (
        K_DESCR,
        (
            _word,
            _descr_type.__dict__["__name__"].__get__,
            _descr_type.__dict__["__objclass__"].__get__,
        ),
    )
del _descr_type, _word

# SnapshotEncoder.walk_kind's answers for the builtin containers and their subclasses, and for
# opaque values (_fingerprint.h defines the same numbers).
WALK_LIST = -2
WALK_TUPLE = -3
WALK_DICT = -4
WALK_SET = -5
WALK_OPAQUE = -6
WALK_OPAQUE_TYPE = -7
"""An opaque value whose text names its class alone (`<itertools.chain object>`, iterators,
`map`, `zip`, dict views, `array.array`...): the C core fingerprints it by its identity."""
WALK_SLOTTED = -8
"""An object with `__slots__` (and maybe an instance dict): the C core reads its slots where
`walk_slots` says they are."""
WALK_DATETIME = -9
"""An exact `datetime.date`, `datetime`, `time` or `timedelta` (a value: no identity): the C
core fingerprints it by its fields through the datetime C API (and its tzinfo by identity)."""
_DATETIME_NAMES = ("date", "datetime", "time", "timedelta")
WALK_NAMEDTUPLE = -10
"""A namedtuple (`_namedtuple`: an object whose attributes are its fields, `walk_fields`)."""
WALK_CREPR = -11
"""A value of a C type shown by its own C repr, unconditionally (a `Decimal`, a `complex`, a
`range`, a `timezone`): the C core fingerprints it by that repr."""
WALK_UUID = -12
"""A `uuid.UUID` (a value): the C core reads its `int` slot (`walk_slots`)."""
WALK_PATH = -13
"""A `pathlib.PurePosixPath` or a subclass (`PosixPath`, a `Path`; a value): the C core reads the
slots its text is made of (`walk_slots`), and asks `encode_opaque` for the text."""
WALK_DEQUE = -14
"""A `collections.deque` or a subclass, shown as the sequence it is: the C core reads its length
and first items through deque's own C slots, the items `_take_deque` takes from `deque.__iter__`."""
WALK_GENERIC_DICT = -15
"""An instance of a C class with an instance dict but no `__dict__` descriptor (an asyncio
`Future` or `Task`): the encoder reads the dict with `PyObject_GenericGetDict`, and so does the
C core."""
WALK_SOCKET = -16
"""A socket (`_socket.socket` or a subclass, `socket.socket` among them): the C core reads what
its text shows (its `fileno()`, family, type and proto, through `_socket.socket`'s own
descriptors) and its identity."""
WALK_CREPR_CHECKED = -17
"""A `re.Pattern` or `re.Match`: shown by its own C repr when the one member its check reads
(`_CHECKED_MEMBERS`) is an exact str or bytes; the C core reads that member, then the repr."""
_CHECKED_MEMBERS = {"Pattern": "pattern", "Match": "string"}
WALK_EXCEPTION = -18
"""An exception whose class reads its instance dict through BaseException's own `__dict__`: the
C core reads `args` (BaseException's field) first, then the dict, then the member slots
`walk_slots` names (`StopIteration.value`, `OSError.errno`..., a subclass's `__slots__`), as
`_obj` does; a class with a member the walk cannot read (`UnicodeError.start`, a C
`Py_ssize_t`) is left to Python."""
_BASE_EXCEPTION_DICT = BaseException.__dict__["__dict__"]
WALK_LOCK = -19
"""A `_thread.lock` (`threading.Lock()`): the C core reads `locked()` through the class's own
method, as the text does, and the identity."""
# The opaque kinds the C core recognises by their C type and fingerprints by what their text
# reads (_fingerprint.c, opaque_content); it asks `encode_opaque` for their venc.
_WALK_OPAQUE_KINDS = frozenset(
    {K_CLASS, K_FUNC, K_METHOD, K_BUILTIN, K_MODULE, K_GEN, K_CODE, K_DESCR, K_METHODWRAPPER}
)
_WALK_SEQ = {
    _take_list: WALK_LIST,
    _take_tuple: WALK_TUPLE,
    _take_set: WALK_SET,
    _take_frozenset: WALK_SET,
    _take_deque: WALK_DEQUE,
}

# Exact types whose instances hash and compare in C: safe as keys of a C-level dict lookup.
_SAFE_KEY_TYPE_IDS = frozenset(map(id, (str, int, float, bool, NoneType, bytes)))


def _odict_pairs(v: Any, k: int) -> list[Any]:
    """The first k pairs of an OrderedDict (or subclass), in its order where that is safe.

    The C OrderedDict iterator re-hashes each key to find its node: only use it (to get the
    move_to_end order) when every key is an exact str/int/... whose hash and == are C.
    """
    if {*map(id, map(type, dict.keys(v)))} <= _SAFE_KEY_TYPE_IDS:
        return list(islice(OrderedDict.items(v), k))
    return list(islice(dict.items(v), k))


_BIGINT_PREFIX = 32  # leading digits kept for an int too long to store whole
_BIGINT_EXACT_BITS = 33_220  # ~10,000 digits: above this, leading decimals cost over ~0.1 ms
_LOG10_2 = 0.30102999566398120


def _type_name(t: type) -> str:
    """`module.QualName` of a class, or just `QualName` for builtins, read without user code."""
    try:
        qual = _type_qualname(t)
    except Exception:
        qual = "?"
    if type(qual) is not str:
        qual = "?"
    try:
        module = _type_module(t)
    except Exception:
        module = None
    if type(module) is not str:
        return qual
    if module == "builtins":
        return qual
    return module + "." + qual


def _has_base(t: type, base: type) -> bool:
    # `base in t.__mro__` would compare with ==, which can reach a metaclass __eq__.
    return any(b is base for b in _type_mro(t))


def _class_get(klass: type, name: str) -> Any:
    """`klass.__dict__.get(name)` on the real class dict (no metaclass, no MRO)."""
    return _type_dict(klass).get(name)


def _dict_locator(mro: tuple[type, ...], t: type) -> tuple[int, bool] | None:
    """Where the real instance `__dict__` descriptor lives: (index in the MRO, is_member).

    Index -1 means "the type has a dict but hides the descriptor" (a class attribute named
    `__dict__` defined where the dict slot was added): read it with PyObject_GenericGetDict.
    """
    for i, klass in enumerate(mro):
        d = _class_get(klass, "__dict__")
        if type(d) is _GetSet:
            return (i, False)
        if type(d) is _Member:
            return (i, True)
    if _type_dictoffset(t) != 0 and _generic_get_dict() is not None:
        return (-1, False)
    return None


def _slot_members(mro: tuple[type, ...]) -> tuple[tuple[int, str], ...]:
    """Member descriptors (`__slots__` and C struct members) as (MRO index, name), base first."""
    seen: set[str] = set()
    groups: list[list[tuple[int, str]]] = []
    for i, klass in enumerate(mro):
        if klass is object:
            continue
        group = []
        for name, d in _type_dict(klass).items():
            if type(d) is not _Member or type(name) is not str:
                continue
            if name[:2] == "__" and name[-2:] == "__":  # __weakref__-like internals
                continue
            if name in seen:  # a subclass re-declared it: its descriptor wins
                continue
            seen.add(name)
            group.append((i, name))
        groups.append(group)
    return tuple(item for group in reversed(groups) for item in group)


def _namedtuple_fields(mro: tuple[type, ...]) -> tuple[str, ...] | None:
    for klass in mro:
        fields = _class_get(klass, "_fields")
        if fields is not None:
            if type(fields) is tuple and all(type(f) is str for f in fields):
                return fields
            return None
    return None


def _exc_str_func(mro: tuple[type, ...]) -> Any:
    """The C `__str__` an exception type uses, or None if a Python class overrides it."""
    for klass in mro:
        f = _class_get(klass, "__str__")
        if f is not None:
            return f if type(f) is _WrapperDescriptor else None
    return None


def _module_attr(module_name: str, attr: str) -> Any:
    """`sys.modules[module_name].attr` if that module is loaded; never imports anything."""
    module = sys.modules.get(module_name)
    if type(module) is not types.ModuleType:
        return None
    found = dict.get(_module_dict(module), attr)
    return found if _has_base(type(found), type) else None  # only classes


def _c_repr(t: Any) -> Any:
    r = _class_get(t, "__repr__") if t is not None else None
    return r if type(r) is _WrapperDescriptor else None


_STDLIB_MODULES = ("datetime", "zoneinfo", "decimal", "re", "uuid", "fractions", "pathlib")
_STDLIB_MODULES += ("_thread", "_socket")
_stdlib_cache: list[Any] = [None, {}]  # [ids of those modules when computed, the table]


def _stdlib_kinds() -> dict[int, tuple[int, Any]]:
    """Kinds for stdlib value types, for the modules the program has loaded (imports nothing).

    Recomputed only when one of those modules appears (or changes) in sys.modules.
    """
    modules = sys.modules
    loaded = tuple(id(modules.get(name)) for name in _STDLIB_MODULES)
    if _stdlib_cache[0] == loaded:
        return _stdlib_cache[1]
    out: dict[int, tuple[int, Any]] = {}
    _add_datetime_kinds(out)
    _add_value_kinds(out)
    _add_resource_kinds(out)
    _stdlib_cache[:] = [loaded, out]
    return out


def _add_datetime_kinds(out: dict[int, tuple[int, Any]]) -> None:
    # Their C reprs only call repr() on the tzinfo: allow the stdlib's own tz classes only.
    timezone = _module_attr("datetime", "timezone")
    zoneinfo = _module_attr("zoneinfo", "ZoneInfo")
    safe_tz = tuple(z for z in (timezone, zoneinfo) if z is not None)

    def tz_check(getter: Callable[[Any], Any]) -> Callable[[Any], bool]:
        def check(v: Any) -> bool:
            tz = getter(v)
            return tz is None or any(type(tz) is z for z in safe_tz)

        return check

    for name in ("date", "timedelta", "timezone", "datetime", "time"):
        cls = _module_attr("datetime", name)
        r = _c_repr(cls)
        if r is None:
            continue
        check = None
        if name in ("datetime", "time"):
            tz = _class_get(cls, "tzinfo")
            if type(tz) is not _GetSet:
                continue
            check = tz_check(tz.__get__)
        out[id(cls)] = (K_CREPR, (r, check))


def _add_value_kinds(out: dict[int, tuple[int, Any]]) -> None:
    decimal = _module_attr("decimal", "Decimal")
    r = _c_repr(decimal)
    if r is not None:
        out[id(decimal)] = (K_CREPR, (r, None))
    for name, member in _CHECKED_MEMBERS.items():
        cls = _module_attr("re", name)
        r = _c_repr(cls)
        m = _class_get(cls, member) if r is not None else None
        if type(m) is _Member:
            get = m.__get__
            out[id(cls)] = (K_CREPR, (r, lambda v, get=get: _is_str_or_bytes(get(v))))
    uuid = _module_attr("uuid", "UUID")
    if uuid is not None and type(_class_get(uuid, "int")) is _Member:
        out[id(uuid)] = (K_UUID, _class_get(uuid, "int").__get__)
    fraction = _module_attr("fractions", "Fraction")
    if fraction is not None:
        num, den = _class_get(fraction, "_numerator"), _class_get(fraction, "_denominator")
        if type(num) is _Member and type(den) is _Member:
            out[id(fraction)] = (K_FRACTION, (num.__get__, den.__get__))
    posix = _module_attr("pathlib", "PurePosixPath")
    if posix is not None:
        getters: dict[str, Callable[[Any], Any]] = {}
        for klass in _type_mro(posix):
            for slot in ("_str", "_raw_paths", "_raw_path", "_drv", "_root", "_parts"):
                d = _class_get(klass, slot)
                if type(d) is _Member and slot not in getters:
                    getters[slot] = d.__get__
        out[id(posix)] = (K_PATH, getters)


def _add_resource_kinds(out: dict[int, tuple[int, Any]]) -> None:
    lock = _module_attr("_thread", "LockType")
    locked = _class_get(lock, "locked") if lock is not None else None
    if type(locked) is types.MethodDescriptorType:
        out[id(lock)] = (K_LOCK, locked)
    sock = _module_attr("_socket", "socket")
    if sock is not None:
        fileno = _class_get(sock, "fileno")
        members = [_class_get(sock, n) for n in ("family", "type", "proto")]
        if type(fileno) is types.MethodDescriptorType and all(type(m) is _Member for m in members):
            out[id(sock)] = (K_SOCKET, (fileno, tuple(m.__get__ for m in members)))


def _registered(t: type) -> bool:
    """Whether `t` itself (not a subclass of it) has a kind of its own above."""
    return id(t) in _BASE_KINDS or id(t) in _stdlib_kinds()


def _kind_of(t: type) -> tuple[int, Any]:
    """Decide how instances of `t` are encoded. Runs once per type; reads only C-level data."""
    mro = _type_mro(t)
    meta = type(t)
    if meta is not type and _EnumType is not None and _has_base(meta, _EnumType):
        return K_ENUM, _dict_locator(mro, t)
    stdlib = _stdlib_kinds()
    for base in mro:
        found = _BASE_KINDS.get(id(base)) or stdlib.get(id(base))
        if found is None:
            continue
        kind, extra = found
        if kind == K_SEQ and base is tuple and t is not tuple:
            fields = _namedtuple_fields(mro)
            if fields is not None:
                return K_NAMEDTUPLE, fields
        return kind, extra
    # Anything else: an object with an instance dict and/or member descriptors, else opaque.
    loc = _dict_locator(mro, t)
    slots = _slot_members(mro)
    if _has_base(t, BaseException):
        return K_OBJ, (loc, slots, True, _exc_str_func(mro))
    if loc is None and not slots:
        return K_OPAQUE, None
    return K_OBJ, (loc, slots, False, None)


# Per top-level value state, passed down the recursion: `[budget, path]`, where budget is the
# number of item/attribute slots still allowed (CaptureLimits.max_nodes) and path the ids of the
# containers/objects being encoded (recursion detection; at most max_depth + 1 long, so a list).
# A two-item list rather than a small class: it is built for every non-atom value, and a list
# costs a third of an instance.
_State = list
_BUDGET = 0
_PATH = 1


# A type-cache entry: (kind, type_name, extra, weakref-to-the-type-or-None).
_TypeInfo = tuple[int, str, Any, Any]


class SnapshotEncoder:
    """Encodes values into `venc` structures (docs/internals.md, "Values"). One per recording;
    safe to share between threads (per-call state lives on the stack)."""

    def __init__(
        self,
        limits: CaptureLimits | None = None,
        redactor: Redactor | None = None,
        identity: IdentityMap | None = None,
    ) -> None:
        self.limits = limits if limits is not None else CaptureLimits()
        self.redactor = redactor if redactor is not None else Redactor()
        self.identity = identity if identity is not None else IdentityMap()
        self.faults = 0
        self.last_fault = ""
        lim = self.limits
        # Hot-path copies of the limits (an attribute read on self is cheaper than two).
        self._big = 10**lim.max_int_digits  # |v| >= _big has more than max_int_digits digits
        self._nbig = -self._big  # precomputed: `-big` in a test would build a 1000-digit int
        self._max_string = lim.max_string
        self._max_items = lim.max_items
        self._max_depth = lim.max_depth
        self._max_attrs = lim.max_attrs
        self._max_nodes = lim.max_nodes
        self._secret_cache = self.redactor._cache  # read directly on the hot path
        self._is_secret = self.redactor.is_secret
        self._key = self.identity.key
        self._types: dict[int, _TypeInfo] = {}
        types_ = self._types

        def _forget_type(ref: Any, _types: dict[int, _TypeInfo] = types_) -> None:
            # The class died: drop its entry so a new class at the same address is classified
            # afresh. Same constraints as IdentityMap's callback (cheap, shutdown-safe).
            try:
                entry = _types.get(ref.oid)
                if entry is not None and entry[3] is ref:
                    del _types[ref.oid]
            except Exception:  # see IdentityMap's callback
                pass

        self._forget_type = _forget_type
        h: list[Callable[..., Any]] = [self._opaque] * 29
        h[K_SEQ] = self._seq
        h[K_MAP] = self._map
        h[K_ODICT] = self._odict
        h[K_NAMEDTUPLE] = self._namedtuple
        h[K_ENUM] = self._enum
        h[K_SUBINT] = self._atomsub
        h[K_SUBFLOAT] = self._atomsub
        h[K_SUBSTR] = self._atomsub
        h[K_SUBBYTES] = self._atomsub
        h[K_BYTEARRAY] = self._atomsub
        h[K_OBJ] = self._obj
        self._handlers = tuple(h)

    # -- public API ------------------------------------------------------------------------------

    def encode(self, value: Any) -> Any:
        """The `venc` of `value`. Never raises (faults become V_ERROR values)."""
        # Fast path first: exact atoms inside the limits are stored as themselves. `type(v) is X`
        # chains, not `type(v) in SET`: hashing a class can run its metaclass's __hash__.
        t = type(value)
        if t is int:
            if self._nbig < value < self._big:
                return value
        elif t is str:
            if len(value) <= self._max_string:
                return value
        elif t is float or t is bool or t is NoneType:
            return value
        try:
            return self._enc(value, 0, [self._max_nodes, []])
        except Exception as exc:  # pragma: no cover - _enc catches its own faults
            return self._fault(t, exc)

    def encode_named(self, name: str, value: Any) -> Any:
        """Like `encode`, but a value whose name looks secret is stored as V_REDACTED."""
        # The redactor's cache, read inline: this runs for every changed variable.
        if type(name) is str:
            secret = self._secret_cache.get(name)
            if secret is None:
                secret = self._is_secret(name)
            if secret:
                return (V_REDACTED, self.type_name(value))
        t = type(value)
        if t is int:
            if self._nbig < value < self._big:
                return value
        elif t is str:
            if len(value) <= self._max_string:
                return value
        elif t is float or t is bool or t is NoneType:
            return value
        try:
            return self._enc(value, 0, [self._max_nodes, []])
        except Exception as exc:  # pragma: no cover
            return self._fault(t, exc)

    def encode_exception(self, exc: BaseException) -> tuple[str, str, Any]:
        """`(type_name, message, venc)` of an exception, the `exc` of RAISE/HANDLED/... events.

        `message` is what `str(exc)` would give when that needs no user code (builtin `__str__`
        over atom arguments), else it is built from `exc.args` (read through the C getset).
        """
        t = type(exc)
        try:
            name = self._info(t)[1]
        except Exception as error:
            self._fault(t, error)
            name = "?"
        try:
            message = self._exc_message(exc, t)
        except Exception as error:
            self._fault(t, error)
            message = ""
        return (name, message, self.encode(exc))

    def walk_kind(self, t: type) -> int:
        """How the C core may read instances of `t` itself, without this encoder.

        For a plain object (no slots, not an exception, not a class with a kind of its own),
        whose instance dict is all the encoder reads: the index in `t.__mro__` of the class
        whose `__dict__` getset it reads; for one with slots: WALK_SLOTTED (see `walk_slots`).
        For list, tuple, dict, set and frozenset and their subclasses, shown as the container
        they are (`_seq`, `_map`): WALK_LIST, WALK_TUPLE,
        WALK_DICT or WALK_SET. For classes, functions, methods, builtins, modules, generators,
        code objects, descriptors and bound slot wrappers (opaque: a text and an identity), and
        enum members: WALK_OPAQUE; for other objects with neither an instance dict nor slots
        (their text is the class's name): WALK_OPAQUE_TYPE. The WALK_* constants above name the
        other kinds it reads (exceptions, locks, paths...). Else -1. The C
        core's fingerprint walk (_fingerprint.c) and encoder (_encode.c) read these themselves,
        and re-encode only when their content changed.
        """
        try:
            kind, _, extra, _ = self._info(t)
        except Exception as exc:
            self._fault(t, exc)
            return -1
        if kind == K_SEQ:
            return _WALK_SEQ.get(extra[1], -1)
        if kind == K_MAP:
            return WALK_DICT
        if kind in _WALK_OPAQUE_KINDS:
            return WALK_OPAQUE
        if kind == K_OPAQUE:
            return WALK_OPAQUE_TYPE
        if kind == K_CREPR and t.__module__ == "datetime" and t.__name__ in _DATETIME_NAMES:
            return WALK_DATETIME  # (the C core checks the exact C type)
        if kind == K_NAMEDTUPLE:
            return WALK_NAMEDTUPLE
        if kind == K_CREPR and extra[1] is None and _registered(t):
            return WALK_CREPR  # its own C repr (a subclass's may be Python code)
        if (
            kind == K_CREPR
            and t.__module__ == "re"
            and t.__name__ in _CHECKED_MEMBERS
            and _registered(t)
        ):
            return WALK_CREPR_CHECKED
        if kind == K_UUID and _registered(t):
            return WALK_UUID
        if kind == K_SOCKET:
            return WALK_SOCKET  # (the C core checks the class derives from _socket.socket)
        if kind == K_LOCK:
            return WALK_LOCK  # (the C core checks the class is _thread.LockType)
        if kind == K_PATH and extra:
            return WALK_PATH  # its text reads the slots of pathlib's own classes alone
        if kind == K_ENUM and extra is not None and extra[0] >= 0 and not extra[1]:
            return WALK_OPAQUE  # a member whose instance dict the walk reads (its value: an atom)
        if kind != K_OBJ:
            return -1
        loc, slots, is_exc, _ = extra
        if loc == (-1, False) and not slots and not is_exc:
            return WALK_GENERIC_DICT
        if is_exc and loc is not None and loc[0] >= 0 and not loc[1]:
            dict_descr = _type_dict(_type_mro(t)[loc[0]]).get("__dict__")
            return WALK_EXCEPTION if dict_descr is _BASE_EXCEPTION_DICT else -1
        if is_exc or (loc is not None and (loc[0] < 0 or loc[1])):
            return -1
        if slots:
            return WALK_SLOTTED
        if loc is None:
            return -1
        return loc[0]

    def walk_fields(self, t: type) -> tuple[str, ...]:
        """For a class `walk_kind` calls WALK_NAMEDTUPLE: its fields, as `_namedtuple` names
        its items (the C core keeps them until the class changes)."""
        try:
            kind, _, extra, _ = self._info(t)
            return extra if kind == K_NAMEDTUPLE else ()
        except Exception as exc:
            self._fault(t, exc)
            return ()

    def walk_slots(self, t: type) -> tuple[int, tuple[tuple[str, Any], ...]]:
        """For a class `walk_kind` calls WALK_SLOTTED or WALK_EXCEPTION: the MRO index of the
        `__dict__` getset the encoder reads (-1: no instance dict), and its slots in the
        encoder's order (base first, `_slot_members`) as (name, member descriptor), the
        descriptors `_slot_attrs` finds in the class dicts now (a slot whose name is bound to
        something else there is skipped by the encoder, so it is left out). The C core keeps
        each slot's offset, not the descriptor, and asks again when the class changes (its
        version tag)."""
        try:
            kind, _, extra, _ = self._info(t)
            if kind == K_UUID:  # the slot its text reads
                return (-1, (("int", _class_get(t, "int")),))
            if kind == K_CREPR:  # WALK_CREPR_CHECKED: the member its check reads
                name = _CHECKED_MEMBERS.get(t.__name__, "")
                return (-1, ((name, _class_get(t, name)),))
            if kind == K_PATH:  # the slots its text reads (_posix_path_str), by their getters
                return (-1, tuple((name, get.__self__) for name, get in extra.items()))
            loc, slots, _, _ = extra
            mro = _type_mro(t)
            found = []
            for index, name in slots:
                descr = _class_get(mro[index], name)
                if type(descr) is _Member:
                    found.append((name, descr))
            return (-1 if loc is None else loc[0], tuple(found))
        except Exception as exc:
            self._fault(t, exc)
            return (-1, ())

    def encode_opaque(self, value: Any) -> Any:
        """The venc of a value whose kind `walk_kind` says is WALK_OPAQUE or WALK_OPAQUE_TYPE,
        as `_enc` gives it.

        The C encoder asks for these one node at a time (their text is built here), and keeps
        the answer while the node's fingerprint holds.
        """
        t = type(value)
        try:
            info = self._info(t)
            return self._handlers[info[0]](value, t, info, 0, [0, []])
        except Exception as exc:
            return self._fault(t, exc)

    def class_name(self, t: type) -> str:
        """`module.QualName` of the class `t`, as a venc names its instances (cached).

        The C encoder (_encode.c) asks once per class, then builds vencs with it.
        """
        try:
            return self._info(t)[1]
        except Exception as exc:
            self._fault(t, exc)
            return "?"

    def type_name(self, value: Any) -> str:
        """`module.QualName` of `type(value)` (cached), computed without user code."""
        return self.class_name(type(value))

    # -- dispatch --------------------------------------------------------------------------------

    def _enc(self, v: Any, depth: int, st: _State) -> Any:
        t = type(v)
        if t is int:
            if self._nbig < v < self._big:
                return v
            return self._bigint(v)
        if t is str or t is bytes:
            if len(v) <= self._max_string:
                return v
            return (V_CUT, "str" if t is str else "bytes", v[: self._max_string], len(v))
        if t is float or t is bool or t is NoneType:
            return v
        try:
            # Exact builtin containers skip the type cache and use len()/slicing directly: on an
            # exact list/dict/tuple these are C and cannot reach a user override.
            if t is list:
                return self._list(v, depth, st)
            if t is dict:
                return self._dict(v, depth, st)
            if t is tuple:
                return self._tuple(v, depth, st)
            info = self._types.get(id(t))
            if info is None:
                info = self._classify(t)
            return self._handlers[info[0]](v, t, info, depth, st)
        except Exception as exc:
            return self._fault(t, exc)

    def _info(self, t: type) -> _TypeInfo:
        info = self._types.get(id(t))
        if info is None:
            info = self._classify(t)
        return info

    def _classify(self, t: type) -> _TypeInfo:
        kind, extra = _kind_of(t)
        name = _type_name(t)
        try:
            ref = _Ref(t, self._forget_type)
        except TypeError:  # pragma: no cover - classes are always weak-referenceable
            return (kind, name, extra, None)
        ref.oid = id(t)
        info = (kind, name, extra, ref)
        self._types[id(t)] = info
        return info

    def _fault(self, t: type, exc: BaseException) -> Any:
        self.faults += 1
        try:
            name = _type_name(t)
            what = _type_name(type(exc))
            args = _exc_args(exc)
            text = args[0] if len(args) == 1 and type(args[0]) is str else ""
            message = f"{what}: {text}" if text else what
        except Exception:  # pragma: no cover
            name, message = "?", "encoder fault"
        self.last_fault = f"encoding a {name}: {message}"
        return (V_ERROR, name, message)

    # -- atoms -----------------------------------------------------------------------------------

    def _bigint(self, v: int) -> Any:
        """(V_BIGINT, 'int', prefix, digits) without converting the whole int to text.

        Up to ~10,000 digits: the exact leading digits and exact digit count (one power of ten
        and one short division). Beyond: the leading hex digits ('0x...') and the digit count
        estimated from the bit length (may be one short).
        """
        sign = "-" if v < 0 else ""
        a = -v if v < 0 else v
        bits = a.bit_length()
        low = int((bits - 1) * _LOG10_2) + 1  # digits is low or low + 1
        if bits <= _BIGINT_EXACT_BITS:
            shift = max(low - _BIGINT_PREFIX, 0)
            lead = str(a // 10**shift)  # PREFIX or PREFIX + 1 digits: far below any str limit
            return (V_BIGINT, "int", sign + lead[:_BIGINT_PREFIX], len(lead) + shift)
        top = a >> (bits - 4 * _BIGINT_PREFIX)
        return (V_BIGINT, "int", sign + "0x" + format(top, "x"), low)

    def _cut(self, s: str) -> str:
        return s if len(s) <= self._max_string else s[: self._max_string] + "..."

    def _atomsub(self, v: Any, t: type, info: _TypeInfo, depth: int, st: _State) -> Any:
        # The base value through the base type's own C slot: a subclass override is never called.
        kind = info[0]
        ms = self._max_string
        if kind == K_SUBINT:
            base = self._enc(int.__index__(v), depth, st)
        elif kind == K_SUBFLOAT:
            base = float.__float__(v)
        elif kind == K_SUBSTR:
            n = str.__len__(v)
            base = str.__getitem__(v, slice(0, ms))
            if n > ms:
                base = (V_CUT, "str", base, n)
        elif kind == K_SUBBYTES:
            n = bytes.__len__(v)
            base = bytes.__getitem__(v, slice(0, ms))
            if n > ms:
                base = (V_CUT, "bytes", base, n)
        else:  # bytearray and subclasses: a copy of the bytes (no identity; see values.py)
            n = bytearray.__len__(v)
            base = bytes(bytearray.__getitem__(v, slice(0, ms)))
            if n > ms:
                base = (V_CUT, "bytes", base, n)
        return (V_ATOMSUB, info[1], base)

    # -- containers ------------------------------------------------------------------------------

    def _items(self, items: Any, oid: int, depth: int, st: _State) -> list[Any]:
        """Encode already-copied items one level down, with `oid` on the recursion path."""
        path = st[_PATH]
        path.append(oid)
        big = self._big
        nbig = self._nbig
        ms = self._max_string
        slow = self._item
        try:
            # The atom test of _enc, inlined into a comprehension: most items are atoms, and this
            # saves a call per item (about half the cost of a list of ints).
            return [
                x
                if ((tx := type(x)) is int and nbig < x < big)
                or (tx is str and len(x) <= ms)
                or tx is float
                or tx is bool
                or tx is NoneType
                else slow(x, depth, st)
                for x in items
            ]
        finally:
            path.pop()

    def _item(self, x: Any, depth: int, st: _State) -> Any:
        """A sequence item that is not a plain atom."""
        tx = type(x)
        if (tx is tuple or tx is list) and len(x) == 2 and self._is_secret_key(x[0]):
            # A (name, value) pair such as an HTTP header: keep the name, hide the value.
            return self._secret_pair(x, tx, depth, st)
        return self._enc(x, depth, st)

    def _is_secret_key(self, k: Any) -> bool:
        tk = type(k)
        if tk is str:
            name = k
        elif tk is bytes:
            name = k.decode("latin-1")
        else:
            return False
        secret = self._secret_cache.get(name)
        if secret is None:
            secret = self._is_secret(name)
        return secret

    def _secret_pair(self, pair: Any, t: type, depth: int, st: _State) -> Any:
        key = self._key(pair)
        if depth >= self._max_depth:
            return (V_SEQ, key, "tuple" if t is tuple else "list", 2, None)
        st[_BUDGET] -= 2
        return (
            V_SEQ,
            key,
            "tuple" if t is tuple else "list",
            2,
            [self._enc(pair[0], depth + 1, st), (V_REDACTED, self.type_name(pair[1]))],
        )

    def _room(self, n: int, st: _State) -> int:
        """How many of n items to expand: bounded by max_items and the remaining budget.

        Never negative (a (name, value) pair can overdraw the budget by one node): an empty
        container takes nothing, whatever is left.
        """
        if not n:
            return 0
        k = n if n < self._max_items else self._max_items
        budget = st[_BUDGET]
        return k if k < budget else budget

    def _list(self, v: list[Any], depth: int, st: _State) -> Any:
        key = self._key(v)
        oid = id(v)
        if oid in st[_PATH]:
            return (V_REF, key, "list")
        n = len(v)
        k = self._room(n, st)
        if depth >= self._max_depth or (n and k <= 0):
            return (V_SEQ, key, "list", n, None)
        st[_BUDGET] -= k
        return (V_SEQ, key, "list", n, self._items(v[:k], oid, depth + 1, st))

    def _tuple(self, v: tuple[Any, ...], depth: int, st: _State) -> Any:
        key = self._key(v)
        oid = id(v)
        if oid in st[_PATH]:
            return (V_REF, key, "tuple")
        n = len(v)
        k = self._room(n, st)
        if depth >= self._max_depth or (n and k <= 0):
            return (V_SEQ, key, "tuple", n, None)
        st[_BUDGET] -= k
        return (V_SEQ, key, "tuple", n, self._items(v[:k], oid, depth + 1, st))

    def _dict(self, v: dict[Any, Any], depth: int, st: _State) -> Any:
        key = self._key(v)
        oid = id(v)
        if oid in st[_PATH]:
            return (V_REF, key, "dict")
        n = len(v)
        k = self._room(n, st)
        if depth >= self._max_depth or (n and k <= 0):
            return (V_MAP, key, "dict", n, None)
        st[_BUDGET] -= k
        pairs = list(v.items()) if k == n else list(islice(v.items(), k))  # one C call: atomic
        return (V_MAP, key, "dict", n, self._pairs(pairs, oid, depth + 1, st))

    def _seq(self, v: Any, t: type, info: _TypeInfo, depth: int, st: _State) -> Any:
        length, take = info[2]
        key = self._key(v)
        oid = id(v)
        if oid in st[_PATH]:
            return (V_REF, key, info[1])
        n = length(v)
        k = self._room(n, st)
        if depth >= self._max_depth or (n and k <= 0):
            return (V_SEQ, key, info[1], n, None)
        st[_BUDGET] -= k
        return (V_SEQ, key, info[1], n, self._items(take(v, k), oid, depth + 1, st))

    def _map(self, v: Any, t: type, info: _TypeInfo, depth: int, st: _State) -> Any:
        key = self._key(v)
        oid = id(v)
        if oid in st[_PATH]:
            return (V_REF, key, info[1])
        n = dict.__len__(v)
        k = self._room(n, st)
        if depth >= self._max_depth or (n and k <= 0):
            return (V_MAP, key, info[1], n, None)
        st[_BUDGET] -= k
        # dict.items on the base type: C iteration over the storage, one atomic copy.
        pairs = list(islice(dict.items(v), k))
        return (V_MAP, key, info[1], n, self._pairs(pairs, oid, depth + 1, st))

    def _odict(self, v: Any, t: type, info: _TypeInfo, depth: int, st: _State) -> Any:
        key = self._key(v)
        oid = id(v)
        if oid in st[_PATH]:
            return (V_REF, key, info[1])
        n = dict.__len__(v)
        k = self._room(n, st)
        if depth >= self._max_depth or (n and k <= 0):
            return (V_MAP, key, info[1], n, None)
        st[_BUDGET] -= k
        return (V_MAP, key, info[1], n, self._pairs(_odict_pairs(v, k), oid, depth + 1, st))

    def _pairs(self, pairs: list[Any], oid: int, depth: int, st: _State) -> list[Any]:
        path = st[_PATH]
        path.append(oid)
        big = self._big
        nbig = self._nbig
        ms = self._max_string
        enc = self._enc
        out: list[Any] = []
        append = out.append
        try:
            for k, val in pairs:
                # Inlined atom tests, as in _items.
                tk = type(k)
                if (tk is str and len(k) <= ms) or (tk is int and nbig < k < big):
                    ek = k
                else:
                    ek = enc(k, depth, st)
                if (tk is str or tk is bytes) and self._is_secret_key(k):
                    append((ek, (V_REDACTED, self.type_name(val))))
                    continue
                tv = type(val)
                if (
                    (tv is int and nbig < val < big)
                    or (tv is str and len(val) <= ms)
                    or tv is float
                    or tv is bool
                    or tv is NoneType
                ):
                    append((ek, val))
                else:
                    append((ek, enc(val, depth, st)))
        finally:
            path.pop()
        return out

    def _namedtuple(self, v: Any, t: type, info: _TypeInfo, depth: int, st: _State) -> Any:
        # A namedtuple is shown as an object whose attributes are its fields (decision: more
        # useful than an anonymous tuple, and `point.x` works in conditions).
        key = self._key(v)
        oid = id(v)
        if oid in st[_PATH]:
            return (V_REF, key, info[1])
        if depth >= self._max_depth or st[_BUDGET] <= 0:
            return (V_OBJ, key, info[1], None, True)
        fields = info[2]
        n = tuple.__len__(v)
        k = min(n, len(fields), self._max_attrs, st[_BUDGET])
        st[_BUDGET] -= k
        items = tuple.__getitem__(v, slice(0, k))
        path = st[_PATH]
        path.append(oid)
        attrs: dict[str, Any] = {}
        try:
            for name, x in zip(fields, items, strict=False):
                if self._is_secret_key(name):
                    attrs[name] = (V_REDACTED, self.type_name(x))
                else:
                    attrs[name] = self._enc(x, depth + 1, st)
        finally:
            path.pop()
        return (V_OBJ, key, info[1], attrs, k < n)

    # -- objects ---------------------------------------------------------------------------------

    def _instance_dict(self, v: Any, t: type, loc: tuple[int, bool] | None) -> Any:
        """The instance `__dict__` through the real descriptor (never attribute lookup)."""
        if loc is None:
            return None
        index, is_member = loc
        if index < 0:
            d = _generic_get_dict()(v, None)  # type: ignore[misc]
        else:
            try:
                descr = _type_dict(_type_mro(t)[index])["__dict__"]
            except (IndexError, KeyError):  # the class hierarchy changed since it was classified
                return None
            if type(descr) is _GetSet and not is_member:
                d = _getset_get(descr, v, t)
            elif type(descr) is _Member and is_member:
                d = _member_get(descr, v, t)
            else:
                return None
        if type(d) is dict or (d is not None and _has_base(type(d), dict)):
            return d
        return None

    def _obj(self, v: Any, t: type, info: _TypeInfo, depth: int, st: _State) -> Any:
        # One function on purpose (the hot path for objects): attributes from the instance dict,
        # then from member descriptors (slots, in _slot_attrs), each name checked for secrets.
        key = self._key(v)
        oid = id(v)
        path = st[_PATH]
        if oid in path:
            return (V_REF, key, info[1])
        budget = st[_BUDGET]
        if depth >= self._max_depth or budget <= 0:
            return (V_OBJ, key, info[1], None, True)
        loc, slots, is_exc, _ = info[2]
        room = self._max_attrs if self._max_attrs < budget else budget
        st[_BUDGET] = budget - room  # reserved for the attributes; what is left is given back
        depth += 1
        attrs: dict[str, Any] = {}
        truncated = False
        path.append(oid)
        try:
            if is_exc:  # exceptions also show `args` (a C getset, not in the instance dict)
                attrs["args"] = self._enc(_exc_args(v), depth, st)
                room -= 1
            d = self._instance_dict(v, t, loc)
            if d is not None:
                n = dict.__len__(d)
                # One C call copies the items (atomic with respect to other threads).
                pairs = list(dict.items(d)) if n <= room else list(islice(dict.items(d), room))
                truncated = n > len(pairs)
                room -= len(pairs)
                secret_cache = self._secret_cache
                big = self._big
                nbig = self._nbig
                ms = self._max_string
                for name, val in pairs:
                    if type(name) is not str:  # a str subclass key could hash in user code
                        truncated = True
                        continue
                    secret = secret_cache.get(name)
                    if secret is None:
                        secret = self._is_secret(name)
                    if secret:
                        attrs[name] = (V_REDACTED, self.type_name(val))
                        continue
                    tv = type(val)  # inlined atom test, as in _items
                    if (
                        (tv is int and nbig < val < big)
                        or (tv is str and len(val) <= ms)
                        or tv is float
                        or tv is bool
                        or tv is NoneType
                    ):
                        attrs[name] = val
                    else:
                        attrs[name] = self._enc(val, depth, st)
            if slots:
                room, cut = self._slot_attrs(v, t, slots, attrs, room, depth=depth, st=st)
                truncated = truncated or cut
        finally:
            path.pop()
        if room > 0:
            st[_BUDGET] += room
        return (V_OBJ, key, info[1], attrs, truncated)

    def _slot_attrs(
        self,
        v: Any,
        t: type,
        slots: tuple[tuple[int, str], ...],
        attrs: dict[str, Any],
        room: int,
        *,
        depth: int,
        st: _State,
    ) -> tuple[int, bool]:
        for name, val in _set_slots(v, t, slots):
            if room <= 0:
                return room, True
            room -= 1
            if name in attrs:
                continue
            if self._is_secret_key(name):
                attrs[name] = (V_REDACTED, self.type_name(val))
            else:
                attrs[name] = self._enc(val, depth, st)
        return room, False

    def enum_member(self, v: Any, t: type, info: _TypeInfo) -> tuple[str | None, Any] | None:
        """`(name, value)` of a normal enum member, read from its instance dict; else None."""
        d = self._instance_dict(v, t, info[2])
        if d is None:
            return None
        name = dict.get(d, "_name_")
        value = dict.get(d, "_value_", _MISSING)
        if value is _MISSING or not (name is None or type(name) is str):
            return None
        return name, value

    def _enum(self, v: Any, t: type, info: _TypeInfo, depth: int, st: _State) -> Any:
        member = self.enum_member(v, t, info)
        if member is not None:
            return (V_ENUM, info[1], member[0], self._enc(member[1], depth + 1, st))
        # Not a normal member (no _value_ in its dict): show it as an object.
        loc = info[2]
        slots = _slot_members(_type_mro(t))
        return self._obj(v, t, (K_OBJ, info[1], (loc, slots, False, None), None), depth, st)

    # -- opaque values ---------------------------------------------------------------------------

    def _opaque(self, v: Any, t: type, info: _TypeInfo, depth: int, st: _State) -> Any:
        kind = info[0]
        name = info[1]
        extra = info[2]
        if kind == K_CREPR:
            # Exact C reprs of stdlib value types: called through the base type's slot wrapper.
            # No identity (0): these are values, and most cannot be weakly referenced.
            func, check = extra
            if check is None or check(v):
                text = func(v)
                if type(text) is str:
                    return (V_OPAQUE, 0, name, self._cut(text))
            return (V_OPAQUE, 0, name, f"<{name} object>")
        if kind in (K_UUID, K_FRACTION, K_PATH):
            text = self._value_text(v, kind, extra, name)
            return (V_OPAQUE, 0, name, text if text is not None else f"<{name} object>")
        return (V_OPAQUE, self._key(v), name, self._object_text(v, t, kind, extra, name))

    def _value_text(self, v: Any, kind: int, extra: Any, name: str) -> str | None:
        short = name.rpartition(".")[2]
        if kind == K_UUID:
            i = extra(v)
            if type(i) is int and 0 <= i < 1 << 128:
                h = format(i, "032x")
                return f"{short}('{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}')"
            return None
        if kind == K_FRACTION:
            num, den = extra[0](v), extra[1](v)
            big = self._big
            if type(num) is int and type(den) is int and -big < num < big and -big < den < big:
                return f"{short}({num}, {den})"
            return None
        text = _posix_path_str(v, extra)
        return None if text is None else f"{short}({self._cut(text)!r})"

    def _object_text(self, v: Any, t: type, kind: int, extra: Any, name: str) -> str:
        if kind == K_CLASS:
            return f"<class '{self._info(v)[1]}'>"
        if kind == K_FUNC:
            return f"<function {_qualified(_func_module(v), _func_qualname(v))}>"
        if kind == K_METHOD:
            func = _method_func(v)
            owner = self.type_name(_method_self(v))
            if type(func) is types.FunctionType:
                return f"<bound method {_func_qualname(func)} of {owner} object>"
            return f"<bound method of {owner} object>"
        if kind == K_BUILTIN:
            fname = _builtin_name(v)
            owner = _builtin_self(v)
            if owner is None or _has_base(type(owner), types.ModuleType):
                return f"<built-in function {fname}>"
            return f"<built-in method {fname} of {self.type_name(owner)} object>"
        if kind == K_METHODWRAPPER:
            owner = self.type_name(_wrapper_self(v))
            return f"<method-wrapper '{_wrapper_name(v)}' of {owner} object>"
        if kind == K_DESCR:
            word, get_name, get_objclass = extra
            owner = get_objclass(v)
            owner_name = self._info(owner)[1] if _has_base(type(owner), type) else "?"
            return f"<{word} '{get_name(v)}' of '{owner_name}' objects>"
        if kind == K_MODULE:
            mname = dict.get(_module_dict(v), "__name__")
            return f"<module '{mname}'>" if type(mname) is str else "<module ?>"
        if kind == K_CODE:
            return (
                f'<code object {_code_qualname(v)}, file "{_code_filename(v)}", '
                f"line {_code_firstlineno(v)}>"
            )
        if kind == K_FRAME:
            code = _frame_code(v)
            return (
                f'<frame of {_code_qualname(code)}, file "{_code_filename(code)}", '
                f"line {_frame_lineno(v)}>"
            )
        if kind == K_GEN:
            word, get_qualname = extra
            return f"<{word} object {get_qualname(v)}>"
        if kind == K_LOCK:
            return f"<{'locked' if extra(v) else 'unlocked'} {name} object>"
        if kind == K_SOCKET:
            fileno, (family, stype, proto) = extra
            return f"<{name} fd={fileno(v)}, family={family(v)}, type={stype(v)}, proto={proto(v)}>"
        if kind == K_MEMVIEW:
            try:
                return f"<memory nbytes={_memoryview_nbytes(v)}>"
            except ValueError:
                return "<released memory>"
        return f"<{name} object>"

    # -- exceptions ------------------------------------------------------------------------------

    def _exc_message(self, exc: BaseException, t: type) -> str:
        args = _exc_args(exc)
        info = self._info(t)
        str_func = info[2][3] if info[0] == K_OBJ else None
        if str_func is not None:
            # The builtin __str__ is C. It reads args (and, for OSError, SyntaxError, ImportError,
            # UnicodeError..., C members) and may str()/repr() them: call it only when all of
            # those are atoms or small tuples/lists of atoms, whose str/repr are C too.
            safe = str_func is _GROUP_STR or _safe_to_print(args, 3)
            if safe and str_func is not _BASE_EXC_STR and str_func is not _GROUP_STR:
                mro = _type_mro(t)
                for index, name in info[2][1]:
                    descr = _class_get(mro[index], name)
                    if type(descr) is _Member:
                        try:
                            if not _safe_to_print(_member_get(descr, exc, t), 3):
                                safe = False
                                break
                        except AttributeError:
                            continue
            if safe:
                try:
                    text = str_func(exc)
                except Exception:  # e.g. an int past sys.get_int_max_str_digits()
                    text = None
                if type(text) is str:
                    return self._cut(text)
        if type(args) is not tuple or not args:
            return ""
        if len(args) == 1:
            if type(args[0]) is str:
                return self._cut(args[0])
            return short_repr(self.encode(args[0]), limit=self._max_string)
        return short_repr(self.encode(args), limit=self._max_string)


_MISSING: Any = object()


def _set_slots(v: Any, t: type, slots: tuple[tuple[int, str], ...]) -> Iterator[tuple[str, Any]]:
    """`(name, value)` of each member-descriptor slot of `v` that is set, in the encoder's order."""
    mro = _type_mro(t)
    for index, name in slots:
        # The descriptor is fetched from the class dict each time (not cached): holding it
        # would keep the class alive (trap 2) and its type-cache entry forever.
        descr = _class_get(mro[index], name)
        if type(descr) is not _Member:
            continue
        try:
            val = _member_get(descr, v, t)
        except AttributeError:  # an unset slot
            continue
        yield name, val


def _is_str_or_bytes(x: Any) -> bool:
    t = type(x)
    return t is str or t is bytes


def _safe_to_print(x: Any, depth: int) -> bool:
    """True when str()/repr() of x is C code all the way down: atoms, and exact tuples/lists of
    at most 64 such values, `depth` levels deep."""
    t = type(x)
    if t is str or t is int or t is float or t is bool or t is NoneType or t is bytes:
        return True
    if (t is tuple or t is list) and depth > 0 and len(x) <= 64:
        return all(_safe_to_print(i, depth - 1) for i in x)
    return False


def _qualified(module: Any, qualname: Any) -> str:
    qual = qualname if type(qualname) is str else "?"
    if type(module) is str and module != "builtins":
        return module + "." + qual
    return qual


def _posix_join(paths: list[str]) -> str:
    # posixpath.join, for the raw segments pathlib 3.12+ keeps.
    out = paths[0]
    for seg in paths[1:]:
        if seg.startswith("/"):
            out = seg
        elif not out or out.endswith("/"):
            out += seg
        else:
            out += "/" + seg
    return out


def _posix_path_str(v: Any, getters: dict[str, Callable[[Any], Any]]) -> str | None:
    """`str(path)` of a PurePosixPath from its slots, replicating pathlib's normalisation."""

    def slot(name: str) -> Any:
        get = getters.get(name)
        if get is None:
            return None
        try:
            return get(v)
        except AttributeError:
            return None

    cached = slot("_str")
    if type(cached) is str:
        return cached
    parts = slot("_parts")  # 3.11: _drv, _root, _parts (already normalised)
    if type(parts) is list and all(type(p) is str for p in parts):
        drv, root = slot("_drv"), slot("_root")
        if type(drv) is not str or type(root) is not str:
            return None
        text = drv + root + "/".join(parts[1:]) if drv or root else "/".join(parts)
        return text or "."
    raw = slot("_raw_paths")  # 3.12+: the raw segments, normalised lazily
    if type(raw) is list and all(type(p) is str for p in raw):
        path = _posix_join(raw) if raw else ""
    else:
        path = slot("_raw_path")
        if type(path) is not str:
            return None
    root = ""
    if path.startswith("/"):
        root = "//" if path.startswith("//") and not path.startswith("///") else "/"
    tail = [p for p in path.split("/") if p and p != "."]
    return (root + "/".join(tail)) or "."
