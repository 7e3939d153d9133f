"""replay's command line: the one place where errors become exit codes.

`replay record ...` is parsed by `replay.cli.fastpath` whenever it can, without Typer: the
recorded program runs in this very process, and Typer with its bundled click (about 30 ms) and
pydantic (which Typer's parser loads, about 50 ms more) would be start-up time of the program.
Everything else (`replay record --help`, what the fast path declines, the other subcommands)
goes to the Typer app in `replay.cli.typer_app`, imported only then.

`main()` turns every error a user can cause into one line on stderr, `replay: error: ...`, and
an exit code from `replay.exceptions`: ReplayError and StoreError (exit 1, or their own code),
click's usage errors (exit 2, handed over by `typer_app.run` as ReplayErrors). Bad input never
prints a traceback. The recorded program's own exceptions and exit code are not errors of
replay's: `record` hands back a `Launch` that runs after the parser has returned, and the
program's SystemExit passes through untouched.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from replay.exceptions import ERR, ReplayError, StoreError

if TYPE_CHECKING:
    from replay.cli.record import Launch


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (the program's, for `replay record`)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        outcome = _parse(args)
        return outcome if isinstance(outcome, int) else outcome.run()
    except (ReplayError, StoreError) as error:
        return _fail(str(error), error.exit_code)
    except BrokenPipeError:
        _silence_stdout()
        return ERR
    except KeyboardInterrupt:
        return 128 + 2


def _parse(args: list[str]) -> int | Launch:
    """The Launch of `replay record`, or the exit code of any other command (already run)."""
    if args[:1] == ["record"]:
        from replay.cli import fastpath  # noqa: PLC0415 - only for `record`

        launch = fastpath.parse_record(args[1:])
        if launch is not None:
            return launch
    from replay.cli import typer_app  # noqa: PLC0415 - Typer only when the fast path cannot do

    return typer_app.run(args)


def _fail(message: str, code: int) -> int:
    one_line = " ".join(message.split())
    print(f"replay: error: {one_line}", file=sys.stderr)
    return code


def _silence_stdout() -> None:
    """After a closed pipe (`replay ls | head`), keep the final flush from complaining."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
