"""Latency of calls (gRPC methods, WebSocket message types) by method and result code."""

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Histogram

from libs.metrics.buckets import LATENCY_BUCKETS


class Call:
    """Yielded by `RpcMetrics.time()`: set `code` to record a result other than the default."""

    __slots__ = ("code",)

    def __init__(self) -> None:
        self.code: str | None = None


class RpcMetrics:
    """A latency Histogram labelled (method, code), and a timer that fills it."""

    def __init__(self, latency: Histogram, clock: Callable[[], float]) -> None:
        self.latency = latency
        self._clock = clock

    @contextmanager
    def time(self, method: str) -> Iterator[Call]:
        """Times the block and observes it under `method` and its result code.

        The code is the one set on the yielded Call if any; otherwise "OK" when
        the block completes, "CANCELLED" when it is cancelled and "UNKNOWN" when
        it raises (gRPC status names). The exception is never swallowed.
        `method` must come from a fixed set: every value is a new time series.
        """
        call = Call()
        outcome = "UNKNOWN"
        start = self._clock()
        try:
            yield call
            outcome = "OK"
        except asyncio.CancelledError:
            outcome = "CANCELLED"
            raise
        finally:
            elapsed = self._clock() - start
            self.latency.labels(method=method, code=call.code or outcome).observe(elapsed)


def rpc_metrics(
    registry: CollectorRegistry,
    prefix: str,
    *,
    buckets: Sequence[float] = LATENCY_BUCKETS,
    clock: Callable[[], float] = time.perf_counter,
) -> RpcMetrics:
    """Registers `<prefix>_latency_seconds` in `registry` and returns its timer.

    e.g. prefix "syncbridge_core_rpc" for gRPC methods, "syncbridge_edge_ws_message"
    for client messages by type.
    """
    latency = Histogram(
        f"{prefix}_latency_seconds",
        f"Time to handle one {prefix} call, by method and result code.",
        labelnames=("method", "code"),
        buckets=buckets,
        registry=registry,
    )
    return RpcMetrics(latency, clock)
