"""A JwtConfig that could accept forged tokens cannot be built."""

import pytest

from libs.auth.config import JwtConfig


def test_defaults() -> None:
    config = JwtConfig(audience="syncbridge", issuer="https://auth", jwks_path="/keys/jwks.json")
    assert config.algorithms == ("RS256", "ES256")
    assert config.leeway_seconds == 30.0


@pytest.mark.parametrize(
    "algorithms", [("none",), ("HS256",), ("RS256", "HS512"), ("EdDSA",), ("rs256",), ()]
)
def test_unsafe_or_unknown_algorithms_are_refused(algorithms: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        JwtConfig(audience="a", issuer="i", algorithms=algorithms, jwks_path="/k")


@pytest.mark.parametrize(("jwks", "pem"), [(None, None), ("/k", "/p")])
def test_exactly_one_key_source(jwks: str | None, pem: str | None) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        JwtConfig(audience="a", issuer="i", jwks_path=jwks, public_key_path=pem)


@pytest.mark.parametrize(
    "overrides",
    [{"audience": ""}, {"issuer": ""}, {"leeway_seconds": -1}, {"leeway_seconds": 301}],
)
def test_other_bad_values(overrides: dict[str, object]) -> None:
    values: dict[str, object] = {"audience": "a", "issuer": "i", "jwks_path": "/k", **overrides}
    with pytest.raises(ValueError):
        JwtConfig(**values)  # type: ignore[arg-type]
