"""The verified claims a service may rely on, checked for type as well as value."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from libs.auth.errors import AuthError, AuthErrorCode
from libs.identity import identity


@dataclass(frozen=True)
class Claims:
    """Claims of a verified token; `aud` is always a tuple, `raw` holds every claim."""

    sub: str
    exp: int
    iat: int
    aud: tuple[str, ...]
    iss: str
    jti: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)


def claims_from_payload(payload: Mapping[str, Any], *, audience: str, issuer: str) -> Claims:
    """Builds Claims from a signature-checked payload; AuthError(token_invalid) if off.

    The signature library has already compared `aud` and `iss`; they are compared
    again here, exactly, so that a regression there (PyJWT 2.10.0 matched `iss`
    as a substring, CVE-2024-53861) cannot let a look-alike issuer through.
    """
    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub:
        raise _invalid("sub must be a non-empty string")
    try:
        # Every encoding downstream derives from the user id (libs/identity), so any
        # text is one except the few that no store can hold: refused here, once.
        identity.check(sub)
    except identity.InvalidUserId as error:
        raise _invalid(f"sub cannot be a user id: {error}") from None
    iss = payload.get("iss")
    if iss != issuer:
        raise _invalid("wrong issuer")
    aud = payload.get("aud")
    auds = (aud,) if isinstance(aud, str) else aud
    if not isinstance(auds, list | tuple) or not all(isinstance(item, str) for item in auds):
        raise _invalid("aud must be a string or a list of strings")
    if audience not in auds:
        raise _invalid("wrong audience")
    jti = payload.get("jti")
    if jti is not None and not isinstance(jti, str):
        raise _invalid("jti must be a string")
    return Claims(
        sub=sub,
        exp=_numeric_date(payload, "exp"),
        iat=_numeric_date(payload, "iat"),
        aud=tuple(auds),
        iss=issuer,
        jti=jti,
        raw=MappingProxyType(dict(payload)),
    )


def _numeric_date(payload: Mapping[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(f"{name} must be a number")
    return int(value)


def _invalid(message: str) -> AuthError:
    return AuthError(AuthErrorCode.INVALID, message)
