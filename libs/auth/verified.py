"""A verifier that remembers recent tokens, for a service checking one token many times.

Core verifies the device's token on every call, and an ApplyUpdates call
carries many updates, mostly with tokens it has just seen. A signature check
costs tens of microseconds; a dictionary hit does not. What is remembered is
the exact token text and its verified claims: a hit is the same bytes that
passed, and its expiry is still checked, on every use, against the clock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from libs.auth.claims import Claims
from libs.auth.errors import AuthError, AuthErrorCode


class Verifier(Protocol):
    def verify(self, token: str | None) -> Claims: ...


class RememberingVerifier:
    """`verify` of `inner`, with the last `capacity` tokens that passed remembered."""

    def __init__(
        self,
        inner: Verifier,
        *,
        leeway_seconds: float,
        capacity: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._inner = inner
        self._leeway = leeway_seconds
        self._capacity = capacity
        self._clock = clock
        self._passed: OrderedDict[str, Claims] = OrderedDict()

    def verify(self, token: str | None) -> Claims:
        """As the inner verifier: Claims, or AuthError with its stable code."""
        if not token:
            raise AuthError(AuthErrorCode.MISSING, "no token")
        claims = self._passed.get(token)
        if claims is None:
            claims = self._inner.verify(token)
            self._passed[token] = claims
            if len(self._passed) > self._capacity:
                self._passed.popitem(last=False)
        else:
            self._passed.move_to_end(token)
        # The inner check ran when the token was first seen: time has moved on since.
        if claims.exp + self._leeway < self._clock():
            self._passed.pop(token, None)
            raise AuthError(AuthErrorCode.EXPIRED, "token expired")
        return claims
