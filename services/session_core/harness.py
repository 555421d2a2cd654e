"""Starts a real session-core in-process for tests, benchmarks and the edge's tests."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import grpc

from libs.config.settings import load_config
from services.session_core import server
from services.session_core.config import CoreConfig
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


@contextlib.asynccontextmanager
async def running_core(config: CoreConfig) -> AsyncIterator[server.Running]:
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


def as_user(user: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying the verified user, as the edge sends it."""
    return (("x-syncbridge-user", user),)
