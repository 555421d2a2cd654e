"""Readiness runs checks concurrently and counts any misbehaviour as a failure."""

import asyncio
from datetime import UTC, datetime

import pytest

from libs.health.state import HealthState


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def _wall() -> datetime:
    return datetime(2026, 2, 11, 20, 55, tzinfo=UTC)


async def _passes() -> bool:
    return True


async def _fails() -> bool:
    return False


async def _raises() -> bool:
    raise ConnectionError("redis://:hunter2@redis down")


async def _hangs() -> bool:
    await asyncio.sleep(3600)
    return True


async def _truthy() -> bool:
    return 1  # type: ignore[return-value]


def test_uptime_and_liveness_use_the_clock() -> None:
    clock = FakeClock()
    state = HealthState(clock=clock, wall=_wall)
    clock.now += 1200.7
    assert state.uptime_seconds() == pytest.approx(1200.7)
    assert state.liveness() == {"status": "alive", "uptime": "1200s"}


@pytest.mark.asyncio
async def test_ready_with_no_checks() -> None:
    state = HealthState(wall=_wall)
    assert await state.ready() == (True, {})
    assert await state.readiness() == (
        200,
        {"status": "healthy", "timestamp": "2026-02-11T20:55:00Z"},
    )


@pytest.mark.asyncio
async def test_any_failure_mode_fails_readiness() -> None:
    state = HealthState(wall=_wall)
    state.add_check("postgres", _passes)
    state.add_check("redis", _fails)
    state.add_check("rabbitmq", _raises)
    state.add_check("core", _hangs, timeout=0.01)
    state.add_check("sloppy", _truthy)
    ready, details = await state.ready()
    assert not ready
    assert details == {
        "postgres": True,
        "redis": False,
        "rabbitmq": False,
        "core": False,
        "sloppy": False,
    }
    status, body = await state.readiness()
    assert status == 503
    assert body["status"] == "unhealthy"
    assert body["checks"] == details


@pytest.mark.asyncio
async def test_checks_run_concurrently() -> None:
    # Each check needs the other to have started: only a concurrent run passes.
    first_started, second_started = asyncio.Event(), asyncio.Event()

    async def first() -> bool:
        first_started.set()
        await second_started.wait()
        return True

    async def second() -> bool:
        second_started.set()
        await first_started.wait()
        return True

    state = HealthState()
    state.add_check("first", first, timeout=5)
    state.add_check("second", second, timeout=5)
    assert await state.ready() == (True, {"first": True, "second": True})


@pytest.mark.asyncio
async def test_draining_fails_readiness_without_running_checks() -> None:
    calls = 0

    async def counted() -> bool:
        nonlocal calls
        calls += 1
        return True

    state = HealthState(wall=_wall)
    state.add_check("counted", counted)
    assert not state.draining
    state.mark_draining()
    assert state.draining
    assert await state.ready() == (False, {})
    assert await state.readiness() == (
        503,
        {"status": "draining", "timestamp": "2026-02-11T20:55:00Z"},
    )
    assert calls == 0
    assert state.liveness()["status"] == "alive"


def test_check_registration_errors() -> None:
    state = HealthState()
    state.add_check("redis", _passes)
    with pytest.raises(ValueError, match="already registered"):
        state.add_check("redis", _passes)
    with pytest.raises(ValueError, match="timeout must be positive"):
        state.add_check("postgres", _passes, timeout=0)


@pytest.mark.asyncio
async def test_failure_log_does_not_carry_the_exception_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = HealthState()
    state.add_check("redis", _raises)
    with caplog.at_level("WARNING"):
        await state.ready()
    assert [(r.getMessage(), r.__dict__["error"]) for r in caplog.records] == [
        ("health check raised", "ConnectionError")
    ]
    assert "hunter2" not in caplog.text
