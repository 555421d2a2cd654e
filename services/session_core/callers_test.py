"""The user of a call is its verified token's `sub`, and nobody it merely names."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.auth import testing
from libs.auth.config import JwtConfig
from libs.auth.verifier import JwtVerifier
from libs.identity import identity
from services.session_core.callers import (
    PermissionDenied,
    Unauthenticated,
    call_user,
    update_user,
)


@pytest.fixture(scope="module")
def key() -> testing.PrivateKey:
    return testing.ec_key()


@pytest.fixture
def verifier(tmp_path: Path, key: testing.PrivateKey) -> JwtVerifier:
    return JwtVerifier(
        JwtConfig(
            audience=testing.AUDIENCE,
            issuer=testing.ISSUER,
            algorithms=("ES256",),
            leeway_seconds=0,
            public_key_path=testing.write_pem(tmp_path / "k.pem", key),
        )
    )


def token(key: testing.PrivateKey, user: str, lifetime: float = 300) -> str:
    return testing.sign(testing.claims(lifetime, sub=user), key, "ES256")


def test_the_user_is_the_tokens_sub(verifier: JwtVerifier, key: testing.PrivateKey) -> None:
    bearer = f"Bearer {token(key, 'alice')}"
    assert call_user(verifier, {"authorization": bearer}) == "alice"
    assert call_user(verifier, {"authorization": bearer, "x-syncbridge-user": "alice"}) == "alice"
    assert update_user(verifier, token(key, "alice"), "alice") == "alice"
    assert update_user(verifier, token(key, "alice"), "") == "alice"


def test_naming_another_user_is_denied(verifier: JwtVerifier, key: testing.PrivateKey) -> None:
    bearer = f"Bearer {token(key, 'alice')}"
    with pytest.raises(PermissionDenied) as denied:
        call_user(verifier, {"authorization": bearer, "x-syncbridge-user": "bob"})
    assert denied.value.code == "permission_denied"
    with pytest.raises(PermissionDenied):
        update_user(verifier, token(key, "alice"), "bob")


@pytest.mark.parametrize("user", ["alice", "é" * 300, "line\nbreak", "😀 \u202e", "x" * 4000])
def test_any_user_id_is_named_in_binary_metadata(
    verifier: JwtVerifier, key: testing.PrivateKey, user: str
) -> None:
    metadata: dict[str, str | bytes] = {
        "authorization": f"Bearer {token(key, user)}",
        identity.METADATA_KEY: identity.to_metadata(user),
    }
    assert call_user(verifier, metadata) == user


@pytest.mark.parametrize(
    "named",
    [
        {identity.METADATA_KEY: identity.to_metadata("bob")},
        {identity.METADATA_KEY: b"\xff\xfe"},  # not UTF-8: names nobody, so not alice
        {identity.METADATA_KEY: b"alice\x00"},  # no user id
        {identity.METADATA_KEY: "alice"},  # not binary: never what the edge sends
        {identity.METADATA_KEY: identity.to_metadata("alice"), "x-syncbridge-user": "bob"},
        {identity.METADATA_KEY: identity.to_metadata("bob"), "x-syncbridge-user": "alice"},
    ],
)
def test_naming_another_user_in_any_header_is_denied(
    verifier: JwtVerifier, key: testing.PrivateKey, named: dict[str, str | bytes]
) -> None:
    metadata: dict[str, str | bytes] = {"authorization": f"Bearer {token(key, 'alice')}", **named}
    with pytest.raises(PermissionDenied) as denied:
        call_user(verifier, metadata)
    assert denied.value.code == "permission_denied"


def test_a_named_user_never_stands_in_for_the_token(verifier: JwtVerifier) -> None:
    with pytest.raises(Unauthenticated) as refused:
        call_user(verifier, {identity.METADATA_KEY: identity.to_metadata("alice")})
    assert refused.value.message.startswith("token_missing")


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ({}, "token_missing"),
        ({"x-syncbridge-user": "alice"}, "token_missing"),  # the edge's word alone
        ({"authorization": "Basic YWxpY2U6"}, "token_malformed"),
        ({"authorization": "Bearer not-a-jwt"}, "token_malformed"),
    ],
)
def test_no_usable_token_is_unauthenticated(
    verifier: JwtVerifier, metadata: dict[str, str], reason: str
) -> None:
    with pytest.raises(Unauthenticated) as refused:
        call_user(verifier, metadata)
    assert refused.value.code == "unauthenticated"
    assert refused.value.message.startswith(reason)


def test_expired_and_foreign_tokens_are_unauthenticated(
    verifier: JwtVerifier, key: testing.PrivateKey
) -> None:
    with pytest.raises(Unauthenticated) as expired:
        update_user(verifier, token(key, "alice", lifetime=-60), "alice")
    assert expired.value.message.startswith("token_expired")
    stranger = testing.sign(testing.claims(sub="alice"), testing.ec_key(), "ES256")
    with pytest.raises(Unauthenticated) as forged:
        call_user(verifier, {"authorization": f"Bearer {stranger}"})
    assert forged.value.message.startswith("token_invalid")
