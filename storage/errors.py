"""Errors raised by the store. Kept here so storage imports nothing from the rest of replay."""


class StoreError(Exception):
    """The store cannot be used: a sentence for the user, naming the file."""

    exit_code = 1


class NotAStoreError(StoreError):
    """The file exists but is not a replay store; it is never modified."""


class NoRecordingError(StoreError):
    """The store has no recording with that id (or none at all)."""
