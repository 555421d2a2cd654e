"""Secrets are masked wherever they appear: under a key, or inside any text."""

import pytest

from libs.log.redaction import REDACTED, is_sensitive_key, redact, redact_text

# Built at run time so that no token-shaped literal sits in the source.
_JWT = ".".join(["eyJhbGciOiJSUzI1NiJ9", "eyJzdWIiOiJ1c2VyLTEifQ", "c2lnbmF0dXJlLWJ5dGVz"])
_UNSIGNED_JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."


@pytest.mark.parametrize(
    "key",
    [
        "authorization",
        "Authorization",
        "X-Auth-Token",
        "refresh_token",
        "PASSWORD",
        "db_passwd",
        "client_secret",
        "jwt",
        "Set-Cookie",
        "api_key",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize("key", ["session_id", "op_id", "request_id", "user", "version"])
def test_ordinary_keys(key: str) -> None:
    assert not is_sensitive_key(key)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"got {_JWT} from client", f"got {REDACTED} from client"),
        (f"alg none: {_UNSIGNED_JWT}", f"alg none: {REDACTED}"),
        ("Authorization: Bearer abc.def-ghi", f"Authorization: Bearer {REDACTED}"),
        ("header bearer   opaque123, next", f"header bearer   {REDACTED}, next"),
        (
            "protocols syncbridge.v1, bearer.opaque123",
            f"protocols syncbridge.v1, bearer.{REDACTED}",
        ),
        ("GET /x?access_token=abc&page=2", f"GET /x?access_token={REDACTED}&page=2"),
        ("dsn password=hunter2 host=db", f"dsn password={REDACTED} host=db"),
        (
            "connect postgresql://core:hunter2@db:5432/sync failed",
            f"connect postgresql://core:{REDACTED}@db:5432/sync failed",
        ),
        ("amqp://guest:guest@mq/", f"amqp://guest:{REDACTED}@mq/"),
    ],
)
def test_text_is_scrubbed(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_plain_text_is_untouched() -> None:
    text = "session s-1 moved to device d-2 at version 7 (eyJ alone is no token)"
    assert redact_text(text) == text


def test_values_under_sensitive_keys_are_masked_at_any_depth() -> None:
    value = {
        "session_id": "s-1",
        "headers": {"Authorization": "Basic dXNlcjpwYXNz", "Accept": "*/*"},
        "attempts": [{"token": 123}, {"note": f"sent {_JWT}"}],
        "password": {"nested": "structure"},
    }
    assert redact(value) == {
        "session_id": "s-1",
        "headers": {"Authorization": REDACTED, "Accept": "*/*"},
        "attempts": [{"token": REDACTED}, {"note": f"sent {REDACTED}"}],
        "password": REDACTED,
    }


def test_result_is_json_ready() -> None:
    class Opaque:
        def __str__(self) -> str:
            return f"opaque carrying {_JWT}"

    assert redact((1, 2.5, None, True, float("nan"), Opaque(), b"x")) == [
        1,
        2.5,
        None,
        True,
        "nan",
        f"opaque carrying {REDACTED}",
        "b'x'",
    ]


def test_cyclic_structure_is_cut() -> None:
    cycle: list[object] = []
    cycle.append(cycle)
    assert "[TOO DEEP]" in str(redact(cycle))
