"""Pieces every subcommand shares: --store's help, REC checks, paths and times for people.

Nothing here prints; the commands decide what to show. Nothing here imports Typer either:
`replay record` uses this module on its fast path (cli/fastpath.py), where Typer is never loaded;
the Typer declarations the reading commands share are in cli/typer_app.py.
"""

from __future__ import annotations

import os
import re
import sys
import time

from replay.config import DEFAULT_STORE_NAME, ENV_STORE, default_store_path
from replay.exceptions import UsageError

STORE_HELP = f"The store file. Default: ${ENV_STORE} if set, else ./{DEFAULT_STORE_NAME}."
"""The help of every command's --store option."""

# show/export accept `-1`, `-2`... as REC; click would read them as unknown options.
REC_CONTEXT = {"ignore_unknown_options": True}
_NEGATIVE = re.compile(r"-\d+")


def store_path(option: str | None) -> str:
    """The absolute store path from --store, or the default."""
    return os.path.abspath(option) if option else default_store_path()


def check_rec(rec: str | None) -> str | None:
    """Let `-N` through as a REC; any other dash word was an unknown option."""
    if rec is not None and rec.startswith("-") and not _NEGATIVE.fullmatch(rec):
        raise UsageError(f"No such option: {rec}")
    return rec


def display_path(path: str, cwd: str | None = None) -> str:
    """`path` relative to `cwd` (default: the current directory) when it is below it."""
    base = cwd or os.getcwd()
    try:
        relative = os.path.relpath(path, base)
    except ValueError:  # another drive
        return path
    return path if relative.startswith(os.pardir) else relative


def local_time(epoch: float | None) -> str:
    """`2025-11-26 13:05:01`, in local time; empty for None."""
    if epoch is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def iso_time(epoch: float | None) -> str | None:
    """ISO 8601 local time with its UTC offset, for JSON."""
    if epoch is None:
        return None
    from datetime import datetime  # noqa: PLC0415 - for the reading commands only

    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="milliseconds")


def human_duration(seconds: float | None) -> str:
    """`0.25 s`, `12.3 s`, `4 min 05 s`, `2 h 03 min`; `-` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def stderr_is_terminal() -> bool:
    """True when people read stderr (the end-of-recording line is for them only)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def effective_status(recording: dict[str, object]) -> str:
    """The status to show: 'running' becomes 'incomplete' when its process is gone.

    A process is gone when it ran on this host and its pid is dead, a zombie, or now belongs
    to a process that started after the recording did (the pid was reused).
    """
    status = str(recording.get("status") or "?")
    if status != "running":
        return status
    pid, host = recording.get("pid"), recording.get("host")
    if not isinstance(pid, int) or host != _hostname():
        return status
    started = recording.get("started_at")
    alive = _process_alive(pid, started if isinstance(started, float | int) else None)
    return status if alive else "incomplete"


def _hostname() -> str:
    import socket  # noqa: PLC0415 - for the reading commands only, not a recorded process

    return socket.gethostname()


def _process_alive(pid: int, started_at: float | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive
    stat = _proc_stat(pid)
    if stat is None:  # no /proc (not Linux): trust kill()
        return True
    state, start = stat
    if state in ("Z", "X"):
        return False
    return started_at is None or start is None or start <= started_at + 2.0


def _proc_stat(pid: int) -> tuple[str, float | None] | None:
    """(state letter, start time in epoch seconds) from /proc, or None without /proc."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    state = fields[0]
    try:
        ticks = int(fields[19])  # field 22 of the man page: starttime, clock ticks after boot
        return state, _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    except (ValueError, IndexError, OSError):
        return state, None


def _boot_time() -> float:
    with open("/proc/stat") as file:
        for line in file:
            if line.startswith("btime "):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")
