"""A remembered token is the same bytes that passed, and still expires on time."""

from pathlib import Path

import pytest

from libs.auth.claims import Claims
from libs.auth.config import JwtConfig
from libs.auth.errors import AuthError, AuthErrorCode
from libs.auth.testing import AUDIENCE, ISSUER, PrivateKey, claims, ec_key, sign, write_pem
from libs.auth.verified import RememberingVerifier
from libs.auth.verifier import JwtVerifier


class Counting:
    """The real verifier, counting how often it is asked."""

    def __init__(self, inner: JwtVerifier) -> None:
        self.inner = inner
        self.calls = 0

    def verify(self, token: str | None) -> Claims:
        self.calls += 1
        return self.inner.verify(token)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Counting, PrivateKey]:
    key = ec_key()
    config = JwtConfig(
        audience=AUDIENCE, issuer=ISSUER, public_key_path=write_pem(tmp_path / "k.pem", key)
    )
    return Counting(JwtVerifier(config)), key


def test_a_token_seen_before_is_not_checked_again(setup: tuple[Counting, PrivateKey]) -> None:
    inner, key = setup
    verifier = RememberingVerifier(inner, leeway_seconds=0)
    token = sign(claims(sub="alice"), key, "ES256")
    assert verifier.verify(token).sub == "alice"
    assert verifier.verify(token).sub == "alice"
    assert inner.calls == 1


def test_a_forged_token_is_never_remembered(setup: tuple[Counting, PrivateKey]) -> None:
    inner, key = setup
    verifier = RememberingVerifier(inner, leeway_seconds=0)
    token = sign(claims(sub="alice"), key, "ES256")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(AuthError) as refused:
            verifier.verify(forged)
        assert refused.value.code == AuthErrorCode.INVALID
    assert inner.calls == 2


def test_a_remembered_token_expires_by_the_clock(setup: tuple[Counting, PrivateKey]) -> None:
    inner, key = setup
    now = [0.0]
    verifier = RememberingVerifier(inner, leeway_seconds=5, clock=lambda: now[0])
    token = sign(claims(lifetime=60, sub="alice"), key, "ES256")
    exp = verifier.verify(token).exp
    now[0] = exp + 5  # within the leeway
    assert verifier.verify(token).sub == "alice"
    now[0] = exp + 6
    with pytest.raises(AuthError) as refused:
        verifier.verify(token)
    assert refused.value.code == AuthErrorCode.EXPIRED


def test_missing_token_and_capacity(setup: tuple[Counting, PrivateKey]) -> None:
    inner, key = setup
    verifier = RememberingVerifier(inner, leeway_seconds=0, capacity=1)
    with pytest.raises(AuthError) as refused:
        verifier.verify("")
    assert refused.value.code == AuthErrorCode.MISSING
    first = sign(claims(sub="a"), key, "ES256")
    second = sign(claims(sub="b"), key, "ES256")
    verifier.verify(first)
    verifier.verify(second)  # pushes `first` out
    verifier.verify(first)
    assert inner.calls == 3
