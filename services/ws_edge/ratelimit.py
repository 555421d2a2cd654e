"""Token-bucket rate limiting, pure: the caller passes the clock.

A connection may send `rate` messages per second on average and `burst` at
once. A message over the limit is refused (the client gets `rate_limited`
with a retry hint); a client that keeps sending while refused, more than
`max_refused` times in a row, is disconnected (close 4029) since it is not
listening to the hints.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class TokenBucket:
    """`burst` tokens, refilled at `rate` per second; one token per message."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got rate={rate}, burst={burst}")
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._stamp = now

    def _refill(self, now: float) -> None:
        # A clock that goes backwards (it should not) must not mint tokens.
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._stamp = max(self._stamp, now)

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spends `cost` tokens if there are that many; False (nothing spent) otherwise."""
        self._refill(now)
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False

    def retry_after(self, now: float, cost: float = 1.0) -> float:
        """Seconds until `cost` tokens are available (0 if they are now)."""
        self._refill(now)
        return max(0.0, (cost - self._tokens) / self._rate)


class Verdict(Enum):
    """What to do with one incoming message."""

    ALLOW = "allow"
    REFUSE = "refuse"
    DISCONNECT = "disconnect"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    retry_after: float = 0.0


class MessageLimiter:
    """The per-connection limit: a bucket plus a count of refusals in a row."""

    def __init__(self, rate: float, burst: float, max_refused: int, now: float) -> None:
        if max_refused < 0:
            raise ValueError("max_refused must not be negative")
        self._bucket = TokenBucket(rate, burst, now)
        self._max_refused = max_refused
        self._refused = 0

    def check(self, now: float) -> Decision:
        """Allow, refuse (with a retry hint) or, after too many refusals in a row, disconnect."""
        if self._bucket.take(now):
            self._refused = 0
            return Decision(Verdict.ALLOW)
        self._refused += 1
        if self._refused > self._max_refused:
            return Decision(Verdict.DISCONNECT)
        return Decision(Verdict.REFUSE, self._bucket.retry_after(now))
