"""Redactor: the default patterns, custom patterns, errors and the bounded cache."""

from __future__ import annotations

import pytest

from replay.exceptions import ConfigError
from replay.recorder import redaction
from replay.recorder.redaction import Redactor

SECRET_NAMES = [
    "password",
    "db_password",
    "PASSWORD",
    "passwd",
    "pwd",
    "MYSQL_PWD",
    "passphrase",
    "secret",
    "client_secret",
    "SECRET_KEY",
    "token",
    "AUTH_TOKEN",
    "csrftoken",
    "refresh_token",
    "api_key",
    "apikey",
    "api-key",
    "X-Api-Key",
    "authorization",
    "Authorization",
    "auth",
    "oauth_state",
    "cookie",
    "set-cookie",
    "Set-Cookie",
    "session",
    "sessionid",
    "PHPSESSID",
    "credential",
    "credentials",
    "aws_credentials",
    "private_key",
    "privatekey",
    "csrf",
    "XSRF-TOKEN",
    "jwt",
    "bearer",
    "signature",
    "x_hub_signature",
]
PLAIN_NAMES = [
    "author",
    "authors",
    "authority",
    "user",
    "username",
    "count",
    "key",
    "keys",
    "monkey",
    "path",
    "data",
    "headers",
    "name",
    "passage",
    "compass",
    "i",
    "self",
    "request",
    "value",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_default_patterns_catch_secrets(name: str) -> None:
    assert Redactor().is_secret(name)


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_default_patterns_leave_ordinary_names(name: str) -> None:
    assert not Redactor().is_secret(name)


def test_custom_patterns_add_to_defaults() -> None:
    r = Redactor([r"^ssn$", "card_?number"])
    assert r.is_secret("ssn") and r.is_secret("CardNumber") and r.is_secret("password")
    assert not r.is_secret("ssn_count")


def test_defaults_can_be_turned_off() -> None:
    r = Redactor(["ssn"], defaults=False)
    assert r.is_secret("SSN")
    assert not r.is_secret("password")
    assert not Redactor(defaults=False).is_secret("password")


def test_a_single_string_is_one_pattern() -> None:
    assert Redactor("ssn", defaults=False).is_secret("ssn")


@pytest.mark.parametrize("bad", ["*token*", "(unclosed", "", 5])
def test_bad_patterns_raise_config_error(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        Redactor([bad])  # type: ignore[list-item]
    message = str(info.value)
    assert "\n" not in message
    assert "redaction pattern" in message


def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redaction, "_CACHE_MAX", 10)
    r = Redactor()
    cache = r._cache
    for i in range(100):
        r.is_secret(f"name{i}")
        assert len(r._cache) <= 10
    assert r._cache is cache  # cleared in place: the encoder holds a reference to it
    assert r.is_secret("token") and not r.is_secret("name1")
