"""The errors replay reports to its users, and the one exit-code table the CLI uses.

Every error a user can cause (bad input, a file that is not a store, an unknown recording) is a
ReplayError with a message written for that user; the CLI prints it on one line and exits with
`exit_code`. Anything else escaping the CLI is a bug in replay.
"""

from __future__ import annotations

from replay.storage.errors import NoRecordingError, NotAStoreError, StoreError

OK = 0
ERR = 1
USAGE = 2

__all__ = [
    "ERR",
    "OK",
    "USAGE",
    "ConfigError",
    "NoRecordingError",
    "NotAStoreError",
    "ReplayError",
    "StoreError",
    "UsageError",
]


class ReplayError(Exception):
    """An error to show the user as one line, then exit with `exit_code`."""

    exit_code = ERR

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(ReplayError):
    """The command line is wrong (unknown option, missing script or module)."""

    exit_code = USAGE


class ConfigError(ReplayError):
    """A setting has a value replay cannot use (a bad glob, a bad redaction pattern)."""
