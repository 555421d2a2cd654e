"""Starts and reaches a real session-core: for tests, the benchmark and the edge's tests.

The one door other packages' tests use into core (testonly, so no image can
ship it): they import `Running` and the helpers from here, never core's modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.config.settings import load_config
from libs.identity import identity
from services.session_core import server
from services.session_core.config import CoreConfig
from services.session_core.server import Running as Running
from syncbridge.session.v1 import session_pb2_grpc


def core_config(pg_dsn: str, redis_url: str, amqp_url: str, **overrides: Any) -> CoreConfig:
    """Defaults plus the given backends, on ephemeral loopback ports."""
    config = load_config(CoreConfig, {})
    return dataclasses.replace(
        config,
        grpc_port=0,
        metrics_port=0,
        pg_dsn=pg_dsn,
        redis_url=redis_url,
        amqp_url=amqp_url,
        pg_pool_size=8,
        grace_seconds=2.0,
        **overrides,
    )


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port where nothing answers while the block runs: this process holds it
    bound without listening, so connections are refused and no other process can take it.
    (A fixed "unused" port such as 9 or 1 is only unused until something listens there.)"""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def running_core(config: CoreConfig) -> AsyncIterator[Running]:
    """A started core; shut down (gracefully) on exit."""
    running = await server.start(config)
    try:
        yield running
    finally:
        await running.shutdown()


@contextlib.asynccontextmanager
async def stub_for(port: int) -> AsyncIterator[Any]:
    """A SessionService stub on a fresh channel to 127.0.0.1:port."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield session_pb2_grpc.SessionServiceStub(channel)  # type: ignore[no-untyped-call]


def as_user(user: str) -> tuple[tuple[str, bytes], ...]:
    """Call metadata carrying the verified user, as the edge sends it."""
    return ((identity.METADATA_KEY, identity.to_metadata(user)),)


async def wait_serving(
    port: int,
    *,
    within: float = 30.0,
    service: str = "",
    alive: Callable[[], bool] = lambda: True,
) -> None:
    """Polls grpc.health.v1 on 127.0.0.1:port until SERVING, while `alive()` holds."""
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
        asyncio.timeout(within),
    ):
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            assert alive(), "core exited during start-up"
            try:
                answer = await health.Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=1
                )
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass  # not listening yet
            await asyncio.sleep(0.1)
