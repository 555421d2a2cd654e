"""session-core's process: wires config, backends, gRPC, relay and jobs.

`bazel run //services/session_core` starts it against the local servers.
SIGTERM: health goes NOT_SERVING, new calls are refused, in-flight calls get
the grace period, then the relay and pools close.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from redis import asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from libs.auth.verified import RememberingVerifier
from libs.auth.verifier import JwtVerifier
from libs.config.reference import usage, wants_help
from libs.config.settings import ConfigError, describe, load_config
from libs.log.configure import configure_logging
from libs.metrics.exposition import MetricsServer, serve
from libs.metrics.registry import new_registry
from services.session_core import migrate
from services.session_core.cache import Cache
from services.session_core.callers import TlsFiles, jwt_config, tls_files
from services.session_core.config import CoreConfig
from services.session_core.relay import OutboxRelay, backlog, dead_letters
from services.session_core.service import SessionService
from services.session_core.store import Store
from services.session_core.updates import UpdateWriter
from syncbridge.session.v1 import session_pb2, session_pb2_grpc

log = logging.getLogger("session_core")
SERVICE_NAME = session_pb2.DESCRIPTOR.services_by_name["SessionService"].full_name


class StartupError(Exception):
    """Core cannot start as configured; the message names the variable."""


# The longest user id in base64 (4/3 of 8 KiB), with room for every other header.
MAX_METADATA_BYTES = 32 * 1024


def grpc_options(config: CoreConfig) -> list[tuple[str, Any]]:
    """Keepalive that a client following gRPC's keepalive guide never trips."""
    return [
        # A port already taken must fail loudly, not be silently shared.
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # Accept client pings as often as every 5 s (the guide's floor is 10 s).
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.max_receive_message_length", config.max_state_bytes * 2 + 65_536),
        ("grpc.max_send_message_length", config.max_state_bytes * 4 + 65_536),
        # Metadata carries the token (up to 8 KiB) and the user id it names (up to
        # 8 KiB of UTF-8, base64 on the wire, and again as ASCII if it is ASCII):
        # gRPC's 8 KiB default would refuse the longest ones.
        ("grpc.max_metadata_size", MAX_METADATA_BYTES),
        ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
    ]


@dataclass
class Running:
    """A started core: what tests and main() need to reach and stop it."""

    port: int
    metrics_port: int
    server: grpc.aio.Server
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]]
    pool: asyncpg.Pool
    redis: Any
    metrics: MetricsServer
    health: health.aio.HealthServicer
    relay: OutboxRelay
    grace: float
    registry: CollectorRegistry
    updates: UpdateWriter
    # With mTLS: the plaintext health-only server and its port (else None, 0).
    health_server: grpc.aio.Server | None = None
    health_port: int = 0

    async def shutdown(self) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.grace)
        if self.health_server is not None:
            await self.health_server.stop(0)
        # Batches still committing finish before their pool and Redis close.
        await self.updates.batches.close()
        self.stop.set()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.pool.close()
        await self.redis.aclose()
        self.metrics.stop()


async def start(config: CoreConfig, registry: CollectorRegistry | None = None) -> Running:
    """Starts every part of core and returns once the gRPC port is bound."""
    registry = registry or new_registry()
    verifier = _verifier(config)
    tls = tls_files(config)
    pool = await asyncpg.create_pool(config.pg_dsn, min_size=2, max_size=config.pg_pool_size)
    if config.migrate_on_start:
        async with pool.acquire() as conn:
            applied = await migrate.migrate(conn)
        if applied:
            log.info("schema migrated", extra={"applied": applied})
    redis: Any = (
        RedisCluster.from_url(config.redis_url)
        if config.redis_cluster
        else aioredis.Redis.from_url(config.redis_url, socket_timeout=2, socket_connect_timeout=2)
    )
    cache_requests = Counter(
        "syncbridge_core_cache_requests_total",
        "Redis look-ups by kind and result (hit/miss); hit ratio = hit / all.",
        labelnames=("kind", "result"),
        registry=registry,
    )
    cache = Cache(
        redis,
        ttl_seconds=config.session_ttl_seconds,
        log_length=config.change_log_length,
        presence_seconds=config.presence_ttl_seconds,
        on_result=lambda kind, hit: cache_requests.labels(kind, "hit" if hit else "miss").inc(),
    )
    store = Store(
        pool,
        ttl=dt.timedelta(seconds=config.session_ttl_seconds),
        max_state_bytes=config.max_state_bytes,
        max_patch_bytes=config.max_patch_bytes,
        max_devices=config.max_session_devices,
    )
    published = Counter(
        "syncbridge_core_outbox_published_total", "Events confirmed by RabbitMQ.", registry=registry
    )
    dead_lettered = Counter(
        "syncbridge_core_outbox_dead_lettered_total",
        "Outbox rows set aside in outbox_dead after repeated refusals by RabbitMQ.",
        registry=registry,
    )
    relay = OutboxRelay(
        config.pg_dsn,
        config.amqp_url,
        on_published=published.inc,
        on_dead_lettered=dead_lettered.inc,
    )

    updates = UpdateWriter(
        store,
        cache,
        max_batch=config.write_batch_max,
        max_inflight=config.write_batches_in_flight,
        on_batch=Histogram(
            "syncbridge_core_write_batch_size",
            "Updates committed per transaction (group commit).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=registry,
        ).observe,
    )
    server = grpc.aio.server(options=grpc_options(config))
    session_pb2_grpc.add_SessionServiceServicer_to_server(
        SessionService(
            store,
            cache,
            registry,
            verifier=verifier,
            max_devices=config.max_devices_per_user,
            allowed_clients=frozenset(config.allowed_clients) if tls else None,
            max_replay=config.max_replay,
            updates=updates,
        ),
        server,
    )
    health_servicer = health.aio.HealthServicer()
    for name in ("", SERVICE_NAME):  # known but not serving until PostgreSQL answers
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if config.reflection:
        # Off by default: it hands anyone who reaches the port the full API map.
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
    address = f"{config.grpc_host}:{config.grpc_port}"
    variable = "GRPC"
    health_server, health_port = None, 0
    try:
        port = _listen(server, address, tls)
        if tls is not None:
            variable = "HEALTH"
            health_server = grpc.aio.server(options=grpc_options(config))
            health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_server)
            health_port = health_server.add_insecure_port(
                f"{config.grpc_host}:{config.health_port}"
            )
        variable = "METRICS"
        metrics = serve(registry, config.grpc_host, config.metrics_port)
    except (RuntimeError, OSError) as error:
        await pool.close()
        raise StartupError(f"SYNCBRIDGE_CORE_{variable}_PORT: cannot listen: {error}") from None
    await server.start()
    if health_server is not None:
        await health_server.start()

    stop = asyncio.Event()
    gauges = _Gauges(registry)
    tasks = [
        asyncio.create_task(_watch_health(pool, health_servicer, gauges, stop)),
        asyncio.create_task(_purge(store, config.purge_interval_seconds, stop)),
        asyncio.create_task(_heal(cache, stop)),
    ]
    if config.relay_in_process:
        tasks.append(asyncio.create_task(relay.run(stop)))
    log.info("session-core serving", extra={"port": port, "config": describe(config)})
    return Running(
        port,
        metrics.port,
        server,
        stop,
        tasks,
        pool,
        redis,
        metrics,
        health_servicer,
        relay,
        config.grace_seconds,
        registry,
        updates,
        health_server,
        health_port,
    )


def _listen(server: grpc.aio.Server, address: str, tls: TlsFiles | None) -> int:
    """Binds core's gRPC port: mTLS when configured (a client certificate from the
    configured CA is required at the handshake), else plaintext."""
    if tls is None:
        log.info("gRPC without TLS: which service calls rests on the network (a mesh)")
        return int(server.add_insecure_port(address))
    credentials = grpc.ssl_server_credentials(
        [(tls.key, tls.cert)], root_certificates=tls.client_ca, require_client_auth=True
    )
    return int(server.add_secure_port(address, credentials))


def _verifier(config: CoreConfig) -> RememberingVerifier:
    """The verifier of callers' tokens, or StartupError naming the variable at fault."""
    policy = jwt_config(config)
    try:
        inner = JwtVerifier(policy)
    except (OSError, ValueError) as error:
        variable = "JWKS_PATH" if policy.jwks_path else "PUBLIC_KEY_PATH"
        raise StartupError(
            f"SYNCBRIDGE_CORE_JWT_{variable}: cannot load the token key: {error}"
            " (locally: bazel run //libs/client:dev_token -- init)"
        ) from None
    return RememberingVerifier(inner, leeway_seconds=policy.leeway_seconds)


class _Gauges:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.backlog = Gauge(
            "syncbridge_core_outbox_backlog", "Outbox rows not yet published.", registry=registry
        )
        self.lag = Gauge(
            "syncbridge_core_outbox_lag_seconds",
            "Age of the oldest unpublished outbox row.",
            registry=registry,
        )
        self.dead_letters = Gauge(
            "syncbridge_core_outbox_dead_letters",
            "Outbox rows set aside in outbox_dead, waiting for an operator.",
            registry=registry,
        )
        self.sessions = Gauge(
            "syncbridge_core_active_sessions", "Sessions not yet expired.", registry=registry
        )
        self.ready = Gauge(
            "syncbridge_core_ready", "1 while PostgreSQL answers.", registry=registry
        )


async def _watch_health(
    pool: asyncpg.Pool, servicer: health.aio.HealthServicer, gauges: _Gauges, stop: asyncio.Event
) -> None:
    """Serving iff PostgreSQL (the source of truth) answers; Redis and RabbitMQ
    outages degrade latency or delay events but lose nothing, so they do not
    take core out of rotation."""
    while not stop.is_set():
        try:
            async with asyncio.timeout(2):
                await pool.fetchval("SELECT 1")
                rows, age = await backlog(pool)
                dead = await dead_letters(pool)
                active = await pool.fetchval(
                    "SELECT count(*) FROM sessions WHERE expires_at > now()"
                )
            gauges.backlog.set(rows)
            gauges.lag.set(age)
            gauges.dead_letters.set(dead)
            gauges.sessions.set(active)
            status = health_pb2.HealthCheckResponse.SERVING
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            status = health_pb2.HealthCheckResponse.NOT_SERVING
        gauges.ready.set(1 if status == health_pb2.HealthCheckResponse.SERVING else 0)
        for name in ("", SERVICE_NAME):
            await servicer.set(name, status)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2)


async def _purge(store: Store, interval: float, stop: asyncio.Event) -> None:
    """Deletes expired sessions (TTL) in batches, every `interval` seconds."""
    while not stop.is_set():
        try:
            while await store.purge_expired() > 0:
                pass
        except (OSError, asyncpg.PostgresError) as error:
            log.warning("purge failed, retrying later", extra={"error": repr(error)})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def _heal(cache: Cache, stop: asyncio.Event) -> None:
    """Once Redis answers again, drops snapshots whose write-back failed."""
    while not stop.is_set():
        await cache.heal()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def _run(config: CoreConfig) -> None:
    running = await start(config)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    log.info("draining", extra={"grace_seconds": config.grace_seconds})
    await running.shutdown()
    log.info("stopped")


SUMMARY = (
    "session-core: the gRPC service that owns session state (PostgreSQL, Redis,"
    " RabbitMQ). Serves gRPC and, on its own port, /metrics; SIGTERM drains."
)


def main(argv: list[str] | None = None) -> int:
    if wants_help(sys.argv[1:] if argv is None else argv):
        print(usage(CoreConfig, "session_core", SUMMARY), end="")
        return 0
    try:
        config = load_config(CoreConfig, os.environ, prefix="SYNCBRIDGE_CORE_")
        jwt_config(config)
        tls_files(config)
    except ConfigError as error:
        print(f"session-core: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging("session-core", config.log_level)
    try:
        asyncio.run(_run(config))
    except StartupError as error:
        print(f"session-core: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
