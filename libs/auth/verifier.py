"""Verifies a JWT against the configured keys, algorithms, audience and issuer."""

import jwt

from libs.auth.claims import Claims, claims_from_payload
from libs.auth.config import JwtConfig
from libs.auth.errors import AuthError, AuthErrorCode
from libs.auth.keys import load_keys

# Real tokens are well under 2 KiB; refusing huge ones early bounds the work
# an unauthenticated client can make us do.
MAX_TOKEN_LENGTH = 8192
_REQUIRED_CLAIMS = ["exp", "iat", "sub"]


class JwtVerifier:
    """Checks tokens; built once at start-up (it reads the key file)."""

    def __init__(self, config: JwtConfig) -> None:
        self._config = config
        self._keys = load_keys(config)

    def verify(self, token: str | None) -> Claims:
        """Returns the token's claims, or raises AuthError with a stable code.

        token_missing: empty. token_malformed: not a JWS compact token.
        token_invalid: bad signature, header `alg` not in the config's allowlist
        (verification uses that list, never the token's say; `none` and HMAC
        cannot be in it), unknown kid, key of the wrong family, a `crit`
        header, wrong aud or iss, or a required claim (exp, iat, sub) missing,
        or a `sub` that cannot be a user id (libs/identity: U+0000, a lone
        surrogate; any other text is one).
        token_expired / token_not_yet_valid: exp, or nbf/iat, out of range by
        more than the leeway.
        """
        if not token:
            raise AuthError(AuthErrorCode.MISSING, "no token")
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthError(AuthErrorCode.MALFORMED, "token too long")
        if not token.isascii():
            # A compact JWS is base64url and dots. Anything else is malformed here,
            # before PyJWT, which raises UnicodeEncodeError (not a PyJWTError) on the
            # lone surrogates a header's non-UTF-8 bytes are decoded to.
            raise AuthError(AuthErrorCode.MALFORMED, "token is not ASCII")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise AuthError(AuthErrorCode.MALFORMED, "unreadable token") from exc
        except jwt.PyJWTError as exc:
            # A readable header that PyJWT refuses: a bad crit or a non-string kid.
            raise AuthError(AuthErrorCode.INVALID, type(exc).__name__) from exc
        if "crit" in header:
            # We implement no JWS extension, so none can be honoured (RFC 7515 §4.1.11).
            raise AuthError(AuthErrorCode.INVALID, "crit header is not supported")
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._config.algorithms:
            raise AuthError(AuthErrorCode.INVALID, "algorithm not allowed")
        key = self._keys.select(header.get("kid"))
        if not key.fits(algorithm):
            raise AuthError(AuthErrorCode.INVALID, "key does not fit the algorithm")
        try:
            payload = jwt.decode(
                token,
                key.key,
                algorithms=list(self._config.algorithms),
                audience=self._config.audience,
                issuer=self._config.issuer,
                leeway=self._config.leeway_seconds,
                options={"require": _REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError(AuthErrorCode.EXPIRED, "token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthError(AuthErrorCode.NOT_YET_VALID, "token not yet valid") from exc
        except jwt.PyJWTError as exc:
            # Signature, audience, issuer, required claims: the class names the
            # reason for logs without repeating anything from the token.
            raise AuthError(AuthErrorCode.INVALID, type(exc).__name__) from exc
        return claims_from_payload(
            payload, audience=self._config.audience, issuer=self._config.issuer
        )
