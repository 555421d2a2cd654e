"""Who may open a WebSocket, decided before the upgrade: Origin, then the token.

Refusals are plain HTTP answers (403 for an Origin not on the allowlist,
401 for a missing or bad token, 503 while draining), so a refused client
never holds a socket. Pure apart from the verifier's signature check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from libs.auth.claims import Claims
from libs.auth.errors import AuthError, AuthErrorCode
from libs.auth.headers import bearer_from_header, token_from_subprotocols
from libs.auth.verifier import JwtVerifier
from libs.protocol.codes import ErrorCode


@dataclass(frozen=True, slots=True)
class Refusal:
    """An HTTP status and a stable code for the body `{"error": {"code", "message"}}`."""

    status: int
    code: ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class Accepted:
    claims: Claims
    token_source: str  # "header", "subprotocol" or "query"
    token: str  # forwarded to core, which verifies the user itself


def origin_refusal(
    origin: str | None, allowed: tuple[str, ...], allow_missing: bool
) -> Refusal | None:
    """None if `origin` may connect. Exact match, so `https://app.x` never admits
    `https://app.x.evil`; non-browser clients send no Origin at all."""
    if origin is None or origin == "":
        if allow_missing:
            return None
        return Refusal(403, ErrorCode.FORBIDDEN, "Origin header required")
    if origin.rstrip("/") in allowed:
        return None
    return Refusal(403, ErrorCode.FORBIDDEN, "Origin not allowed")


def find_token(
    authorization: str | None,
    subprotocols: str | None,
    query_token: str | None,
    *,
    allow_query: bool,
) -> tuple[str, str]:
    """(token, where it came from): the Authorization header first, then a `bearer.`
    subprotocol, then (only if allowed) `?access_token=`. AuthError token_missing if none."""
    if authorization:
        return bearer_from_header(authorization), "header"
    if subprotocols and "bearer." in subprotocols:
        token, _ = token_from_subprotocols(subprotocols)
        return token, "subprotocol"
    if allow_query and query_token:
        return query_token, "query"
    raise AuthError(AuthErrorCode.MISSING, "no token")


def authorize(
    headers: Mapping[str, str],
    query_token: str | None,
    verifier: JwtVerifier,
    *,
    allowed_origins: tuple[str, ...],
    allow_missing_origin: bool,
    allow_query_token: bool,
) -> Accepted | Refusal:
    """The upgrade decision for a request whose header names are lower-case."""
    refusal = origin_refusal(headers.get("origin"), allowed_origins, allow_missing_origin)
    if refusal is not None:
        return refusal
    try:
        token, source = find_token(
            headers.get("authorization"),
            headers.get("sec-websocket-protocol"),
            query_token,
            allow_query=allow_query_token,
        )
        return Accepted(verifier.verify(token), source, token)
    except AuthError as error:
        return Refusal(401, ErrorCode.UNAUTHORIZED, str(error.code))
