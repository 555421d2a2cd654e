"""Health state shared by session-core and ws-edge: uptime, readiness checks, draining."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from libs.health.payloads import ReadyBody, live_payload, ready_payload

Check = Callable[[], Awaitable[bool]]

# Below Kubernetes' default probe timeout (1 s), so a slow dependency shows
# up as a failed check in the body rather than as a probe timeout.
DEFAULT_CHECK_TIMEOUT_SECONDS = 0.8

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Registered:
    fn: Check
    timeout: float


def _utc_now() -> datetime:
    return datetime.now(UTC)


class HealthState:
    """Whether this process is alive, ready for traffic, or draining before exit.

    `clock` measures uptime (monotonic seconds); `wall` stamps readiness
    bodies. Both are injectable so tests need no sleeping.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._clock = clock
        self._wall = wall
        self._started = clock()
        self._checks: dict[str, _Registered] = {}
        self._draining = False

    def add_check(
        self, name: str, fn: Check, *, timeout: float = DEFAULT_CHECK_TIMEOUT_SECONDS
    ) -> None:
        """Registers a readiness check: an async function that returns True when healthy.

        A check that returns anything but True, raises, or takes longer than
        `timeout` seconds counts as failed.
        """
        if name in self._checks:
            raise ValueError(f"health check {name!r} is already registered")
        if timeout <= 0:
            raise ValueError(f"health check {name!r}: timeout must be positive")
        self._checks[name] = _Registered(fn, timeout)

    async def ready(self) -> tuple[bool, dict[str, bool]]:
        """Runs every check concurrently; returns (ready, {name: passed}).

        While draining the answer is False and no check runs: dependencies may
        already be closing, and the answer would not change anyway.
        """
        if self._draining:
            return False, {}
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(name) for name in names))
        details = dict(zip(names, results, strict=True))
        return all(results), details

    def mark_draining(self) -> None:
        """From now on readiness fails, so load balancers stop sending new traffic."""
        self._draining = True

    @property
    def draining(self) -> bool:
        """True once `mark_draining()` was called."""
        return self._draining

    def uptime_seconds(self) -> float:
        """Seconds since this state was created (by `clock`)."""
        return max(0.0, self._clock() - self._started)

    def liveness(self) -> dict[str, str]:
        """The /health/live body; liveness holds while draining, so no restart interrupts it."""
        return live_payload(self.uptime_seconds())

    async def readiness(self) -> tuple[int, ReadyBody]:
        """The /health/ready (status code, body), stamped after the checks finish."""
        ready, details = await self.ready()
        return ready_payload(ready, details, self._wall(), draining=self._draining)

    async def _run(self, name: str) -> bool:
        registered = self._checks[name]
        try:
            result = await asyncio.wait_for(registered.fn(), registered.timeout)
        except TimeoutError:
            _log.warning("health check timed out", extra={"check": name})
            return False
        except Exception as exc:
            # Only the type: a dependency's message can carry a DSN or credentials.
            _log.warning("health check raised", extra={"check": name, "error": type(exc).__name__})
            return False
        if result is not True:
            _log.warning("health check failed", extra={"check": name})
            return False
        return True
