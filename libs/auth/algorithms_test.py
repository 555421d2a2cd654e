"""Each algorithm accepts only keys of its family and, for ECDSA, its curve."""

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from libs.auth.algorithms import key_fits
from libs.auth.testing import ec_key, rsa_key


@pytest.fixture(scope="module")
def keys() -> dict[str, object]:
    return {
        "rsa": rsa_key().public_key(),
        "p256": ec_key().public_key(),
        "p384": ec_key(ec.SECP384R1()).public_key(),
        "p521": ec_key(ec.SECP521R1()).public_key(),
    }


@pytest.mark.parametrize(
    ("algorithm", "fitting"),
    [
        ("RS256", "rsa"),
        ("PS512", "rsa"),
        ("ES256", "p256"),
        ("ES384", "p384"),
        ("ES512", "p521"),
        ("HS256", None),
        ("none", None),
    ],
)
def test_key_fits_only_its_algorithm(
    keys: dict[str, object], algorithm: str, fitting: str | None
) -> None:
    for name, key in keys.items():
        assert isinstance(key, object)
        assert key_fits(key, algorithm) is (name == fitting)  # type: ignore[arg-type]
