"""What a service trusts: algorithms, audience, issuer, clock leeway and key source."""

from dataclasses import dataclass

from libs.auth.algorithms import SUPPORTED_ALGORITHMS


@dataclass(frozen=True, kw_only=True)
class JwtConfig:
    """JWT verification settings; invalid combinations raise ValueError at construction.

    Keys come from exactly one of `public_key_path` (a PEM public key) or
    `jwks_path` (a JWKS document, keys selected by `kid`). Both are read once,
    when the verifier is built: rotating keys means rolling the pods.
    """

    audience: str
    issuer: str
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    leeway_seconds: float = 30.0
    public_key_path: str | None = None
    jwks_path: str | None = None

    def __post_init__(self) -> None:
        if not self.audience or not self.issuer:
            raise ValueError("JWT audience and issuer must not be empty")
        if not self.algorithms:
            raise ValueError("JWT algorithm allowlist must not be empty")
        refused = [alg for alg in self.algorithms if alg not in SUPPORTED_ALGORITHMS]
        if refused:
            raise ValueError(
                f"JWT algorithms {refused} are not allowed; choose from "
                f"{sorted(SUPPORTED_ALGORITHMS)} ('none' and HMAC are always refused)"
            )
        if not 0 <= self.leeway_seconds <= 300:
            raise ValueError("JWT leeway must be between 0 and 300 seconds")
        if (self.public_key_path is None) == (self.jwks_path is None):
            raise ValueError("set exactly one of JWT public_key_path and jwks_path")
