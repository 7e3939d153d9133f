"""`replay record` parsed without Typer's parser, from `record()`'s own declaration.

Why: `replay record script.py` runs the program in this very process, so whatever the command
line costs is start-up time of the recorded program. Typer checks option values through
pydantic, which it imports and sets up on the first parse: about 50 ms and 5 MB, a sixth of a
recorded process's fixed cost, to read a few plain options. This module reads them itself.

How: `parse_record(args)` takes the options from the signature of `replay.cli.record.record`
(names, defaults, and the `typer.Option`/`typer.Argument` metadata of its Annotated hints) and
parses `args` with click's rules for what it supports: flags, str and int options (with their
`min`/`max`), repeatable str options, `--opt=value`, the options-before-the-target rule and the
`--` and `-mMOD` forms (through `split_record_args`, the same function the Typer command uses).
It then calls `record()` itself, so the checks and the Launch are the Typer path's own.

It answers None, and the caller hands the command line to Typer, for anything else: `--help`,
an unknown option, a missing value, a value that starts with `-`, an int that is not plain
digits or is out of range, and also whenever a parameter of `record()` has a feature this
parser does not model (a callback, an environment variable, a prompt, a custom parser or type,
a count, a `--x/--no-x` pair, a type other than bool, str, int and list[str]), given or not.
So an option someone adds to `record()` is parsed here with no change when it is plain, and
otherwise sends every command line to Typer: never read differently.
`tests/cli/test_cli_fastpath.py` checks that both parsers build the same Launch.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from inspect import Parameter, signature
from typing import TYPE_CHECKING, Any

import typer

from replay.cli import record as record_command

if TYPE_CHECKING:
    from collections.abc import Callable

    from replay.cli.record import Launch

__all__ = ["parse_record"]

_DIGITS = re.compile(r"[0-9]+")

# Option features this parser does not model: (attribute, the value that means "unused").
_UNSUPPORTED = (
    ("callback", None),
    ("envvar", None),
    ("parser", None),
    ("click_type", None),
    ("default_factory", None),
    ("is_eager", False),
    ("prompt", False),
    ("count", False),
    ("flag_value", None),
    ("clamp", False),
    ("expose_value", True),
)


@dataclass
class _Spec:
    """What `record()` accepts, as far as this parser understands it."""

    flags: dict[str, str] = field(default_factory=dict)
    """option name (`-q`, `--quiet`) -> parameter."""
    values: dict[str, tuple[str, Callable[[str], Any], bool]] = field(default_factory=dict)
    """option name -> (parameter, converter: the value or None to refuse it, repeatable)."""
    target: str = ""
    """The parameter that takes the target and its arguments."""
    context: str = ""
    """The parameter that receives the click context."""


def parse_record(args: list[str]) -> Launch | None:
    """The Launch for `replay record ARGS...`, or None: then parse with Typer (see above)."""
    spec = _spec()
    if spec is None:
        return None
    args, command_mode = record_command.split_record_args(args, frozenset(spec.values))
    kwargs: dict[str, Any] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            index += 1
            break
        if arg == "-" or not arg.startswith("-"):
            break  # the target: everything from here is the program's
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in spec.flags and not eq:
            kwargs[spec.flags[name]] = True
            index += 1
            continue
        if name not in spec.values:
            return None  # --help, an unknown option, `-qm`...: Typer words the error
        if eq:
            value, index = inline, index + 1
        elif index + 1 < len(args) and not args[index + 1].startswith("-"):
            value, index = args[index + 1], index + 2
        else:
            return None
        param, convert, repeatable = spec.values[name]
        converted = convert(value)
        if converted is None:
            return None
        if repeatable:
            kwargs.setdefault(param, []).append(converted)
        else:
            kwargs[param] = converted
    kwargs[spec.target] = args[index:] or None
    context = types.SimpleNamespace(meta={record_command._MODE_KEY: command_mode})
    launch: Launch = record_command.record(context, **kwargs)  # type: ignore[arg-type]
    return launch


@cache
def _spec() -> _Spec | None:
    """Read `record()`'s parameters once; None when one of them is beyond this parser."""
    try:
        return _read_spec(record_command.record)
    except Exception:  # an unexpected declaration: leave it all to Typer
        return None


def _read_spec(function: Callable[..., Any]) -> _Spec | None:
    hints = typing.get_type_hints(function, include_extras=True)
    spec = _Spec()
    for param in signature(function).parameters.values():
        hint = hints.get(param.name)
        if hint is typer.Context:
            spec.context = param.name
            continue
        if typing.get_origin(hint) is not typing.Annotated or param.default is Parameter.empty:
            return None
        base, *metadata = typing.get_args(hint)
        infos = [m for m in metadata if isinstance(m, typer.models.ParameterInfo)]
        if len(infos) != 1 or not _plain(infos[0]):
            return None
        info = infos[0]
        kind = _kind(base)
        if kind is None:
            return None
        if isinstance(info, typer.models.ArgumentInfo):
            if kind != "list" or spec.target:
                return None
            spec.target = param.name
            continue
        if not isinstance(info, typer.models.OptionInfo):
            return None
        # In Annotated, typer.Option's first positional (`default`) is the first option name.
        first = [] if info.default is ... else [info.default]
        names = [*first, *(info.param_decls or ())]
        if not all(isinstance(n, str) for n in names):
            return None
        if not names or any("/" in n or not n.startswith("-") or " " in n for n in names):
            return None  # derived names and --x/--no-x pairs: Typer's rules, not modelled
        if kind == "bool":
            if param.default is not False:
                return None
            spec.flags.update(dict.fromkeys(names, param.name))
            continue
        convert = _converter(kind, info)
        spec.values.update(dict.fromkeys(names, (param.name, convert, kind == "list")))
    if not spec.target or not spec.context:
        return None
    return spec


def _plain(info: Any) -> bool:
    """True when the parameter uses none of the features in _UNSUPPORTED."""
    return all(getattr(info, attr, unused) == unused for attr, unused in _UNSUPPORTED)


def _kind(annotation: Any) -> str | None:
    """'bool', 'str', 'int' or 'list' (of str), with `| None` allowed; None for anything else."""
    options = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(options) == 1:
        annotation = options[0]
    if annotation is bool:
        return "bool"
    if annotation is str:
        return "str"
    if annotation is int:
        return "int"
    if typing.get_origin(annotation) is list and typing.get_args(annotation) == (str,):
        return "list"
    return None


def _converter(kind: str, info: Any) -> Callable[[str], Any]:
    if kind in ("str", "list"):
        return str
    low, high = info.min, info.max

    def to_int(text: str) -> int | None:
        if not _DIGITS.fullmatch(text):
            return None
        number = int(text)
        if (low is not None and number < low) or (high is not None and number > high):
            return None
        return number

    return to_int
