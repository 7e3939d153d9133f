"""The Typer app: every command line that `replay.cli.fastpath` does not parse ends up here.

Each subcommand lives in its own module (`record`, `ls`, `show`, `export`, `debug`) and registers
itself on `app`. The modules are imported on demand: `replay CMD ...` imports and registers only
CMD (the recorded process of `replay record` must not carry the engine, the export code or the
reader), anything else (`replay`, `--help`, an unknown command) registers them all.

This module, and with it Typer (and click, bundled in it), is imported only when Typer parses
the command line: `replay.cli` imports it lazily, so that a recorded process parsed by the fast
path never loads it. It also holds the Typer declarations the reading subcommands share.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from replay import __version__
from replay.cli.common import STORE_HELP
from replay.exceptions import OK, USAGE, ReplayError

if TYPE_CHECKING:
    from replay.cli.record import Launch

SUBCOMMANDS = ("record", "ls", "show", "export", "debug")
"""The subcommand modules of replay.cli, in the order `replay --help` lists them."""

StoreOption = Annotated[
    str | None,
    typer.Option("--store", metavar="PATH", help=STORE_HELP, show_default=False),
]

RecArgument = Annotated[
    str | None,
    typer.Argument(
        metavar="[REC]",
        help="A recording id (see `replay ls`), `latest` (the default), or -N: N-th from the end.",
        show_default=False,
    ),
]

# Typer bundles its own copy of click in recent versions (typer._click) and depends on click in
# older ones; reach click's classes through typer's public names so either works.
ClickException: type[Exception] = next(
    klass for klass in typer.BadParameter.__mro__ if klass.__name__ == "ClickException"
)

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
    from replay import object_records  # noqa: PLC0415
    from replay.recorder import writer  # noqa: PLC0415
    from replay.recorder.core import choose_backend  # noqa: PLC0415
    from replay.storage import codec, recording_writer  # noqa: PLC0415

    try:
        core, why = choose_backend("auto")
    except ReplayError as exc:  # REPLAY_CORE set to something it cannot be
        core, why = "none", str(exc)
    loops = (
        "C column loops and value writer"
        if codec.C_LOOPS
        else "Python column loops and marshal (storage/_columns.c was not built)"
    )
    scan = "C index scan" if writer.C_SCAN else "Python index scan (_scan.c was not built)"
    if writer.RECORDS and codec.C_CALL_BLOCKS:
        scan += ", calls packed as records into their blocks"
    if codec.LIBZSTD is not None:
        version = codec.LIBZSTD
        release = f"{version // 10000}.{version // 100 % 100}.{version % 100}"
        zstd = f"libzstd {release}, with the values in one release of the GIL"
    else:
        zstd = "python-zstandard (no libzstd found to call without the GIL)"
    expansion = (
        "C expansion of object records"
        if object_records._c_walk is not None
        else "Python expansion of object records (replay/_expand.c was not built)"
    )
    direct = recording_writer.direct_sqlite()
    if direct is not None:
        writes = f"SQLite {direct} through its C API, a write in one release of the GIL"
    else:
        writes = "the sqlite3 module (its SQLite cannot be called directly here)"
    return [
        ("recorder core", f"{core} ({why})"),
        ("recorder writer", scan),
        ("store codec", loops),
        ("chunk compression", zstd),
        ("store writes", writes),
        ("reader", expansion),
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


def run(args: list[str]) -> int | Launch:
    """Parse and run `replay ARGS...` with Typer: the exit code, or the Launch of `record`.

    click's errors (usage errors: exit 2) and its Abort (exit 1) become ReplayErrors with
    click's message and exit code, for `replay.cli.main` to report as it reports replay's own.
    """
    wanted = args[0] if args and args[0] in SUBCOMMANDS else None
    command = typer.main.get_command(register((wanted,) if wanted else SUBCOMMANDS))
    try:
        result = command.main(args, prog_name="replay", standalone_mode=False)
    except ClickException as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # `replay` alone: the help, as usual
            print(error.format_message(), file=sys.stderr)  # type: ignore[attr-defined]
            return USAGE
        message = error.format_message()  # type: ignore[attr-defined]
        raise ReplayError(message, exit_code=error.exit_code) from None  # type: ignore[attr-defined]
    except typer.Abort:
        raise ReplayError("aborted") from None
    record = sys.modules.get("replay.cli.record")
    if record is not None and isinstance(result, record.Launch):
        return result
    return result if isinstance(result, int) else OK
