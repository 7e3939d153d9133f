"""`replay record`'s own parser (replay/cli/fastpath.py) against Typer's, in this process.

The fast path must build exactly the Launch that Typer's parser builds, or decline (None) and let
Typer handle the command line: never read it differently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer

from replay.cli import fastpath, register
from replay.cli.record import Launch
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
    """If this fails, an option of `replay record` uses a feature fastpath.py does not model, and
    every recording now pays Typer's parser (pydantic): teach fastpath.py the new option."""
    assert fastpath._spec() is not None


def test_main_records_through_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end in a subprocess would hide which parser ran: here Typer's is made to fail."""
    from replay.cli import main  # noqa: PLC0415

    def no_typer(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("Typer's parser ran")

    monkeypatch.setattr(typer.main, "get_command", no_typer)
    monkeypatch.setattr(Launch, "run", lambda self: 42)
    monkeypatch.chdir(tmp_path)
    assert main(["record", "--store", str(tmp_path / "s.db"), "app.py"]) == 42
