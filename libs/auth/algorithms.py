"""Which signature algorithms may be configured, and which public key each one needs."""

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

PublicKey = RSAPublicKey | EllipticCurvePublicKey

_RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
# An ECDSA algorithm fixes the curve as well as the hash (RFC 7518 §3.4).
_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}

# Asymmetric only: the keys configured here are public, and an HMAC algorithm
# would turn a public key into a shared secret anyone can sign with.
SUPPORTED_ALGORITHMS = _RSA | frozenset(_EC_CURVES)
MIN_RSA_KEY_BITS = 2048


def key_fits(key: PublicKey, algorithm: str) -> bool:
    """True if `key` is of the family (and, for ECDSA, the curve) that `algorithm` uses."""
    if algorithm in _RSA:
        return isinstance(key, RSAPublicKey)
    curve = _EC_CURVES.get(algorithm)
    return isinstance(key, EllipticCurvePublicKey) and key.curve.name == curve


def check_public_key(key: object, where: str) -> PublicKey:
    """Returns `key` if it is a usable RSA or EC public key, else raises ValueError."""
    if isinstance(key, RSAPublicKey):
        if key.key_size < MIN_RSA_KEY_BITS:
            raise ValueError(f"{where}: RSA key of {key.key_size} bits, need {MIN_RSA_KEY_BITS}")
        return key
    if isinstance(key, EllipticCurvePublicKey):
        if key.curve.name not in _EC_CURVES.values():
            raise ValueError(f"{where}: unsupported curve {key.curve.name}")
        return key
    raise ValueError(f"{where}: not an RSA or EC public key")
