"""The timer observes each call once, under the code that describes its end."""

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from libs.metrics.exposition import render
from libs.metrics.registry import new_registry
from libs.metrics.rpc import RpcMetrics, rpc_metrics


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry() -> CollectorRegistry:
    return new_registry(runtime=False)


@pytest.fixture
def metrics(registry: CollectorRegistry, clock: FakeClock) -> RpcMetrics:
    return rpc_metrics(registry, "syncbridge_core_rpc", clock=clock)


def _count(registry: CollectorRegistry, method: str, code: str) -> float | None:
    return registry.get_sample_value(
        "syncbridge_core_rpc_latency_seconds_count", {"method": method, "code": code}
    )


def test_success_is_ok_and_lands_in_its_bucket(
    registry: CollectorRegistry, metrics: RpcMetrics, clock: FakeClock
) -> None:
    with metrics.time("GetSession"):
        clock.now += 0.003
    text = render(registry)[0].decode()
    bucket = 'syncbridge_core_rpc_latency_seconds_bucket{code="OK",le="%s",method="GetSession"}'
    assert f"{bucket % '0.0025'} 0.0" in text
    assert f"{bucket % '0.005'} 1.0" in text
    assert 'syncbridge_core_rpc_latency_seconds_sum{code="OK",method="GetSession"} 0.003' in text


def test_explicit_code_wins(registry: CollectorRegistry, metrics: RpcMetrics) -> None:
    with metrics.time("ApplyUpdate") as call:
        call.code = "FAILED_PRECONDITION"
    assert _count(registry, "ApplyUpdate", "FAILED_PRECONDITION") == 1.0
    assert _count(registry, "ApplyUpdate", "OK") is None


def test_exception_is_unknown_and_propagates(
    registry: CollectorRegistry, metrics: RpcMetrics
) -> None:
    with pytest.raises(RuntimeError), metrics.time("Handoff"):
        raise RuntimeError("boom")
    assert _count(registry, "Handoff", "UNKNOWN") == 1.0


def test_code_set_before_raising_is_kept(registry: CollectorRegistry, metrics: RpcMetrics) -> None:
    with pytest.raises(PermissionError), metrics.time("Handoff") as call:
        call.code = "PERMISSION_DENIED"
        raise PermissionError
    assert _count(registry, "Handoff", "PERMISSION_DENIED") == 1.0


def test_cancellation_is_cancelled(registry: CollectorRegistry, metrics: RpcMetrics) -> None:
    async def handler() -> None:
        with metrics.time("ChangesSince"):
            await asyncio.sleep(3600)

    async def main() -> None:
        task = asyncio.create_task(handler())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert _count(registry, "ChangesSince", "CANCELLED") == 1.0
