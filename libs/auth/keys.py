"""Loads the verification keys from a PEM public key file or a JWKS file."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from libs.auth.algorithms import SUPPORTED_ALGORITHMS, PublicKey, check_public_key, key_fits
from libs.auth.config import JwtConfig
from libs.auth.errors import AuthError, AuthErrorCode


@dataclass(frozen=True)
class VerificationKey:
    """One public key; `algorithm` is the JWK's own "alg" when it declares one."""

    key: PublicKey
    kid: str | None = None
    algorithm: str | None = None

    def fits(self, algorithm: str) -> bool:
        """True if this key may verify a signature made with `algorithm`."""
        if self.algorithm is not None and self.algorithm != algorithm:
            return False
        return key_fits(self.key, algorithm)


class KeySet:
    """The trusted keys; `select()` picks the one a token names."""

    def __init__(self, keys: list[VerificationKey], *, by_kid: bool) -> None:
        self._keys = keys
        self._by_kid = by_kid

    def select(self, kid: object) -> VerificationKey:
        """The key for a token's `kid` header (None if absent); AuthError if there is none.

        A single PEM key ignores `kid`. In a JWKS the kid must match exactly;
        a token without kid is accepted only when the set holds one key.
        """
        if not self._by_kid:
            return self._keys[0]
        if kid is None:
            if len(self._keys) == 1:
                return self._keys[0]
            raise AuthError(AuthErrorCode.INVALID, "token has no kid, key set has several")
        for key in self._keys:
            if key.kid == kid:
                return key
        raise AuthError(AuthErrorCode.INVALID, "unknown kid")


def load_keys(config: JwtConfig) -> KeySet:
    """Reads the key file named by `config`; ValueError if it holds no usable key."""
    if config.jwks_path is not None:
        document = json.loads(Path(config.jwks_path).read_text(encoding="utf-8"))
        return KeySet(_parse_jwks(document, config.jwks_path), by_kid=True)
    if config.public_key_path is not None:
        return KeySet([_load_pem(config.public_key_path)], by_kid=False)
    raise ValueError("JwtConfig names no key file")


def _load_pem(path: str) -> VerificationKey:
    try:
        loaded = load_pem_public_key(Path(path).read_bytes())
    except ValueError as exc:
        raise ValueError(f"{path}: not a PEM public key") from exc
    return VerificationKey(check_public_key(loaded, path))


def _parse_jwks(document: Any, where: str) -> list[VerificationKey]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError(f"{where}: not a JWKS document")
    keys: list[VerificationKey] = []
    seen: set[str | None] = set()
    for index, jwk in enumerate(document["keys"]):
        label = f"{where} key {index}"
        if not isinstance(jwk, dict):
            raise ValueError(f"{label}: not a JSON object")
        # Encryption keys and key types we never verify with (oct, OKP) are
        # left out rather than refused: published key sets often mix them in.
        if jwk.get("use", "sig") != "sig" or jwk.get("kty") not in ("RSA", "EC"):
            continue
        if "d" in jwk:
            raise ValueError(f"{label}: holds private key material; publish public keys only")
        algorithm = jwk.get("alg")
        if algorithm is not None and algorithm not in SUPPORTED_ALGORITHMS:
            raise ValueError(f"{label}: algorithm {algorithm!r} is not allowed")
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise ValueError(f"{label}: kid must be a string")
        if kid is not None and kid in seen:
            raise ValueError(f"{label}: duplicate kid {kid!r}")
        seen.add(kid)
        try:
            loaded = jwt.PyJWK(jwk).key
        except jwt.PyJWTError as exc:
            raise ValueError(f"{label}: {exc}") from exc
        keys.append(VerificationKey(check_public_key(loaded, label), kid, algorithm))
    if not keys:
        raise ValueError(f"{where}: no RSA or EC signing key")
    return keys
