"""The JSON bodies and HTTP statuses of /health/live and /health/ready.

Shapes are the seed's, byte for byte in key order:
    live:  {"status":"alive","uptime":"1200s"}
    ready: {"status":"healthy","timestamp":"2026-02-11T20:55:00Z"}            200
           {"status":"unhealthy","timestamp":"...","checks":{"redis":false}}  503
           {"status":"draining","timestamp":"..."}                            503
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus

ReadyBody = dict[str, str | dict[str, bool]]


def rfc3339_seconds(moment: datetime) -> str:
    """`moment` in UTC, whole seconds, "Z" suffix; a naive value is taken as local time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def live_payload(uptime_seconds: float) -> dict[str, str]:
    """Liveness body: uptime in whole seconds (truncated) with an "s" suffix."""
    return {"status": "alive", "uptime": f"{int(uptime_seconds)}s"}


def ready_payload(
    ready: bool, checks: Mapping[str, bool], now: datetime, *, draining: bool = False
) -> tuple[int, ReadyBody]:
    """Readiness (status code, body); draining wins over the checks' results.

    The per-check map is shown only when unhealthy: it is what an operator
    needs then, and the healthy body stays the seed's exact shape.
    """
    timestamp = rfc3339_seconds(now)
    if draining:
        return HTTPStatus.SERVICE_UNAVAILABLE.value, {"status": "draining", "timestamp": timestamp}
    if ready:
        return HTTPStatus.OK.value, {"status": "healthy", "timestamp": timestamp}
    return HTTPStatus.SERVICE_UNAVAILABLE.value, {
        "status": "unhealthy",
        "timestamp": timestamp,
        "checks": dict(checks),
    }
