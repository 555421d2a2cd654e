"""Key files are checked at start-up; kid selection follows the documented rules."""

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from libs.auth.config import JwtConfig
from libs.auth.errors import AuthError, AuthErrorCode
from libs.auth.keys import KeySet, load_keys
from libs.auth.testing import (
    AUDIENCE,
    ISSUER,
    ec_key,
    public_jwk,
    rsa_key,
    write_jwks,
    write_pem,
)


def _jwks(path: str) -> KeySet:
    return load_keys(JwtConfig(audience=AUDIENCE, issuer=ISSUER, jwks_path=path))


def _pem(path: str) -> KeySet:
    return load_keys(JwtConfig(audience=AUDIENCE, issuer=ISSUER, public_key_path=path))


def test_pem_key_ignores_kid(tmp_path: Path) -> None:
    keys = _pem(write_pem(tmp_path / "k.pem", ec_key()))
    assert keys.select(None) is keys.select("anything")


def test_short_rsa_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1024 bits"):
        _pem(write_pem(tmp_path / "k.pem", rsa_key(1024)))


def test_private_pem_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(ec_key().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    with pytest.raises(ValueError, match="not a PEM public key"):
        _pem(str(path))


def test_unsupported_curve_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported curve"):
        _pem(write_pem(tmp_path / "k.pem", ec_key(ec.SECP256K1())))


def test_single_jwk_without_kid_serves_tokens_without_kid(tmp_path: Path) -> None:
    keys = _jwks(write_jwks(tmp_path / "jwks.json", public_jwk(ec_key())))
    assert keys.select(None).fits("ES256")
    with pytest.raises(AuthError) as caught:
        keys.select("some-kid")
    assert caught.value.code == AuthErrorCode.INVALID


def test_kid_selects_exactly(tmp_path: Path) -> None:
    keys = _jwks(
        write_jwks(tmp_path / "jwks.json", public_jwk(rsa_key(), "a"), public_jwk(ec_key(), "b"))
    )
    assert keys.select("a").fits("RS256")
    assert keys.select("b").fits("ES256")
    for kid in (None, "A", "a ", "c"):
        with pytest.raises(AuthError):
            keys.select(kid)


def test_encryption_and_symmetric_keys_are_left_out(tmp_path: Path) -> None:
    keys = _jwks(
        write_jwks(
            tmp_path / "jwks.json",
            public_jwk(rsa_key(), "enc", use="enc"),
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            public_jwk(ec_key(), "sig"),
        )
    )
    assert keys.select(None).kid == "sig"


def test_declared_alg_binds_the_key(tmp_path: Path) -> None:
    keys = _jwks(write_jwks(tmp_path / "jwks.json", public_jwk(rsa_key(), "a", alg="PS256")))
    assert keys.select("a").fits("PS256")
    assert not keys.select("a").fits("RS256")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"keys": []}', "no RSA or EC signing key"),
        ('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "no RSA or EC signing key"),
        ("[]", "not a JWKS document"),
        ('{"keys": ["x"]}', "not a JSON object"),
    ],
)
def test_unusable_jwks_is_refused(tmp_path: Path, document: str, message: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(document, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        _jwks(str(path))


def test_private_jwk_is_refused(tmp_path: Path) -> None:
    jwk = public_jwk(ec_key(), "a", d="AAAA")
    with pytest.raises(ValueError, match="private key material"):
        _jwks(write_jwks(tmp_path / "jwks.json", jwk))


def test_duplicate_kid_is_refused(tmp_path: Path) -> None:
    path = write_jwks(tmp_path / "jwks.json", public_jwk(ec_key(), "a"), public_jwk(ec_key(), "a"))
    with pytest.raises(ValueError, match="duplicate kid"):
        _jwks(path)


def test_hmac_alg_on_a_jwk_is_refused(tmp_path: Path) -> None:
    path = write_jwks(tmp_path / "jwks.json", public_jwk(rsa_key(), "a", alg="HS256"))
    with pytest.raises(ValueError, match="'HS256' is not allowed"):
        _jwks(path)
