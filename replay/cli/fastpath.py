"""`replay record` parsed without Typer, from the one declaration of its options.

Why: `replay record script.py` runs the program in this very process, so whatever the command
line costs is start-up time of the recorded program. Typer and the click it bundles take about
30 ms to import, and its parser then loads pydantic to check option values (about 50 ms and
5 MB more): a large part of a recorded process's fixed cost, to read a few plain options. This
module reads them itself, and neither it nor what it imports loads Typer, click or pydantic
(tests/cli/test_cli_startup.py checks it in a real recorded process).

How: `parse_record(args)` takes the options from `replay.cli.record.RecordOptions`, the single
declaration the Typer command is built from too (see replay/cli/record.py for why a declaration
and not `record()`'s Typer signature), and parses `args` with click's rules for what that
declaration can express: flags, str and int options (with their `min`), repeatable str options,
`--opt=value`, the options-before-the-target rule and the `--` and `-mMOD` forms (through
`split_record_args`, the same function the Typer command uses). It then calls `record()`, so
the checks and the Launch are the Typer path's own.

It answers None, and the caller hands the command line to Typer, for anything else: `--help`,
an unknown option, a missing value, a value that starts with `-`, an int that is not plain
digits or is out of range; and for every command line if a field of RecordOptions has a type
this parser does not model (see `_kind`). So Typer words every error the fast path would have
to guess at, and nothing is ever read differently: `tests/cli/test_cli_fastpath.py` checks that
both parsers build the same Launch, for every option.
"""

from __future__ import annotations

import re
import types
import typing
from functools import cache
from typing import TYPE_CHECKING, Any

from replay.cli.record import (
    OPTIONS,
    RecordOptions,
    option_types,
    record,
    split_record_args,
    value_option_names,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from replay.cli.record import Launch

__all__ = ["parse_record"]

_DIGITS = re.compile(r"[0-9]+")


class _Table:
    """RecordOptions as this parser reads it (a plain class: a dataclass costs start-up time)."""

    def __init__(self) -> None:
        self.flags: dict[str, str] = {}
        """option name (`-q`, `--quiet`) -> field."""
        self.values: dict[str, tuple[str, Callable[[str], Any], bool]] = {}
        """option name -> (field, converter: the value or None to refuse it, repeatable)."""


def parse_record(args: list[str]) -> Launch | None:
    """The Launch for `replay record ARGS...`, or None: then parse with Typer (see above)."""
    table = _table()
    if table is None:
        return None
    args, command_mode = split_record_args(args, value_option_names())
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
        if name in table.flags and not eq:
            kwargs[table.flags[name]] = True
            index += 1
            continue
        if name not in table.values:
            return None  # --help, an unknown option, `-qm`...: Typer words the error
        if eq:
            value, index = inline, index + 1
        elif index + 1 < len(args) and not args[index + 1].startswith("-"):
            value, index = args[index + 1], index + 2
        else:
            return None
        param, convert, repeatable = table.values[name]
        converted = convert(value)
        if converted is None:
            return None
        if repeatable:
            kwargs.setdefault(param, []).append(converted)
        else:
            kwargs[param] = converted
    return record(RecordOptions(**kwargs), args[index:] or None, command_mode=command_mode)


@cache
def _table() -> _Table | None:
    """Read RecordOptions once; None when a field's type is beyond this parser."""
    hints = option_types()
    table = _Table()
    for spec in OPTIONS:
        names, kind = spec.names, _kind(hints[spec.name])
        if kind is None or (kind == "bool" and spec.default is not False):
            return None
        if kind == "bool":
            table.flags.update(dict.fromkeys(names, spec.name))
        else:
            convert = _converter(kind, spec.min)
            table.values.update(dict.fromkeys(names, (spec.name, convert, kind == "list")))
    return table


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


def _converter(kind: str, low: int | None) -> Callable[[str], Any]:
    if kind in ("str", "list"):
        return str

    def to_int(text: str) -> int | None:
        if not _DIGITS.fullmatch(text):
            return None
        number = int(text)
        return None if low is not None and number < low else number

    return to_int
