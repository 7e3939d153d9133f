"""replay's command line: the Typer app, and the one place where errors become exit codes.

Each subcommand lives in its own module (`record`, `ls`, `show`, `export`, `debug`) and registers
itself on `app`. The modules are imported on demand: `replay CMD ...` imports and registers only
CMD (the recorded process of `replay record` must not carry the engine, the export code or the
reader), anything else (`replay`, `--help`, an unknown command) registers them all. `replay
record` is parsed without Typer's parser whenever `replay.cli.fastpath` can (it spares the
recorded process pydantic, which Typer's parser loads).

`main()` runs the parser in non-standalone mode and turns every error a user can cause into one
line on stderr, `replay: error: ...`, and an exit code from `replay.exceptions`: ReplayError and
StoreError (exit 1, or their own code), click's usage errors (exit 2). Bad input never prints a
traceback. The recorded program's own exceptions and exit code are not errors of replay's:
`record` hands back a `Launch` that runs after the parser has returned, and the program's
SystemExit passes through untouched.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated

import typer

from replay import __version__
from replay.cli.common import ClickException
from replay.exceptions import ERR, OK, USAGE, ReplayError, StoreError

SUBCOMMANDS = ("record", "ls", "show", "export", "debug")
"""The subcommand modules of replay.cli, in the order `replay --help` lists them."""

app = typer.Typer(
    name="replay",
    help="Record a Python program line by line into a SQLite store, then read it back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"replay {__version__}")
        print(f"python: {sys.version.split()[0]} ({sys.executable})")
        for what, description in _build_parts():
            print(f"{what}: {description}")
        raise typer.Exit()


def _build_parts() -> list[tuple[str, str]]:
    """What `replay record` would run here, and whether the optional C parts were built (as
    `coverage --version` says "with C extension"): a recording made without them is correct but
    slower, and a user comparing figures needs to know."""
    # Imported here: the recorder's modules are not loaded for any other command line.
    from replay.recorder import writer  # noqa: PLC0415
    from replay.recorder.core import choose_backend  # noqa: PLC0415
    from replay.storage import codec  # noqa: PLC0415

    try:
        core, why = choose_backend("auto")
    except ReplayError as exc:  # REPLAY_CORE set to something it cannot be
        core, why = "none", str(exc)
    loops = (
        "C column loops and value writer"
        if codec.C_LOOPS
        else "Python column loops and marshal (storage/_columns.c was not built)"
    )
    scan = "C" if writer.C_SCAN else "Python (replay/recorder/_scan.c was not built)"
    return [
        ("recorder core", f"{core} ({why})"),
        ("recorder writer", f"{scan} index scan"),
        ("store codec", loops),
    ]


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Record a Python program line by line into a SQLite store, then read it back."""


_registered: list[str] = []


def register(names: tuple[str, ...] = SUBCOMMANDS) -> typer.Typer:
    """Import the named subcommand modules and add their commands to `app` (once each)."""
    for name in SUBCOMMANDS:
        if name in names and name not in _registered:
            importlib.import_module(f"replay.cli.{name}").register(app)
            _registered.append(name)
    return app


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (the program's, for `replay record`)."""
    args = sys.argv[1:] if argv is None else list(argv)
    wanted = args[0] if args and args[0] in SUBCOMMANDS else None
    try:
        if wanted == "record":
            from replay.cli import fastpath  # noqa: PLC0415 - only for `record`

            launch = fastpath.parse_record(args[1:])
            if launch is not None:
                return launch.run()
        command = typer.main.get_command(register((wanted,) if wanted else SUBCOMMANDS))
        result = command.main(args, prog_name="replay", standalone_mode=False)
        record = sys.modules.get("replay.cli.record")
        if record is not None and isinstance(result, record.Launch):
            return result.run()
        return result if isinstance(result, int) else OK
    except (ReplayError, StoreError) as error:
        return _fail(str(error), error.exit_code)
    except ClickException as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # `replay` alone: the help, as usual
            print(error.format_message(), file=sys.stderr)  # type: ignore[attr-defined]
            return USAGE
        return _fail(error.format_message(), error.exit_code)  # type: ignore[attr-defined]
    except typer.Abort:
        return _fail("aborted", ERR)
    except BrokenPipeError:
        _silence_stdout()
        return ERR
    except KeyboardInterrupt:
        return 128 + 2


def _fail(message: str, code: int) -> int:
    one_line = " ".join(message.split())
    print(f"replay: error: {one_line}", file=sys.stderr)
    return code


def _silence_stdout() -> None:
    """After a closed pipe (`replay ls | head`), keep the final flush from complaining."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
