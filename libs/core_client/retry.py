"""When a call to session-core may be retried, and how long to wait: pure.

Only calls whose repetition cannot apply twice are retried: reads, and the
writes that carry an op_id (ApplyUpdate, Handoff, EndSession), plus presence
reports and device claims (setting online/offline again is the same state). OpenSession that
creates a session (no session_id) is not: a retry could create a second one.
Only outcomes where nothing is known to have happened are retried:
UNAVAILABLE, and DEADLINE_EXCEEDED of one attempt while the overall budget
has time left. A call has one deadline in total (`Budget`): each attempt gets
what is left of it, and no attempt starts that the backoff would leave
(nearly) no time for.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from libs.backoff.backoff import BackoffPolicy

IDEMPOTENT = frozenset(
    {
        "GetSession",
        "ChangesSince",
        "ListSessions",
        "GetPresence",
        "ApplyUpdate",
        "Handoff",
        "EndSession",
        "UpdatePresence",
        "ClaimDevice",
        "OpenSession:attach",
    }
)
RETRYABLE_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
# An attempt with less time than this left is not worth starting.
MIN_ATTEMPT_SECONDS = 0.01


def method_key(method: str, *, attach: bool = False) -> str:
    """The name IDEMPOTENT knows the call by: OpenSession is idempotent only when attaching."""
    return f"{method}:attach" if method == "OpenSession" and attach else method


def should_retry(key: str, status: str, attempt: int, max_attempts: int) -> bool:
    """True if attempt number `attempt` (1-based) failed with `status` and may be repeated."""
    return key in IDEMPOTENT and status in RETRYABLE_CODES and attempt < max_attempts


# Retries of one call: 50 ms, 100 ms, ... up to 1 s, full jitter (libs/backoff).
CORE_BACKOFF = BackoffPolicy(base=0.05, cap=1.0)


def backoff_seconds(attempt: int, *, rand: Callable[[], float] = random.random) -> float:
    """The wait after attempt `attempt` (1-based) failed, before the next one."""
    return CORE_BACKOFF.delay(attempt - 1, rand)


class Budget:
    """One call's overall deadline, shared by all of its attempts and the waits between."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ends = clock() + seconds

    def remaining(self) -> float:
        """Seconds left: the timeout of the next attempt."""
        return max(0.0, self._ends - self._clock())

    def allows(self, delay: float) -> bool:
        """True if, after waiting `delay`, another attempt still has time to run."""
        return self.remaining() - delay >= MIN_ATTEMPT_SECONDS
