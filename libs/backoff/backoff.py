"""The one backoff: exponential delays up to a cap, jittered so that waiters spread out.

Attempt n (from 0) has the ceiling min(cap, base * 2**n); its delay is uniform
in [ceiling * (1 - jitter), ceiling]. `jitter=1` is "full jitter" (devices
reconnecting after a drain, retries of core calls: as many waiters as
possible spread over the whole window); a smaller jitter keeps a floor, for a
single waiter that must not spin (the outbox relay, a batch waiting on a row
lock) yet should not march in lock-step with its peers.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

# 2**62 times any sane base is past every cap: the exponent stops growing there.
_MAX_EXPONENT = 62


@dataclass(frozen=True)
class BackoffPolicy:
    """How delays grow (`base`, `cap`, seconds) and how much of each is random (`jitter`)."""

    base: float
    cap: float
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.base <= self.cap:
            raise ValueError(f"need 0 < base <= cap, got base={self.base}, cap={self.cap}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"need 0 <= jitter <= 1, got jitter={self.jitter}")

    def ceiling(self, attempt: int) -> float:
        """The longest delay attempt `attempt` (from 0) may wait."""
        if attempt < 0:
            raise ValueError(f"attempt counts from 0, got {attempt}")
        return min(self.cap, self.base * 2.0 ** min(attempt, _MAX_EXPONENT))

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """A delay for attempt `attempt`: `rand()` in [0, 1] picks it within the window."""
        ceiling = self.ceiling(attempt)
        return ceiling * (1.0 - self.jitter + self.jitter * rand())


class Backoff:
    """A waiter's own count of attempts over a policy: `next_delay`, `reset` after a good run."""

    def __init__(
        self,
        base: float = 0.2,
        cap: float = 10.0,
        *,
        jitter: float = 1.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.policy = BackoffPolicy(base, cap, jitter)
        self._rand = rand
        self.attempt = 0

    def next_delay(self) -> float:
        delay = self.policy.delay(self.attempt, self._rand)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
