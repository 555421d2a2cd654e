"""Where a token travels: the Authorization header (HTTP, and gRPC metadata from the
edge to core), or the WebSocket subprotocol list."""

from libs.auth.errors import AuthError, AuthErrorCode
from libs.protocol.subprotocol import APP_SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX

# gRPC metadata keys are lower-case; the value is an HTTP Authorization value.
AUTHORIZATION_METADATA = "authorization"


def bearer_value(token: str) -> str:
    """The `Authorization` value (header or gRPC metadata) that carries `token`."""
    return f"Bearer {token}"


def bearer_from_header(value: str | None) -> str:
    """Returns the token of an `Authorization: Bearer <token>` value (scheme case-insensitive).

    AuthError token_missing if the header is absent or blank, token_malformed
    if it is another scheme or not exactly "Bearer" and one token.
    """
    if value is None or not value.strip():
        raise AuthError(AuthErrorCode.MISSING, "no Authorization header")
    parts = value.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise AuthError(AuthErrorCode.MALFORMED, "Authorization is not 'Bearer <token>'")
    return parts[1]


def token_from_subprotocols(header: str | None) -> tuple[str, str]:
    """Returns (token, protocol to select) from a `Sec-WebSocket-Protocol` request value.

    Browsers cannot set an Authorization header on a WebSocket, so they offer
    the token as a subprotocol next to the real one:

        Sec-WebSocket-Protocol: syncbridge.v1, bearer.<token>

    The order of the two entries does not matter (join repeated header lines
    with ", " first). The protocol to select, and echo in the response, is
    always "syncbridge.v1": echoing the bearer entry would send the token back.
    A JWT is made of subprotocol-safe characters (base64url and dots).

    AuthError token_missing if no bearer entry is offered; token_malformed if
    several are, the token is empty, or "syncbridge.v1" is not offered.
    """
    offered = [item.strip() for item in (header or "").split(",") if item.strip()]
    bearers = [item for item in offered if item.startswith(BEARER_SUBPROTOCOL_PREFIX)]
    if not bearers:
        raise AuthError(AuthErrorCode.MISSING, "no bearer subprotocol")
    if len(bearers) > 1:
        raise AuthError(AuthErrorCode.MALFORMED, "several bearer subprotocols")
    token = bearers[0].removeprefix(BEARER_SUBPROTOCOL_PREFIX)
    if not token:
        raise AuthError(AuthErrorCode.MALFORMED, "empty bearer subprotocol")
    if APP_SUBPROTOCOL not in offered:
        raise AuthError(AuthErrorCode.MALFORMED, f"subprotocol {APP_SUBPROTOCOL} not offered")
    return token, APP_SUBPROTOCOL
