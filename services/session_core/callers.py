"""Who is calling: the end user, from the bearer token core verifies itself.

Core does not take the edge's word for the user. Every user-scoped call
carries the device's token (`authorization: Bearer <jwt>` metadata; in
ApplyUpdates, each update's own `token`), verified with the same policy the
edge uses; the user is the token's `sub` (any id libs/identity admits). A
request that names a user must name that one: `x-syncbridge-user-bin` (the
UTF-8 bytes, so any id fits), the older ASCII `x-syncbridge-user` (still
sent by edges for printable-ASCII ids, for an older core during a rollout),
`UserUpdate.user_id`. Pure apart from the verifier's signature check, so
tested without a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from libs.auth.claims import Claims
from libs.auth.config import JwtConfig
from libs.auth.errors import AuthError
from libs.auth.headers import AUTHORIZATION_METADATA, bearer_from_header
from libs.config.settings import ConfigError
from libs.identity import identity
from libs.tls.identity import peer_identities
from services.session_core.config import CoreConfig
from services.session_core.records import StoreError

USER_METADATA = identity.METADATA_KEY
# What edges before libs/identity named the user in (printable ASCII only): a
# cross-check like USER_METADATA, never a source of the user.
LEGACY_USER_METADATA = "x-syncbridge-user"


class TokenVerifier(Protocol):
    def verify(self, token: str | None) -> Claims: ...


class Unauthenticated(StoreError):
    """No token, or one that does not verify: the message starts with libs/auth's code."""

    code = "unauthenticated"


class PermissionDenied(StoreError):
    """A verified caller asking to act as another user."""

    code = "permission_denied"


def _user_of(verifier: TokenVerifier, token: str | None, named: str | None, field: str) -> str:
    try:
        sub = verifier.verify(token).sub
    except AuthError as error:
        raise Unauthenticated(f"{error.code}: a valid bearer token is required") from None
    if named is not None and named != sub:
        raise PermissionDenied(f"{field}: names a user other than the token's")
    return sub


def check_peer(allowed: frozenset[str] | None, auth_context: Mapping[str, Iterable[bytes]]) -> None:
    """With mTLS (`allowed` set), the caller's certificate must name an admitted
    identity; PermissionDenied otherwise. Without mTLS, nothing to check here."""
    if allowed is None:
        return
    # gRPC types the values as iterables only: lists, so their emptiness is known.
    if not peer_identities({k: list(v) for k, v in auth_context.items()}) & allowed:
        raise PermissionDenied("client certificate: not an identity this core admits")


def _named_in_metadata(value: str | bytes) -> str | None:
    """The user a `USER_METADATA` value names; None if it names none (so no `sub`)."""
    try:
        return identity.from_metadata(value)
    except identity.InvalidUserId:
        return None


def call_user(verifier: TokenVerifier, metadata: Mapping[str, str | bytes]) -> str:
    """The user a unary call acts for: the `sub` of its `authorization` metadata.

    Each user-naming header sent must name that `sub`: one that is unreadable
    as a user id names someone else, so PermissionDenied as well."""
    header = metadata.get(AUTHORIZATION_METADATA)
    try:
        token = bearer_from_header(header if isinstance(header, str) else None)
    except AuthError as error:
        raise Unauthenticated(f"{error.code}: a valid bearer token is required") from None
    sub = _user_of(verifier, token, None, AUTHORIZATION_METADATA)
    named = metadata.get(USER_METADATA)
    if named is not None and _named_in_metadata(named) != sub:
        raise PermissionDenied(f"{USER_METADATA}: names a user other than the token's")
    legacy = metadata.get(LEGACY_USER_METADATA)
    if legacy is not None and legacy != sub:
        raise PermissionDenied(f"{LEGACY_USER_METADATA}: names a user other than the token's")
    return sub


def update_user(verifier: TokenVerifier, token: str, user_id: str) -> str:
    """The user one ApplyUpdates item acts for: its token's `sub`, which `user_id` must be."""
    return _user_of(verifier, token, user_id or None, "user_id")


def jwt_config(config: CoreConfig) -> JwtConfig:
    """The token policy core verifies callers' tokens with; ConfigError naming the variable."""
    problems = []
    if bool(config.jwt_public_key_path) == bool(config.jwt_jwks_path):
        problems.append(
            "SYNCBRIDGE_CORE_JWT_PUBLIC_KEY_PATH, SYNCBRIDGE_CORE_JWT_JWKS_PATH: set exactly one"
        )
    if not config.jwt_issuer:
        problems.append("SYNCBRIDGE_CORE_JWT_ISSUER: required")
    if not config.jwt_audience:
        problems.append("SYNCBRIDGE_CORE_JWT_AUDIENCE: required")
    if problems:
        raise ConfigError(problems)
    try:
        return JwtConfig(
            audience=config.jwt_audience,
            issuer=config.jwt_issuer,
            algorithms=config.jwt_algorithms,
            leeway_seconds=config.jwt_leeway_seconds,
            public_key_path=config.jwt_public_key_path or None,
            jwks_path=config.jwt_jwks_path or None,
        )
    except ValueError as error:  # what is left is the algorithm allowlist
        raise ConfigError([f"SYNCBRIDGE_CORE_JWT_ALGORITHMS: {error}"]) from None


@dataclass(frozen=True)
class TlsFiles:
    """What core's mTLS port is made of, read at start."""

    cert: bytes
    key: bytes
    client_ca: bytes


def tls_files(config: CoreConfig) -> TlsFiles | None:
    """None for plaintext (all three unset); ConfigError naming what is missing or unreadable."""
    paths = {
        "SYNCBRIDGE_CORE_TLS_CERT_PATH": config.tls_cert_path,
        "SYNCBRIDGE_CORE_TLS_KEY_PATH": config.tls_key_path,
        "SYNCBRIDGE_CORE_TLS_CLIENT_CA_PATH": config.tls_client_ca_path,
    }
    if not any(paths.values()):
        return None
    missing = [variable for variable, path in paths.items() if not path]
    if missing:
        raise ConfigError([f"{', '.join(missing)}: required with the other TLS settings"])
    if not config.allowed_clients:
        raise ConfigError(["SYNCBRIDGE_CORE_ALLOWED_CLIENTS: empty, so no caller could call"])
    contents: list[bytes] = []
    problems = []
    for variable, path in paths.items():
        try:
            contents.append(Path(path).read_bytes())
        except OSError as error:
            problems.append(f"{variable}: cannot read {path}: {error.strerror}")
    if problems:
        raise ConfigError(problems)
    cert, key, client_ca = contents
    return TlsFiles(cert, key, client_ca)
