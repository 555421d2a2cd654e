"""The one exception of libs.auth, with a stable code for the wire."""

from enum import StrEnum


class AuthErrorCode(StrEnum):
    """Stable codes: clients and dashboards match on the values, so never change one."""

    MISSING = "token_missing"
    MALFORMED = "token_malformed"
    INVALID = "token_invalid"
    EXPIRED = "token_expired"
    NOT_YET_VALID = "token_not_yet_valid"


class AuthError(Exception):
    """A request is not authenticated; `code` says why, the message is for logs.

    Messages never contain the token or any part of it.
    """

    def __init__(self, code: AuthErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
