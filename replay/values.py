"""The read side of encoded values (`venc`, docs/internals.md "Values"): JSON, one-line text, plain.

The recorder (`replay.recorder.snapshot`) writes vencs; everything that shows or evaluates a value
reads it through this module: `to_json` for `replay export`, `short_repr` for one-line displays
(show, the TUI, exception messages), and `plain` for comparisons in tests and in the engine's
conditions. Nothing here imports the recorder or needs the original objects.

Conventions the readers share (also the decisions the format leaves open):

- Atoms: `repr` is exactly Python's `repr()`. Ints longer than `sys.get_int_max_str_digits()`
  (possible when the capture limit is raised) are converted in chunks instead of failing.
- Containers print like Python prints them when their type is a builtin one (`[1, 2]`, `(1,)`,
  `set()`, `frozenset({1})`, `{'a': 1}`, `deque([1])`, `OrderedDict({'a': 1})`,
  `Counter({'a': 1})`, `defaultdict({'a': 1})`, the default factory is not recorded); other
  sequence and mapping types print as `mod.Type([...])` / `mod.Type({...})`. Items cut by the
  capture limits end in `...`; a container past the depth limit prints as `[...]`.
- Objects print as `<mod.Cls a=1 b='x'>`; back references as `[...]`, `{...}`, `(...)` or
  `<mod.Cls ...>`; redacted values as `<redacted>`.
- A bytearray is stored as ATOMSUB with a bytes copy and prints as `bytearray(b'...')`.
- OPAQUE values with `obj_id` 0 are values without a recorded identity (datetime, Decimal, ...):
  their JSON `id` is null.
"""

from __future__ import annotations

from typing import Any

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

__all__ = ["REDACTED", "UNAVAILABLE", "plain", "short_repr", "to_json"]

NoneType = type(None)
_ATOM_NAMES: dict[type, str] = {
    NoneType: "NoneType",
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    bytes: "bytes",
}
DEFAULT_LIMIT = 120
JSON_REPR_LIMIT = 1000

# Display forms of the builtin containers: (open, close, empty text, REF/unexpanded text).
_SEQ_FORMS: dict[str, tuple[str, str, str, str]] = {
    "list": ("[", "]", "[]", "[...]"),
    "tuple": ("(", ")", "()", "(...)"),
    "set": ("{", "}", "set()", "{...}"),
    "frozenset": ("frozenset({", "})", "frozenset()", "frozenset({...})"),
    "collections.deque": ("deque([", "])", "deque([])", "deque([...])"),
}
_MAP_FORMS: dict[str, tuple[str, str, str, str]] = {
    "dict": ("{", "}", "{}", "{...}"),
    "collections.OrderedDict": ("OrderedDict({", "})", "OrderedDict()", "OrderedDict({...})"),
    "collections.Counter": ("Counter({", "})", "Counter()", "Counter({...})"),
    "collections.defaultdict": ("defaultdict({", "})", "defaultdict({})", "defaultdict({...})"),
}


class _Marker:
    """A stand-in in `plain()` output for a value the recording does not hold."""

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return self._text


REDACTED = _Marker("<redacted>")
UNAVAILABLE = _Marker("<unavailable>")


def _int_repr(n: int) -> str:
    try:
        return repr(n)
    except ValueError:  # longer than sys.get_int_max_str_digits(): convert 600 digits at a time
        sign = "-" if n < 0 else ""
        n = -n if n < 0 else n
        base = 10**600
        chunks = []
        while n:
            n, r = divmod(n, base)
            chunks.append(r)
        head = str(chunks.pop())
        return sign + head + "".join(format(c, "0600d") for c in reversed(chunks))


def _atom_repr(v: Any) -> str:
    return _int_repr(v) if type(v) is int else repr(v)


def _short_type(type_name: str) -> str:
    return type_name.rpartition(".")[2]


class _Full(Exception):
    pass


class _Writer:
    __slots__ = ("limit", "parts", "size")

    def __init__(self, limit: int | None) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.limit is not None and self.size > self.limit:
            raise _Full


def short_repr(venc: Any, limit: int | None = DEFAULT_LIMIT) -> str:
    """One line of text for a value, like Python's repr where the value allows (see module doc).

    Longer than `limit` characters: cut and ended with `...`. `limit=None` never cuts.
    """
    w = _Writer(limit)
    # Not contextlib.suppress: the recorder calls this on the traced thread, where it must run
    # no Python code outside replay (contextlib's is Python).
    try:  # noqa: SIM105
        _write(w, venc)
    except _Full:  # the writer stops as soon as the limit is passed
        pass
    text = "".join(w.parts)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 3, 0)] + "..."
    return text


def _write(w: _Writer, v: Any) -> None:
    t = type(v)
    if t is not tuple:
        w.add(_atom_repr(v) if t in _ATOM_NAMES else f"<? {t.__name__}>")
        return
    tag = v[0]
    if tag == V_SEQ:
        _write_seq(w, v)
    elif tag == V_MAP:
        _write_map(w, v)
    elif tag == V_OBJ:
        _, _, name, attrs, truncated = v
        w.add("<" + name)
        if attrs is None:
            w.add(" ...>")
            return
        for key, value in attrs.items():
            w.add(f" {key}=")
            _write(w, value)
        w.add(" ...>" if truncated else ">")
    elif tag == V_CUT:
        w.add(repr(v[2]) + "...")
    elif tag == V_BIGINT:
        approx = "~" if "0x" in v[2] else ""
        w.add(f"{v[2]}...({approx}{v[3]} digits)")
    elif tag == V_ATOMSUB:
        if v[1] == "bytearray":
            w.add("bytearray(")
            _write(w, v[2])
            w.add(")")
        else:
            _write(w, v[2])
    elif tag == V_REDACTED:
        w.add("<redacted>")
    elif tag == V_REF:
        w.add(_ref_text(v[2]))
    elif tag == V_OPAQUE:
        w.add(v[3])
    elif tag == V_ENUM:
        _, name, member, value = v
        w.add(
            f"<{_short_type(name)}.{member}: " if member is not None else f"<{_short_type(name)}: "
        )
        _write(w, value)
        w.add(">")
    elif tag == V_ERROR:
        w.add(f"<{v[1]} (not recorded: {v[2]})>")
    else:
        w.add(f"<unknown value tag {tag}>")


def _ref_text(name: str) -> str:
    form = _SEQ_FORMS.get(name) or _MAP_FORMS.get(name)
    return form[3] if form is not None else f"<{name} ...>"


def _write_seq(w: _Writer, v: Any) -> None:
    _, _, name, length, items = v
    form = _SEQ_FORMS.get(name) or (name + "([", "])", name + "([])", name + "([...])")
    opening, closing, empty, unexpanded = form
    if items is None:
        w.add(unexpanded)
        return
    if not items and not length:
        w.add(empty)
        return
    w.add(opening)
    for i, item in enumerate(items):
        if i:
            w.add(", ")
        _write(w, item)
    if len(items) < length:
        w.add(", ..." if items else "...")
    elif name == "tuple" and length == 1:
        w.add(",")
    w.add(closing)


def _write_map(w: _Writer, v: Any) -> None:
    _, _, name, length, pairs = v
    form = _MAP_FORMS.get(name) or (name + "({", "})", name + "({})", name + "({...})")
    opening, closing, empty, unexpanded = form
    if pairs is None:
        w.add(unexpanded)
        return
    if not pairs and not length:
        w.add(empty)
        return
    w.add(opening)
    for i, (key, value) in enumerate(pairs):
        if i:
            w.add(", ")
        _write(w, key)
        w.add(": ")
        _write(w, value)
    if len(pairs) < length:
        w.add(", ..." if pairs else "...")
    w.add(closing)


def to_json(venc: Any, *, repr_limit: int | None = JSON_REPR_LIMIT) -> dict[str, Any]:
    """The export form of a value: always `type` and `repr`; `id`, `items`, `attrs`, `length`,
    `truncated`, `redacted` where they apply (docs/internals.md). `repr_limit` bounds the `repr`
    of containers and objects (atoms are never cut here: the capture limits already bound them)."""
    t = type(venc)
    if t is not tuple:
        name = _ATOM_NAMES.get(t)
        if name is None:
            return {"type": t.__name__, "repr": f"<? {t.__name__}>"}
        return {"type": name, "repr": _atom_repr(venc)}
    tag = venc[0]
    if tag == V_SEQ:
        _, obj_id, name, length, items = venc
        out: dict[str, Any] = {"type": name, "id": obj_id, "repr": short_repr(venc, repr_limit)}
        out["length"] = length
        if items is not None:
            out["items"] = [to_json(i, repr_limit=repr_limit) for i in items]
        if items is None or len(items) < length:
            out["truncated"] = True
        return out
    if tag == V_MAP:
        _, obj_id, name, length, pairs = venc
        out = {"type": name, "id": obj_id, "repr": short_repr(venc, repr_limit)}
        out["length"] = length
        if pairs is not None:
            out["items"] = [
                [to_json(k, repr_limit=repr_limit), to_json(val, repr_limit=repr_limit)]
                for k, val in pairs
            ]
        if pairs is None or len(pairs) < length:
            out["truncated"] = True
        return out
    if tag == V_OBJ:
        _, obj_id, name, attrs, truncated = venc
        out = {"type": name, "id": obj_id, "repr": short_repr(venc, repr_limit)}
        if attrs is not None:
            out["attrs"] = {k: to_json(a, repr_limit=repr_limit) for k, a in attrs.items()}
        if truncated or attrs is None:
            out["truncated"] = True
        return out
    if tag == V_CUT:
        return {"type": venc[1], "repr": repr(venc[2]), "length": venc[3], "truncated": True}
    if tag == V_BIGINT:
        return {"type": venc[1], "repr": venc[2] + "...", "length": venc[3], "truncated": True}
    if tag == V_ATOMSUB:
        inner = to_json(venc[2], repr_limit=repr_limit)
        inner["type"] = venc[1]
        if venc[1] == "bytearray":
            inner["repr"] = f"bytearray({inner['repr']})"
        return inner
    if tag == V_REDACTED:
        return {"type": venc[1], "repr": "<redacted>", "redacted": True}
    if tag == V_REF:
        return {"type": venc[2], "id": venc[1], "repr": _ref_text(venc[2]), "ref": True}
    if tag == V_OPAQUE:
        return {"type": venc[2], "id": venc[1] or None, "repr": venc[3]}
    if tag == V_ENUM:
        return {
            "type": venc[1],
            "repr": short_repr(venc, repr_limit),
            "name": venc[2],
            "value": to_json(venc[3], repr_limit=repr_limit),
        }
    if tag == V_ERROR:
        return {"type": venc[1], "repr": short_repr(venc, repr_limit), "error": venc[2]}
    return {"type": "?", "repr": f"<unknown value tag {tag}>"}


def plain(venc: Any) -> Any:
    """A plain Python structure for comparisons (tests, engine conditions).

    Atoms are themselves (a cut str/bytes is its prefix); sequences are lists; mappings are lists
    of `(key, value)` tuples (keys may be unhashable); objects and namedtuples are dicts of their
    attributes; enum members are their value; atom subclasses their base value; opaque values and
    huge ints their text. What the recording does not hold (redacted values, containers past the
    limits, back references, encoder errors) is `REDACTED` or `UNAVAILABLE`, which equal nothing
    but themselves.
    """
    if type(venc) is not tuple:
        return venc
    tag = venc[0]
    if tag == V_SEQ:
        items = venc[4]
        return UNAVAILABLE if items is None else [plain(i) for i in items]
    if tag == V_MAP:
        pairs = venc[4]
        return UNAVAILABLE if pairs is None else [(plain(k), plain(v)) for k, v in pairs]
    if tag == V_OBJ:
        attrs = venc[3]
        return UNAVAILABLE if attrs is None else {k: plain(a) for k, a in attrs.items()}
    if tag == V_CUT:
        return venc[2]
    if tag == V_BIGINT:
        return short_repr(venc, None)
    if tag == V_ATOMSUB:
        return plain(venc[2])
    if tag == V_REDACTED:
        return REDACTED
    if tag == V_OPAQUE:
        return venc[3]
    if tag == V_ENUM:
        return plain(venc[3])
    return UNAVAILABLE  # REF, ERROR, unknown tags
