"""`replay record`'s own parser (replay/cli/fastpath.py) against Typer's, in this process.

The fast path must build exactly the Launch that Typer's parser builds, or decline (None) and let
Typer handle the command line: never read it differently. Both read the options from one
declaration (replay.cli.record.RecordOptions); every option is exercised here.
"""

from __future__ import annotations

from typing import Any

import pytest
import typer

from replay.cli import fastpath
from replay.cli.record import OPTIONS, Launch, option_types
from replay.cli.typer_app import register
from replay.exceptions import UsageError


def typer_launch(args: list[str]) -> Any:
    """What Typer's parser makes of `replay record ARGS...` (a Launch), without running it."""
    command = typer.main.get_command(register(("record",)))
    return command.main(["record", *args], prog_name="replay", standalone_mode=False)


SAME = [
    ["app.py"],
    ["app.py", "--store", "x.db", "-q", "--", "-m"],  # the program's arguments, whatever they look
    ["--store", "s.db", "app.py", "a", "b"],
    ["--store=s.db", "--name", "run 1", "app.py"],
    ["--include", "a/*", "--include=b/*", "--exclude", "c/*", "app.py"],
    ["--redact", "secret.*", "--redact", "pin", "--no-default-redaction", "app.py"],
    ["--backend", "settrace", "--max-depth", "0", "--max-items", "007", "--max-string=5", "app.py"],
    ["--store", "a.db", "--store", "b.db", "app.py"],  # the last one wins, as with click
    ["-q", "--quiet", "app.py"],
    ["--on-backlog", "drop", "app.py"],
    ["--max-overhead", "50%", "app.py"],
    ["--max-overhead=1.5x", "--name=n", "app.py"],
    ["-m", "json.tool", "--sort-keys"],
    ["-mjson.tool", "x"],
    ["--store", "s.db", "-m", "pkg.mod"],
    ["--", "ls", "-l", "--store", "x"],
    ["-q", "--store", "s.db", "--", "ls"],
    ["-m", "--", "json.tool"],
    ["-", "arg"],  # `-` is a target (a script read from stdin, for python)
]


@pytest.mark.parametrize("args", SAME, ids=" ".join)
def test_same_launch_as_typer(args: list[str]) -> None:
    mine = fastpath.parse_record(list(args))
    assert isinstance(mine, Launch), "the fast path declined a plain command line"
    assert mine == typer_launch(list(args))


DECLINED = [
    ["--help"],
    ["-h"],
    ["--bogus", "app.py"],
    ["-qm", "mod"],  # clustered short flags: click's business
    ["--max-depth", "-1", "app.py"],
    ["--max-depth", "1.5", "app.py"],
    ["--max-depth", "x", "app.py"],
    ["--max-depth", " 3", "app.py"],
    ["--store"],
    ["--store", "--name", "x", "app.py"],  # a value that looks like an option
    ["--quiet=1", "app.py"],
]


@pytest.mark.parametrize("args", DECLINED, ids=" ".join)
def test_declines_what_it_does_not_model(args: list[str]) -> None:
    assert fastpath.parse_record(list(args)) is None


@pytest.mark.parametrize(
    "args",
    [[], ["--store", "x.db"], ["-m"], ["--backend", "nope", "a.py"], ["--on-backlog", "x", "a.py"]],
)
def test_errors_are_records_own(args: list[str]) -> None:
    """Both parsers end in `record()`, so its usage errors read the same."""
    with pytest.raises(UsageError) as mine:
        fastpath.parse_record(list(args))
    with pytest.raises(UsageError) as theirs:
        typer_launch(list(args))
    assert str(mine.value) == str(theirs.value)


def test_every_option_of_record_is_understood() -> None:
    """If this fails, an option of `replay record` has a type fastpath.py does not model, and
    every recording now pays Typer (and pydantic): teach fastpath.py the new type."""
    assert fastpath._table() is not None


def option_names() -> list[str]:
    return [name for spec in OPTIONS for name in spec.names]


def test_every_option_is_compared_with_typer() -> None:
    """Each name of each option of `replay record` appears in a command line of SAME."""
    used = {arg.partition("=")[0] for args in SAME for arg in args}
    assert [name for name in option_names() if name not in used] == []


def test_typer_reads_the_declaration_as_the_fast_path_does() -> None:
    """The Typer command built from RecordOptions: same names, flags, repeats, defaults, mins."""
    command = typer.main.get_command(register(("record",))).commands["record"]  # type: ignore[attr-defined]
    types = option_types()
    declared = {}
    for spec in OPTIONS:
        kind = fastpath._kind(types[spec.name])
        names, low = list(spec.names), spec.min
        declared[spec.name] = (names, kind == "bool", kind == "list", spec.default, low)
    built = {
        param.name: (
            list(param.opts),
            param.is_flag,
            param.multiple,
            param.default,
            param.min,
        )
        for param in command.params
        if param.name not in ("target", "help")
    }
    assert built == declared
