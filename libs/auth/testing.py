"""Keys and tokens made at test time, for this package's tests and the services'.

Nothing here is secret: keys are generated per run and never written to the repo.
"""

import base64
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

ISSUER = "https://auth.harmonyflow.test"
AUDIENCE = "syncbridge"


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA private key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    """A fresh EC private key, P-256 unless `curve` says otherwise."""
    return ec.generate_private_key(curve if curve is not None else ec.SECP256R1())


def public_pem(key: PrivateKey) -> bytes:
    """The PEM (SubjectPublicKeyInfo) of `key`'s public half."""
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def write_pem(path: Path, key: PrivateKey) -> str:
    """Writes `key`'s public PEM to `path`; returns the path as a string for JwtConfig."""
    path.write_bytes(public_pem(key))
    return str(path)


def public_jwk(key: PrivateKey, kid: str | None = None, **extra: Any) -> dict[str, Any]:
    """`key`'s public half as a JWK dict, with `kid` and any `extra` members."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    if kid is not None:
        jwk["kid"] = kid
    return {**jwk, **extra}


def write_jwks(path: Path, *jwks: Mapping[str, Any]) -> str:
    """Writes a JWKS document of `jwks` to `path`; returns the path as a string."""
    path.write_text(json.dumps({"keys": list(jwks)}), encoding="utf-8")
    return str(path)


def claims(lifetime: float = 300, **overrides: Any) -> dict[str, Any]:
    """Valid claims for ISSUER/AUDIENCE; an override of None removes that claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "user-1",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": int(now + lifetime),
        "jti": "jti-1",
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def sign(
    payload: Mapping[str, Any],
    key: PrivateKey,
    algorithm: str,
    *,
    kid: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """A correctly signed compact JWS."""
    all_headers = dict(headers or {})
    if kid is not None:
        all_headers["kid"] = kid
    return jwt.encode(dict(payload), key, algorithm=algorithm, headers=all_headers or None)


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWS segments use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def assemble(header: Mapping[str, Any], payload: Mapping[str, Any], signature: bytes) -> str:
    """A compact JWS from parts, signed or not: for forging what libraries refuse to make."""
    return ".".join(
        [
            b64url(json.dumps(header).encode()),
            b64url(json.dumps(payload).encode()),
            b64url(signature),
        ]
    )
