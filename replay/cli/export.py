"""`replay export`: one recording as a single JSON document (format in the README).

The document is streamed by `replay.export.export_json`; with `-o FILE` it goes to a temporary
file beside FILE that replaces FILE only once complete, so a failed export never leaves half a
document under the requested name.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from typing import IO, Annotated

import typer

from replay.cli.common import REC_CONTEXT, check_rec, store_path
from replay.cli.typer_app import RecArgument, StoreOption
from replay.exceptions import ReplayError, UsageError
from replay.export import export_json
from replay.reader import open_recording

FORMATS = ("json",)


def export(
    rec: RecArgument = None,
    *,
    store: StoreOption = None,
    output_format: Annotated[
        str, typer.Option("--format", metavar="[json]", help="Output format.")
    ] = "json",
    output: Annotated[
        str | None,
        typer.Option(
            "-o", "--output", metavar="FILE", help="Write to FILE instead of standard output."
        ),
    ] = None,
) -> None:
    """Export a recording: every step with its variables, calls, functions, as JSON."""
    if output_format not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {output_format!r}")
    with open_recording(store_path(store), check_rec(rec)) as reader:
        if output in (None, "-"):
            export_json(reader, sys.stdout)
            return
        assert output is not None
        _export_to_file(output, lambda out: export_json(reader, out))


def _export_to_file(path: str, write: Callable[[IO[str]], None]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(prefix=".replay-export-", dir=directory)
    except OSError as error:
        raise ReplayError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it 0600; give the usual mode
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            write(out)
        os.replace(temporary, path)
    except OSError as error:
        raise ReplayError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def register(app: typer.Typer) -> None:
    """Add `export` to the app."""
    app.command(
        "export",
        context_settings=REC_CONTEXT,
        short_help="Export a recording as one JSON document.",
    )(export)
