"""The engine's errors: each one a sentence for the user (the CLI prints it on one line)."""

from __future__ import annotations

from replay.exceptions import ReplayError


class EngineError(ReplayError):
    """A request the recording cannot answer (no such step, thread, call, breakpoint...)."""


class ExpressionError(EngineError):
    """An expression or condition that cannot be parsed or evaluated over recorded values."""
