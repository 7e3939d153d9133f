"""Expressions over recorded values: `x > 3`, `order.items[0].price`, `len(items) == 0`.

This module owns the small language of `p EXPR` and breakpoint conditions. An expression is
parsed with `ast` and compiled into a tree of closures over a frame's recorded locals (encoded
values, see docs/internals.md). Nothing is ever `eval`ed and no recorded code or live object is
involved: attribute and subscript paths walk the *encoded* value (so `len(items)` is the length
the program saw, even when the recording kept only the first items), and leaves are compared as
`replay.values.plain` forms.

Supported: names, constants, attribute and subscript paths (indexes, keys, slices), tuples and
lists of those, comparisons (`==` `!=` `<` `<=` `>` `>=` `in` `not in` `is` `is not`), `and`
`or` `not`, arithmetic (`+ - * / // % **`, unary `-`/`+`), and the functions in FUNCTIONS.
Anything else is an ExpressionError naming what is not supported.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from replay.engine.errors import ExpressionError
from replay.events import V_ENUM, V_MAP, V_OBJ, V_REDACTED, V_SEQ
from replay.values import REDACTED, UNAVAILABLE, plain, short_repr

Env = Mapping[str, Any]
"""Name -> encoded value: a frame's locals."""
Compiled = Callable[[Env], Any]

MAX_SOURCE = 1000
MAX_POWER = 10_000


class Recorded:
    """A recorded container or object inside an evaluation (atoms are used as themselves)."""

    __slots__ = ("venc",)

    def __init__(self, venc: tuple) -> None:
        self.venc = venc

    def __repr__(self) -> str:
        return short_repr(self.venc)


class Unbound(ExpressionError):
    """A name the frame has not bound (conditions treat it as 'no match')."""


def wrap(venc: Any) -> Any:
    return Recorded(venc) if type(venc) is tuple else venc


def value(v: Any) -> Any:
    """The plain form of an evaluation value (a leaf for operators)."""
    return plain(v.venc) if type(v) is Recorded else v


def to_venc(v: Any) -> Any:
    """An evaluation result as something `short_repr` can print."""
    if type(v) is Recorded:
        return v.venc
    return v


def describe(v: Any) -> str:
    """One line for a result of `evaluate` (a recorded value or a computed one)."""
    if type(v) is Recorded:
        return short_repr(v.venc, None)
    if type(v) in (int, float, str, bytes, bool, type(None)):
        return repr(v)
    return repr(v)


# -- paths ----------------------------------------------------------------------------------


def get_attr(obj: Any, name: str) -> Any:
    if type(obj) is Recorded:
        venc = obj.venc
        tag = venc[0]
        if tag == V_OBJ:
            attrs = venc[3]
            if attrs is None:
                raise ExpressionError(
                    f"the attributes of {venc[2]} were not recorded (past the depth limit)"
                )
            if name not in attrs:
                shown = ", ".join(list(attrs)[:8])
                raise ExpressionError(f"{venc[2]} has no recorded attribute {name!r} ({shown})")
            return wrap(attrs[name])
        if tag == V_ENUM and name in ("name", "value"):
            return venc[2] if name == "name" else wrap(venc[3])
        if tag == V_REDACTED:
            raise ExpressionError("the value is redacted")
        raise ExpressionError(f"a recorded {_type_name(venc)} has no attribute {name!r}")
    if isinstance(obj, dict) and name in obj:  # an attribute of a plain object form
        return obj[name]
    raise ExpressionError(f"{type(obj).__name__} has no attribute {name!r}")


def get_item(obj: Any, key: Any) -> Any:
    if type(obj) is Recorded:
        venc = obj.venc
        tag = venc[0]
        if tag == V_SEQ:
            return _seq_item(venc, key)
        if tag == V_MAP:
            pairs = venc[4]
            if pairs is None:
                raise ExpressionError(f"the items of {venc[2]} were not recorded")
            wanted = value(key)
            for k, v in pairs:
                if plain(k) == wanted:
                    return wrap(v)
            more = " (the recording kept only some keys)" if len(pairs) < venc[3] else ""
            raise ExpressionError(f"key {wanted!r} not in the recorded {venc[2]}{more}")
        if tag == V_REDACTED:
            raise ExpressionError("the value is redacted")
        raise ExpressionError(f"a recorded {_type_name(venc)} cannot be subscripted")
    try:
        return obj[value(key)]
    except (IndexError, KeyError, TypeError) as exc:
        raise ExpressionError(f"{type(exc).__name__}: {exc}") from None


def _seq_item(venc: tuple, key: Any) -> Any:
    items, length = venc[4], venc[3]
    if items is None:
        raise ExpressionError(f"the items of {venc[2]} were not recorded (past the depth limit)")
    key = value(key)
    if isinstance(key, slice):
        return [wrap(v) for v in items[key]]
    if type(key) is not int:
        raise ExpressionError(f"{venc[2]} indices must be integers, not {type(key).__name__}")
    index = key + length if key < 0 else key
    if not 0 <= index < length:
        raise ExpressionError(f"index {key} out of range: the {venc[2]} had {length} items")
    if index >= len(items):
        raise ExpressionError(
            f"item {key} was not recorded: the recording kept {len(items)} of {length} items"
        )
    return wrap(items[index])


def _type_name(venc: tuple) -> str:
    tag = venc[0]
    if tag in (V_SEQ, V_MAP, V_OBJ):
        return str(venc[2])
    return str(venc[1]) if len(venc) > 1 else "value"


# -- functions ------------------------------------------------------------------------------


def _len(v: Any) -> int:
    if type(v) is Recorded:
        venc = v.venc
        if venc[0] in (V_SEQ, V_MAP):
            return int(venc[3])  # the length the program saw, not the items kept
        if venc[0] == 1:  # CUT str/bytes: its full length
            return int(venc[3])
        raise ExpressionError(f"a recorded {_type_name(venc)} has no len()")
    try:
        return len(v)
    except TypeError:
        raise ExpressionError(f"{type(v).__name__} has no len()") from None


def _plain_call(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        return fn(*(value(a) for a in args))

    return call


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _len,
    "abs": _plain_call(abs),
    "min": _plain_call(min),
    "max": _plain_call(max),
    "sum": _plain_call(sum),
    "any": _plain_call(any),
    "all": _plain_call(all),
    "sorted": _plain_call(sorted),
    "str": _plain_call(str),
    "int": _plain_call(int),
    "float": _plain_call(float),
    "bool": _plain_call(bool),
    "round": _plain_call(round),
}


# -- compiling ------------------------------------------------------------------------------

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class Expression:
    """A parsed, compiled expression; `evaluate(locals)` runs it over recorded values."""

    def __init__(self, source: str) -> None:
        source = source.strip()
        if not source:
            raise ExpressionError("empty expression")
        if len(source) > MAX_SOURCE:
            raise ExpressionError(f"expression longer than {MAX_SOURCE} characters")
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"cannot parse {source!r}: {exc.msg}") from None
        self.source = source
        self.names: frozenset[str] = frozenset(
            node.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Name) and node.id not in FUNCTIONS
        )
        self._fn = _compile(tree.body)

    def evaluate(self, env: Env) -> Any:
        """The value (Recorded for containers/objects); ExpressionError if it cannot be had."""
        try:
            return self._fn(env)
        except ExpressionError:
            raise
        except (TypeError, ValueError, ArithmeticError, OverflowError) as exc:
            raise ExpressionError(f"{type(exc).__name__}: {exc}") from None
        except RecursionError:
            raise ExpressionError("expression nested too deeply") from None

    def test(self, env: Env) -> bool:
        """Truth of the expression; an unbound name or a value error counts as False."""
        try:
            result = value(self._fn(env))
            return bool(result) if result is not REDACTED and result is not UNAVAILABLE else False
        except Exception:  # a condition that cannot be evaluated here does not match here
            return False

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def _compile(node: ast.expr) -> Compiled:
    if isinstance(node, ast.Constant):
        const = node.value
        return lambda env: const
    if isinstance(node, ast.Name):
        name = node.id

        def load(env: Env) -> Any:
            try:
                venc = env[name]
            except KeyError:
                raise Unbound(f"{name!r} is not bound in this frame") from None
            return Recorded(venc) if type(venc) is tuple else venc

        return load
    if isinstance(node, ast.Attribute):
        inner = _compile(node.value)
        attr = node.attr
        return lambda env: get_attr(inner(env), attr)
    if isinstance(node, ast.Subscript):
        obj = _compile(node.value)
        key = _compile(node.slice)
        return lambda env: get_item(obj(env), key(env))
    if isinstance(node, ast.Slice):
        parts = [
            _compile(p) if p is not None else None for p in (node.lower, node.upper, node.step)
        ]
        return lambda env: slice(*(value(p(env)) if p else None for p in parts))
    if isinstance(node, ast.Tuple | ast.List):
        elts = [_compile(e) for e in node.elts]
        return lambda env: [value(e(env)) for e in elts]
    if isinstance(node, ast.UnaryOp):
        operand = _compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda env: not value(operand(env))
        if isinstance(node.op, ast.USub):
            return lambda env: -value(operand(env))
        if isinstance(node.op, ast.UAdd):
            return lambda env: +value(operand(env))
        raise ExpressionError("the ~ operator is not supported")
    if isinstance(node, ast.BinOp):
        fn = _BINOPS.get(type(node.op))
        if fn is None:
            raise ExpressionError(f"the operator {type(node.op).__name__} is not supported")
        left, right = _compile(node.left), _compile(node.right)
        if fn is operator.pow:
            return lambda env: _power(value(left(env)), value(right(env)))
        return lambda env: fn(value(left(env)), value(right(env)))
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v) for v in node.values]
        if isinstance(node.op, ast.And):

            def all_of(env: Env) -> Any:
                result: Any = True
                for part in parts:
                    result = value(part(env))
                    if not result:
                        return result
                return result

            return all_of

        def any_of(env: Env) -> Any:
            result: Any = False
            for part in parts:
                result = value(part(env))
                if result:
                    return result
            return result

        return any_of
    if isinstance(node, ast.Compare):
        return _compile_compare(node)
    if isinstance(node, ast.Call):
        return _compile_call(node)
    raise ExpressionError(f"{type(node).__name__} expressions are not supported")


def _compile_compare(node: ast.Compare) -> Compiled:
    operands = [_compile(node.left), *(_compile(c) for c in node.comparators)]
    ops = [_compare_op(op) for op in node.ops]

    def compare(env: Env) -> bool:
        left = operands[0](env)
        for op, right_fn in zip(ops, operands[1:], strict=True):
            right = right_fn(env)
            if not op(left, right):
                return False
            left = right
        return True

    return compare


def _compare_op(op: ast.cmpop) -> Callable[[Any, Any], bool]:
    fn = _CMPOPS.get(type(op))
    if fn is not None:
        return lambda a, b: fn(value(a), value(b))
    if isinstance(op, ast.In):
        return lambda a, b: _contains(b, a)
    if isinstance(op, ast.NotIn):
        return lambda a, b: not _contains(b, a)
    if isinstance(op, ast.Is):
        return _same
    if isinstance(op, ast.IsNot):
        return lambda a, b: not _same(a, b)
    raise ExpressionError(f"the comparison {type(op).__name__} is not supported")


def _contains(container: Any, item: Any) -> bool:
    if type(container) is Recorded and container.venc[0] == V_MAP:
        pairs = container.venc[4]
        if pairs is None:
            raise ExpressionError(f"the items of {container.venc[2]} were not recorded")
        wanted = value(item)
        return any(plain(k) == wanted for k, _ in pairs)
    whole = value(container)
    if whole is UNAVAILABLE or whole is REDACTED:
        raise ExpressionError("the container's items were not recorded")
    try:
        return value(item) in whole
    except TypeError as exc:
        raise ExpressionError(f"TypeError: {exc}") from None


def _same(a: Any, b: Any) -> bool:
    """`is` over recorded values: the same recorded object identity, or the same singleton."""
    if type(a) is Recorded and type(b) is Recorded:
        ida, idb = _obj_id(a.venc), _obj_id(b.venc)
        return ida is not None and ida == idb
    va, vb = value(a), value(b)
    if va is None or vb is None or type(va) is bool or type(vb) is bool:
        return va is vb
    return False


def _obj_id(venc: tuple) -> int | None:
    if venc[0] in (V_SEQ, V_MAP, V_OBJ, 8, 9) and venc[1]:
        return int(venc[1])
    return None


def _power(base: Any, exponent: Any) -> Any:
    if isinstance(exponent, int) and abs(exponent) > MAX_POWER:
        raise ExpressionError(f"exponent larger than {MAX_POWER}")
    return base**exponent


def _compile_call(node: ast.Call) -> Compiled:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        what = node.func.id if isinstance(node.func, ast.Name) else "methods"
        allowed = ", ".join(f"{name}()" for name in FUNCTIONS)
        raise ExpressionError(f"cannot call {what}: only {allowed} are available")
    if node.keywords:
        raise ExpressionError("keyword arguments are not supported")
    fn = FUNCTIONS[node.func.id]
    args = [_compile(a) for a in node.args]
    name = node.func.id

    def call(env: Env) -> Any:
        try:
            return fn(*(a(env) for a in args))
        except ExpressionError:
            raise
        except (TypeError, ValueError) as exc:
            raise ExpressionError(f"{name}(): {exc}") from None

    return call
