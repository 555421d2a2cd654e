"""Every forged or out-of-policy token is refused with its stable code; good ones pass."""

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from libs.auth.config import JwtConfig
from libs.auth.errors import AuthError, AuthErrorCode
from libs.auth.testing import (
    AUDIENCE,
    ISSUER,
    assemble,
    b64url,
    claims,
    ec_key,
    public_jwk,
    public_pem,
    rsa_key,
    sign,
    write_jwks,
    write_pem,
)
from libs.auth.verifier import JwtVerifier


@pytest.fixture(scope="module")
def rsa_private() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture(scope="module")
def ec_private() -> ec.EllipticCurvePrivateKey:
    return ec_key()


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def jwks_verifier(
    key_dir: Path, rsa_private: rsa.RSAPrivateKey, ec_private: ec.EllipticCurvePrivateKey
) -> JwtVerifier:
    path = write_jwks(
        key_dir / "jwks.json", public_jwk(rsa_private, "rsa-1"), public_jwk(ec_private, "ec-1")
    )
    return JwtVerifier(JwtConfig(audience=AUDIENCE, issuer=ISSUER, jwks_path=path))


@pytest.fixture(scope="module")
def pem_verifier(key_dir: Path, rsa_private: rsa.RSAPrivateKey) -> JwtVerifier:
    path = write_pem(key_dir / "rsa.pem", rsa_private)
    return JwtVerifier(JwtConfig(audience=AUDIENCE, issuer=ISSUER, public_key_path=path))


def _refusal(verifier: JwtVerifier, token: str | None) -> AuthErrorCode:
    with pytest.raises(AuthError) as caught:
        verifier.verify(token)
    if token:
        # Nothing of the token may reach a log through the error message.
        for segment in token.split("."):
            assert len(segment) < 8 or segment not in str(caught.value)
    return caught.value.code


# Good tokens.


def test_good_rs256_token_passes(
    jwks_verifier: JwtVerifier, rsa_private: rsa.RSAPrivateKey
) -> None:
    payload = claims()
    verified = jwks_verifier.verify(sign(payload, rsa_private, "RS256", kid="rsa-1"))
    assert (verified.sub, verified.iss, verified.aud, verified.jti) == (
        "user-1",
        ISSUER,
        (AUDIENCE,),
        "jti-1",
    )
    assert (verified.exp, verified.iat) == (payload["exp"], payload["iat"])
    assert verified.raw == payload


def test_good_es256_token_passes(
    jwks_verifier: JwtVerifier, ec_private: ec.EllipticCurvePrivateKey
) -> None:
    token = sign(claims(jti=None), ec_private, "ES256", kid="ec-1")
    verified = jwks_verifier.verify(token)
    assert verified.sub == "user-1"
    assert verified.jti is None


def test_good_token_with_pem_key_passes(
    pem_verifier: JwtVerifier, rsa_private: rsa.RSAPrivateKey
) -> None:
    assert pem_verifier.verify(sign(claims(), rsa_private, "RS256")).sub == "user-1"


def test_audience_list_containing_ours_passes(
    pem_verifier: JwtVerifier, rsa_private: rsa.RSAPrivateKey
) -> None:
    token = sign(claims(aud=["other", AUDIENCE]), rsa_private, "RS256")
    assert pem_verifier.verify(token).aud == ("other", AUDIENCE)


# Forged tokens.


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(
    jwks_verifier: JwtVerifier, pem_verifier: JwtVerifier, alg: str
) -> None:
    token = assemble({"alg": alg, "typ": "JWT", "kid": "rsa-1"}, claims(), b"")
    assert _refusal(jwks_verifier, token) == AuthErrorCode.INVALID
    assert _refusal(pem_verifier, token) == AuthErrorCode.INVALID


def test_hs256_signed_with_the_public_pem_is_refused(
    jwks_verifier: JwtVerifier, pem_verifier: JwtVerifier, rsa_private: rsa.RSAPrivateKey
) -> None:
    # The classic key-confusion forgery: the public key, known to all, as HMAC secret.
    header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
    unsigned = assemble(header, claims(), b"").rsplit(".", 1)[0]
    mac = hmac.new(public_pem(rsa_private), unsigned.encode(), hashlib.sha256).digest()
    token = f"{unsigned}.{b64url(mac)}"
    assert _refusal(jwks_verifier, token) == AuthErrorCode.INVALID
    assert _refusal(pem_verifier, token) == AuthErrorCode.INVALID


def test_unknown_kid_is_refused(jwks_verifier: JwtVerifier, rsa_private: rsa.RSAPrivateKey) -> None:
    token = sign(claims(), rsa_private, "RS256", kid="rsa-2")
    assert _refusal(jwks_verifier, token) == AuthErrorCode.INVALID


def test_missing_kid_with_several_keys_is_refused(
    jwks_verifier: JwtVerifier, rsa_private: rsa.RSAPrivateKey
) -> None:
    assert _refusal(jwks_verifier, sign(claims(), rsa_private, "RS256")) == AuthErrorCode.INVALID


def test_key_of_the_wrong_family_is_refused(
    jwks_verifier: JwtVerifier, ec_private: ec.EllipticCurvePrivateKey
) -> None:
    # Signed correctly with the EC key, but naming the RSA key's kid.
    token = sign(claims(), ec_private, "ES256", kid="rsa-1")
    assert _refusal(jwks_verifier, token) == AuthErrorCode.INVALID


def test_signature_by_another_key_is_refused(jwks_verifier: JwtVerifier) -> None:
    token = sign(claims(), rsa_key(), "RS256", kid="rsa-1")
    assert _refusal(jwks_verifier, token) == AuthErrorCode.INVALID


def test_tampered_payload_is_refused(
    jwks_verifier: JwtVerifier, rsa_private: rsa.RSAPrivateKey
) -> None:
    header, _, signature = sign(claims(), rsa_private, "RS256", kid="rsa-1").split(".")
    forged_payload = assemble({}, claims(sub="admin"), b"").split(".")[1]
    token = f"{header}.{forged_payload}.{signature}"
    assert _refusal(jwks_verifier, token) == AuthErrorCode.INVALID


@pytest.mark.parametrize("crit", [["b64"], ["urn:example:ext"]])
def test_crit_header_is_refused(
    jwks_verifier: JwtVerifier, rsa_private: rsa.RSAPrivateKey, crit: list[str]
) -> None:
    token = sign(claims(), rsa_private, "RS256", kid="rsa-1", headers={"crit": crit})
    assert _refusal(jwks_verifier, token) == AuthErrorCode.INVALID


def test_crit_header_that_pyjwt_would_accept_is_refused(jwks_verifier: JwtVerifier) -> None:
    # RFC 7797 unencoded, detached payload: PyJWT reads it and supports "b64".
    header = {"alg": "RS256", "kid": "rsa-1", "crit": ["b64"], "b64": False}
    token = f"{b64url(json.dumps(header).encode())}..{b64url(b'signature')}"
    assert _refusal(jwks_verifier, token) == AuthErrorCode.INVALID


def test_non_string_kid_is_refused(jwks_verifier: JwtVerifier) -> None:
    header = {"alg": "RS256", "kid": ["rsa-1"]}
    assert _refusal(jwks_verifier, assemble(header, claims(), b"x")) == AuthErrorCode.INVALID


def test_header_without_alg_is_refused(jwks_verifier: JwtVerifier) -> None:
    assert _refusal(jwks_verifier, assemble({"kid": "rsa-1"}, claims(), b"x")) == (
        AuthErrorCode.INVALID
    )


def test_algorithm_outside_the_allowlist_is_refused(
    key_dir: Path, rsa_private: rsa.RSAPrivateKey
) -> None:
    path = write_pem(key_dir / "rsa-only-es.pem", rsa_private)
    config = JwtConfig(
        audience=AUDIENCE, issuer=ISSUER, algorithms=("ES256",), public_key_path=path
    )
    token = sign(claims(), rsa_private, "RS256")
    assert _refusal(JwtVerifier(config), token) == AuthErrorCode.INVALID


@pytest.mark.parametrize("missing", ["sub", "exp", "iat"])
def test_missing_required_claim_is_refused(
    jwks_verifier: JwtVerifier, rsa_private: rsa.RSAPrivateKey, missing: str
) -> None:
    payload = claims()
    del payload[missing]
    token = sign(payload, rsa_private, "RS256", kid="rsa-1")
    assert _refusal(jwks_verifier, token) == AuthErrorCode.INVALID


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "other-service"},
        {"aud": ["other-service", "another"]},
        {"aud": None},
        {"iss": ISSUER + ".evil.example"},
        {"iss": ISSUER + "/"},
        {"iss": ISSUER[:-1]},
        {"iss": None},
        {"sub": 123},
        {"sub": ""},
        {"sub": "nul\x00inside"},  # PostgreSQL text cannot hold U+0000
        {"sub": "lone \ud800 surrogate"},  # valid JSON escape, no UTF-8 form
        {"jti": 7},
    ],
)
def test_wrong_claims_are_refused(
    jwks_verifier: JwtVerifier, rsa_private: rsa.RSAPrivateKey, overrides: dict[str, Any]
) -> None:
    token = sign(claims(**overrides), rsa_private, "RS256", kid="rsa-1")
    assert _refusal(jwks_verifier, token) == AuthErrorCode.INVALID


@pytest.mark.parametrize(
    "sub",
    [
        "line\nbreak",
        "tab\tand\rreturn",
        "astral 😀𝄞",
        "\u01c5\u202ertl",
        "dots.and*#wild{cards}",
        "é" * 800,
    ],
)
def test_any_other_sub_is_a_user_id(
    jwks_verifier: JwtVerifier, rsa_private: rsa.RSAPrivateKey, sub: str
) -> None:
    token = sign(claims(sub=sub), rsa_private, "RS256", kid="rsa-1")
    assert jwks_verifier.verify(token).sub == sub


# Time.


def test_expired_is_refused(jwks_verifier: JwtVerifier, rsa_private: rsa.RSAPrivateKey) -> None:
    now = int(time.time())
    token = sign(claims(iat=now - 600, exp=now - 120), rsa_private, "RS256", kid="rsa-1")
    assert _refusal(jwks_verifier, token) == AuthErrorCode.EXPIRED


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_future_nbf_or_iat_is_refused(
    jwks_verifier: JwtVerifier, rsa_private: rsa.RSAPrivateKey, claim: str
) -> None:
    future = int(time.time()) + 120
    token = sign(claims(**{claim: future}), rsa_private, "RS256", kid="rsa-1")
    assert _refusal(jwks_verifier, token) == AuthErrorCode.NOT_YET_VALID


def test_leeway_forgives_small_clock_skew(
    key_dir: Path, jwks_verifier: JwtVerifier, rsa_private: rsa.RSAPrivateKey
) -> None:
    now = int(time.time())
    late = sign(claims(iat=now - 600, exp=now - 10), rsa_private, "RS256", kid="rsa-1")
    early = sign(claims(nbf=now + 10, iat=now + 10), rsa_private, "RS256", kid="rsa-1")
    assert jwks_verifier.verify(late).sub == "user-1"  # default leeway: 30 s
    assert jwks_verifier.verify(early).sub == "user-1"
    path = write_jwks(key_dir / "strict.json", public_jwk(rsa_private, "rsa-1"))
    strict = JwtVerifier(
        JwtConfig(audience=AUDIENCE, issuer=ISSUER, leeway_seconds=0, jwks_path=path)
    )
    assert _refusal(strict, late) == AuthErrorCode.EXPIRED
    assert _refusal(strict, early) == AuthErrorCode.NOT_YET_VALID


# Not tokens at all.


@pytest.mark.parametrize("token", [None, ""])
def test_missing(jwks_verifier: JwtVerifier, token: str | None) -> None:
    assert _refusal(jwks_verifier, token) == AuthErrorCode.MISSING


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b",
        "a.b.c",
        "eyJhbGciOiJSUzI1NiJ9.!!!.AAAA",
        "x" * 9000,
        # A header's non-UTF-8 bytes, as Sanic decodes them (surrogateescape), and non-ASCII.
        "\udce9.a.b",
        "é.e30.x",
    ],
)
def test_malformed(jwks_verifier: JwtVerifier, token: str) -> None:
    assert _refusal(jwks_verifier, token) == AuthErrorCode.MALFORMED
