"""Masks tokens and secrets before anything is written to a log.

Two nets: a value stored under a key named like a credential is replaced
whatever it looks like, and any text is scrubbed of JWT-shaped strings,
bearer tokens, `password=...`-style pairs and passwords inside URLs. A raw
opaque secret under an innocent key cannot be recognised: do not log one.
"""

import math
import re
from collections.abc import Mapping

REDACTED = "[REDACTED]"

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]

# Substrings, so that access_token, X-Auth-Token, Set-Cookie, client_secret match.
_SENSITIVE_KEY = re.compile(
    r"authorization|token|password|passwd|secret|jwt|cookie|api[_-]?key|credential|private[_-]?key",
    re.IGNORECASE,
)
_SENSITIVE_WORDS = _SENSITIVE_KEY.pattern
# A JWS is three base64url segments and a JWE five; a JSON header always
# encodes to "eyJ". The signature may be empty (alg=none), so it is optional.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){2,4}")
# "Bearer x" in an Authorization header, "bearer.x" in a WebSocket subprotocol.
_BEARER = re.compile(r"\b(bearer)(\s+|\.)[^\s,;'\"]+", re.IGNORECASE)
_KEY_VALUE = re.compile(rf"([\w-]*(?:{_SENSITIVE_WORDS})[\w-]*=)[^\s&,;'\"]+", re.IGNORECASE)
# scheme://user:password@host: database, cache and broker URLs carry these.
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/\s@]*:)[^@\s/]+@", re.IGNORECASE)
_MAX_DEPTH = 8


def is_sensitive_key(key: str) -> bool:
    """True if a value stored under `key` must never be logged (case-insensitive)."""
    return _SENSITIVE_KEY.search(key) is not None


def redact_text(text: str) -> str:
    """Returns `text` with JWTs, bearer tokens, secret pairs and URL passwords masked."""
    text = _JWT.sub(REDACTED, text)
    text = _BEARER.sub(rf"\1\2{REDACTED}", text)
    text = _KEY_VALUE.sub(rf"\1{REDACTED}", text)
    return _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)


def redact(value: object, depth: int = 0) -> JsonValue:
    """Returns a JSON-ready copy of `value` with every secret masked.

    Mappings and sequences are walked; anything else that is not a JSON
    scalar is logged as its str(), which is scrubbed like any other text.
    """
    if depth > _MAX_DEPTH:
        # Deep or cyclic structures are cut rather than risk an unscrubbed str().
        return "[TOO DEEP]"
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        # NaN and Infinity are not JSON; a log line must stay parseable.
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            str(key): REDACTED if is_sensitive_key(str(key)) else redact(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item, depth + 1) for item in value]
    return redact_text(str(value))
