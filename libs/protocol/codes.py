"""Stable error codes and WebSocket close codes of the client protocol.

Clients and dashboards match on these values: never change or reuse one.
services/ws_edge/README.md has the same tables for humans; its codes_test.py
keeps them in step.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    """`code` of an `error` message (the connection stays open) or of an HTTP error body."""

    MALFORMED_JSON = "malformed_json"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    HELLO_REQUIRED = "hello_required"
    ALREADY_HELLO = "already_hello"
    NO_SESSION = "no_session"
    ALREADY_OPEN = "already_open"
    SESSION_NOT_FOUND = "session_not_found"
    CONFLICT = "conflict"
    LEASE_REQUIRED = "lease_required"
    EPOCH_MISMATCH = "epoch_mismatch"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    TOKEN_EXPIRING = "token_expiring"  # noqa: S105 - a code, not a secret
    TOKEN_INVALID = "token_invalid"  # noqa: S105
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    BAD_REQUEST = "bad_request"
    REQUEST_TIMEOUT = "request_timeout"
    DRAINING = "draining"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


ERROR_MEANINGS: dict[ErrorCode, str] = {
    ErrorCode.MALFORMED_JSON: "the frame is not a JSON object (or is binary), or holds what "
    "JSON cannot carry back: NaN/Infinity, a number beyond a double, an unpaired surrogate "
    "escape, nesting deeper than 64",
    ErrorCode.UNKNOWN_TYPE: "`type` names no client message",
    ErrorCode.MISSING_FIELD: "a required field is absent; `details.field` names it",
    ErrorCode.INVALID_FIELD: "a field has the wrong type or value; `details.field` names it",
    ErrorCode.HELLO_REQUIRED: "the first message must be `hello`",
    ErrorCode.ALREADY_HELLO: "`hello` was already sent on this connection",
    ErrorCode.NO_SESSION: "`update`/`handoff` before `open` or `resume`",
    ErrorCode.ALREADY_OPEN: "this connection already has a session open",
    ErrorCode.SESSION_NOT_FOUND: "no such session, expired, ended, or another user's",
    ErrorCode.CONFLICT: "stale update overlapping newer changes; `details` has the current "
    "version, epoch and state",
    ErrorCode.LEASE_REQUIRED: "the update needs the active-device lease, held by another device",
    ErrorCode.EPOCH_MISMATCH: "`epoch` is not the session's: take the snapshot",
    ErrorCode.TOO_LARGE: "state or patch above the size limit, or the session already has "
    "the most devices attached (SYNCBRIDGE_CORE_MAX_SESSION_DEVICES)",
    ErrorCode.RATE_LIMITED: "message refused by the rate limit; `details.retry_after` seconds",
    ErrorCode.TOKEN_EXPIRING: "the token expired: send `refresh` within `details.grace_seconds`",
    ErrorCode.TOKEN_INVALID: "the `refresh` token does not verify; the old one stays in force",
    ErrorCode.UNAUTHORIZED: "HTTP only: no, forged or expired token (401)",
    ErrorCode.FORBIDDEN: "HTTP only: Origin not allowed (403)",
    ErrorCode.NOT_FOUND: "HTTP only: no such route (404)",
    ErrorCode.METHOD_NOT_ALLOWED: "HTTP only: the route has no such method; `Allow` lists its "
    "methods (405)",
    ErrorCode.BAD_REQUEST: "HTTP only: the HTTP request itself is malformed (400)",
    ErrorCode.REQUEST_TIMEOUT: "HTTP only: the request was not received in time (408)",
    ErrorCode.DRAINING: "this replica is shutting down; reconnect elsewhere (HTTP 503)",
    ErrorCode.UNAVAILABLE: "session-core did not answer in time; safe to retry (same op_id)",
    ErrorCode.INTERNAL: "unexpected server error; safe to retry (same op_id)",
}


class CloseCode(IntEnum):
    """WebSocket close codes the edge sends."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    INVALID_PAYLOAD = 1007
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TOKEN_EXPIRED = 4001
    REPLACED = 4010
    SLOW_CONSUMER = 4008
    RATE_LIMITED = 4029
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    HELLO_TIMEOUT = 4408
    DEVICE_LIMIT = 4409


CLOSE_MEANINGS: dict[CloseCode, str] = {
    CloseCode.NORMAL: "after `leave`: the device left; do not reconnect",
    CloseCode.GOING_AWAY: "replica draining (deploy): resume on any replica after a jittered "
    "backoff",
    CloseCode.PROTOCOL_ERROR: "the peer broke RFC 6455 framing (unmasked frame, bad opcode, "
    "continuation out of place)",
    CloseCode.INVALID_PAYLOAD: "a text frame that is not UTF-8",
    CloseCode.MESSAGE_TOO_BIG: "a frame exceeded the maximum frame size",
    CloseCode.INTERNAL_ERROR: "no pong to the server's ping in time (silent peer), or a "
    "failure inside the connection (its reader, writer or another of its tasks): resume",
    CloseCode.TOKEN_EXPIRED: "the token expired and no `refresh` came within the grace period",
    CloseCode.REPLACED: "replaced by a newer connection of the same device; do not reconnect",
    CloseCode.SLOW_CONSUMER: "the device did not read fast enough; resume (nothing is lost)",
    CloseCode.RATE_LIMITED: "kept sending while rate limited; back off before reconnecting",
    CloseCode.UNAUTHORIZED: "authentication lost (reserved: refused upgrades get HTTP 401)",
    CloseCode.FORBIDDEN: "`refresh` with another user's token",
    CloseCode.HELLO_TIMEOUT: "no `hello` within the hello timeout",
    CloseCode.DEVICE_LIMIT: "the user already has the maximum number of devices online",
}

# A client that sees one of these must not reconnect on its own.
# (4010: reconnecting would in turn replace the newer connection, back and forth.)
FATAL_CLOSE_CODES = frozenset(
    {CloseCode.NORMAL, CloseCode.REPLACED, CloseCode.FORBIDDEN, CloseCode.UNAUTHORIZED}
)


class ClientCloseCode(IntEnum):
    """Codes the client itself uses: never sent by the edge, so not in CLOSE_MEANINGS."""

    # The client closes its own connection when the ordered stream shows a hole,
    # then resumes: the server promises no silent gap, so a hole means start over.
    GAP = 4000
    # RFC 6455's "try again later": what the client records for an open/resume
    # refused with a transient code (draining, unavailable), before it backs off.
    TRY_AGAIN_LATER = 1013
