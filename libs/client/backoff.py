"""Reconnect delays: exponential with full jitter, so a drained replica's devices spread out."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delay n (from 0) is uniform in [0, min(cap, base * 2**n)]; `reset` after a good run."""

    def __init__(
        self, base: float = 0.2, cap: float = 10.0, rand: Callable[[], float] = random.random
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"need 0 < base <= cap, got base={base}, cap={cap}")
        self._base = base
        self._cap = cap
        self._rand = rand
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self._cap, self._base * 2.0 ** min(self.attempt, 30))
        self.attempt += 1
        return self._rand() * ceiling

    def reset(self) -> None:
        self.attempt = 0
