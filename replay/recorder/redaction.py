"""Which names hold secrets: the one place that decides what the recorder must not keep.

The snapshot encoder asks `Redactor.is_secret(name)` for every variable name, dict key, attribute
name and header-pair name it meets, and stores `(V_REDACTED, type_name)` instead of the value when
the answer is yes. Redaction happens on the traced thread, before a value reaches any buffer,
chunk, compression dictionary or file (trap 5), so a secret never exists outside the program.

Patterns are Python regular expressions, searched anywhere in the name, case-insensitively
(`token` matches `AUTH_TOKEN`, `csrf_token` and `x-token`). Answers are cached per name because
the same few hundred names come back on every line; the cache is bounded so a program that
makes up names (e.g. dict keys from data) cannot grow it without limit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from replay.exceptions import ConfigError

__all__ = ["DEFAULT_PATTERNS", "Redactor"]

# Names that usually hold credentials. Each is a regular expression searched anywhere in the name.
# `auth(?!or)` keeps `author`/`authority`-style names (common in apps) out; every other `auth...`
# (`auth`, `oauth_state`, `auth_header`, `authorization`) is a secret.
DEFAULT_PATTERNS: tuple[str, ...] = (
    r"passw(?:or)?d",  # password, passwd, db_password
    r"passphrase",
    r"pwd",
    r"secret",  # client_secret, SECRET_KEY
    r"token",  # AUTH_TOKEN, csrftoken, refresh_token
    r"api[_-]?key",  # api_key, apikey, X-Api-Key
    r"authori[sz]ation",
    r"auth(?!or)",
    r"cookie",  # cookie, set-cookie
    r"session",  # session, sessionid, user_session
    r"sessid",  # PHPSESSID
    r"credential",  # credential, credentials
    r"private[_-]?key",  # private_key, privatekey
    r"csrf",
    r"xsrf",
    r"jwt",
    r"bearer",
    r"signature",
)

_CACHE_MAX = 4096
_PATTERN_HELP = "patterns are regular expressions searched anywhere in the name, ignoring case"


class Redactor:
    """Answers "does this name look like it holds a secret?", quickly and with a bounded cache."""

    __slots__ = ("_cache", "_compiled", "patterns")

    def __init__(self, patterns: Sequence[str] | None = None, *, defaults: bool = True) -> None:
        chosen: list[str] = list(DEFAULT_PATTERNS) if defaults else []
        if isinstance(patterns, str):  # a lone string is a common slip for a one-item list
            patterns = [patterns]
        for pattern in patterns or ():
            if not isinstance(pattern, str):
                raise ConfigError(f"bad redaction pattern {pattern!r}: not a string")
            if not pattern:
                raise ConfigError("bad redaction pattern '': it would match every name")
            try:
                re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                raise ConfigError(
                    f"bad redaction pattern {pattern!r}: {exc} ({_PATTERN_HELP})"
                ) from None
            chosen.append(pattern)
        self.patterns: tuple[str, ...] = tuple(chosen)
        self._compiled = tuple(re.compile(p, re.IGNORECASE) for p in chosen)
        # Shared with SnapshotEncoder, which reads it directly on its hot path: keep it one dict
        # for the redactor's lifetime (clear it in place, never rebind it).
        self._cache: dict[str, bool] = {}

    def is_secret(self, name: str) -> bool:
        """True when `name` matches one of the patterns."""
        hit = self._cache.get(name)
        if hit is None:
            hit = self._match(name)
        return hit

    def _match(self, name: str) -> bool:
        hit = any(p.search(name) is not None for p in self._compiled)
        cache = self._cache
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[name] = hit
        return hit

    def __repr__(self) -> str:
        return f"Redactor({len(self.patterns)} patterns)"
