"""`replay ls`: the recordings in a store, oldest first, as a table or as JSON.

The JSON form is a list with one object per recording; its fields are documented in the README
("replay ls --json") and are a contract: add fields, never rename or drop them.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer

from replay.cli.common import (
    display_path,
    effective_status,
    human_duration,
    iso_time,
    local_time,
    store_path,
)
from replay.cli.typer_app import StoreOption
from replay.exceptions import StoreError
from replay.storage import Store

_COMMAND_WIDTH = 48


def ls(
    *,
    store: StoreOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="A JSON list of recordings, for programs.")
    ] = False,
) -> None:
    """List the recordings in the store, newest last."""
    path = store_path(store)
    try:
        with Store.open(path, mode="r") as opened:
            rows = [summarise(row) for row in opened.recordings()]
    except StoreError as error:
        if not os.path.lexists(path):
            raise StoreError(
                f"{path} does not exist; record something first: replay record script.py"
            ) from error
        raise
    if as_json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif not rows:
        print(f"No recordings in {display_path(path)} yet. Make one: replay record script.py")
    else:
        print(render_table(rows))


def summarise(row: dict[str, Any]) -> dict[str, Any]:
    """One recording as `ls --json` shows it."""
    started, ended = row.get("started_at"), row.get("ended_at")
    exception = None
    if row.get("exception_type"):
        exception = {"type": row["exception_type"], "message": row.get("exception_message")}
    return {
        "id": row["id"],
        "name": row.get("name"),
        "command": row.get("command"),
        "start": iso_time(started),
        "started_at": started,
        "ended_at": ended,
        "duration": (ended - started) if started is not None and ended is not None else None,
        "steps": row.get("steps") or 0,
        "status": effective_status(row),
        "exit_code": row.get("exit_code"),
        "exception": exception,
        "pid": row.get("pid"),
        "parent_id": row.get("parent_id"),
        "host": row.get("host"),
        "python": row.get("python"),
        "backend": row.get("backend"),
    }


def render_table(rows: list[dict[str, Any]]) -> str:
    """The human table: one line per recording."""
    header = ("ID", "START", "DURATION", "STEPS", "STATUS", "COMMAND", "EXCEPTION")
    lines = [
        (
            str(row["id"]),
            local_time(row["started_at"]),
            human_duration(row["duration"]),
            f"{row['steps']:,}",
            row["status"] + (f" ({row['exit_code']})" if _show_code(row) else ""),
            _short_command(row),
            _exception_text(row["exception"]),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    right = {0, 2, 3}
    return "\n".join(
        "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ).rstrip()
        for line in [header, *lines]
    )


def _show_code(row: dict[str, Any]) -> bool:
    return row["status"] == "failed" and row["exit_code"] not in (None, 1)


def _short_command(row: dict[str, Any]) -> str:
    text = row["command"] or ""
    if row.get("name"):
        text = f"[{row['name']}] {text}"
    text = " ".join(text.split())
    return text if len(text) <= _COMMAND_WIDTH else text[: _COMMAND_WIDTH - 3] + "..."


def _exception_text(exception: dict[str, Any] | None) -> str:
    if not exception:
        return ""
    message = " ".join(str(exception.get("message") or "").split())
    text = f"{exception['type']}: {message}" if message else str(exception["type"])
    return text if len(text) <= 60 else text[:57] + "..."


def register(app: typer.Typer) -> None:
    """Add `ls` to the app."""
    app.command("ls", short_help="List the recordings in a store, newest last.")(ls)
