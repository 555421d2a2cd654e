"""The one derivation of a user id into every bounded or restricted encoding.

A user id is a token's `sub`: opaque text chosen by the identity provider, of
any length a token can carry and any Unicode. Nothing downstream may depend on
its shape, so every encoding with a limit or an alphabet takes a form derived
here, never the raw id:

- `tag(user)`: 64 lowercase hex digits of SHA-256 over the UTF-8 bytes. AMQP
  routing keys (255 bytes, and `.`/`*`/`#` mean something), Redis keys and
  hash tags (`{`/`}` end a tag) use it. Fixed length, `[0-9a-f]` only.
- `digest(user)`: the same 32 bytes, for the PostgreSQL index column
  `sessions.user_key` (a btree entry holds at most ~2.7 kB; a `sub` can be more).
  PostgreSQL computes the same value as `sha256(convert_to(user_id, 'UTF8'))`.
- `to_metadata(user)` / `from_metadata(value)`: gRPC metadata values must be
  printable ASCII unless the key ends in `-bin`; `METADATA_KEY` does, and the
  value is the UTF-8 bytes (gRPC base64-encodes them on the wire).

A tag names a user but cannot be turned back into one: whoever needs the user
back (an edge handling an event it cannot decode) reads it from the message
(`libs/bus`: the body, and the `x-syncbridge-user` header).

`check(user)` is what every user id must pass, applied once, at
authentication: non-empty, at most `MAX_BYTES` of UTF-8, Unicode scalar values
only (a JSON `sub` can hold a lone surrogate escape, which has no UTF-8 form),
and no U+0000 (PostgreSQL text cannot store it). Anything else a token can
carry (newlines, controls, astral characters, right-to-left marks) is a user id.
"""

from __future__ import annotations

import hashlib

# No token over libs/auth's MAX_TOKEN_LENGTH (8192 characters) is read, so no
# `sub` in one is longer than this many UTF-8 bytes: the bound only says so.
MAX_BYTES = 8192

METADATA_KEY = "x-syncbridge-user-bin"


class InvalidUserId(ValueError):
    """A text that cannot be a user id; the message says why, never the id itself."""


def check(user: str) -> str:
    """`user` if it can be a user id; InvalidUserId saying why otherwise."""
    if not isinstance(user, str) or not user:
        raise InvalidUserId("empty")
    if "\x00" in user:
        raise InvalidUserId("contains U+0000")
    try:
        encoded = user.encode()
    except UnicodeEncodeError:
        raise InvalidUserId("not Unicode scalar values (a lone surrogate)") from None
    if len(encoded) > MAX_BYTES:
        raise InvalidUserId(f"longer than {MAX_BYTES} bytes of UTF-8")
    return user


def digest(user: str) -> bytes:
    """SHA-256 of the UTF-8 of `user`: 32 bytes, the same for the same id only."""
    return hashlib.sha256(user.encode()).digest()


def tag(user: str) -> str:
    """`digest` as 64 lowercase hex digits: safe in any key, topic word or hash tag."""
    return hashlib.sha256(user.encode()).hexdigest()


def to_metadata(user: str) -> bytes:
    """The value of `METADATA_KEY` carrying `user`."""
    return user.encode()


def from_metadata(value: str | bytes) -> str:
    """The user a `METADATA_KEY` value carries; InvalidUserId if it carries none."""
    if isinstance(value, str):  # not a `-bin` value: never what the edge sends
        raise InvalidUserId("metadata value is not binary")
    try:
        user = value.decode()
    except UnicodeDecodeError:
        raise InvalidUserId("metadata value is not UTF-8") from None
    return check(user)
