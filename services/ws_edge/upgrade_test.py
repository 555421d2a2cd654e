"""Before the upgrade: Origin allowlist (403), then a token from header or subprotocol (401)."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.auth import testing
from libs.auth.config import JwtConfig
from libs.auth.errors import AuthError, AuthErrorCode
from libs.auth.verifier import JwtVerifier
from libs.protocol.codes import ErrorCode
from services.ws_edge.upgrade import Accepted, Refusal, authorize, find_token, origin_refusal

KEY = testing.rsa_key()


@pytest.fixture
def verifier(tmp_path: Path) -> JwtVerifier:
    path = testing.write_pem(tmp_path / "key.pem", KEY)
    return JwtVerifier(
        JwtConfig(audience=testing.AUDIENCE, issuer=testing.ISSUER, public_key_path=path)
    )


def decide(verifier: JwtVerifier, headers: dict[str, str], query: str | None = None) -> object:
    return authorize(
        headers,
        query,
        verifier,
        allowed_origins=("https://app.harmonyflow.io",),
        allow_missing_origin=True,
        allow_query_token=False,
    )


def test_origin_allowlist_is_exact() -> None:
    allowed = ("https://app.harmonyflow.io",)
    assert origin_refusal("https://app.harmonyflow.io", allowed, True) is None
    assert origin_refusal("https://app.harmonyflow.io/", allowed, True) is None
    for bad in ("https://app.harmonyflow.io.evil", "http://app.harmonyflow.io", "null"):
        refusal = origin_refusal(bad, allowed, True)
        assert refusal is not None and refusal.status == 403
    assert origin_refusal(None, allowed, True) is None
    assert origin_refusal(None, allowed, False) == Refusal(
        403, ErrorCode.FORBIDDEN, "Origin header required"
    )


def test_token_sources_in_order() -> None:
    assert find_token("Bearer a", "syncbridge.v1, bearer.b", "c", allow_query=True) == (
        "a",
        "header",
    )
    assert find_token(None, "syncbridge.v1, bearer.b", "c", allow_query=True) == (
        "b",
        "subprotocol",
    )
    assert find_token(None, None, "c", allow_query=True) == ("c", "query")
    with pytest.raises(AuthError) as missing:
        find_token(None, None, "c", allow_query=False)
    assert missing.value.code is AuthErrorCode.MISSING


def test_valid_token_is_accepted(verifier: JwtVerifier) -> None:
    token = testing.sign(testing.claims(sub="alice"), KEY, "RS256")
    decision = decide(verifier, {"authorization": f"Bearer {token}"})
    assert isinstance(decision, Accepted) and decision.claims.sub == "alice"
    browser = decide(
        verifier,
        {
            "origin": "https://app.harmonyflow.io",
            "sec-websocket-protocol": f"syncbridge.v1, bearer.{token}",
        },
    )
    assert isinstance(browser, Accepted) and browser.token_source == "subprotocol"  # noqa: S105


def test_refusals(verifier: JwtVerifier) -> None:
    good = testing.sign(testing.claims(), KEY, "RS256")
    forged = testing.sign(testing.claims(), testing.rsa_key(), "RS256")
    expired = testing.sign(testing.claims(lifetime=-3600), KEY, "RS256")
    cases = [
        ({"origin": "https://evil.example", "authorization": f"Bearer {good}"}, 403, None),
        ({}, 401, "token_missing"),
        ({"authorization": f"Bearer {forged}"}, 401, "token_invalid"),
        ({"authorization": f"Bearer {expired}"}, 401, "token_expired"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, 401, "token_malformed"),
        ({"sec-websocket-protocol": f"bearer.{good}"}, 401, "token_malformed"),
    ]
    for headers, status, message in cases:
        decision = decide(verifier, headers)
        assert isinstance(decision, Refusal), headers
        assert decision.status == status
        if message is not None:
            assert decision.message == message
