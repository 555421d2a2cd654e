"""What one edge process shares between its connections, and how it drains."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from libs.auth.config import JwtConfig
from libs.auth.verifier import JwtVerifier
from libs.core_client.client import ClientTls, CoreClient
from libs.health.state import HealthState
from libs.metrics.registry import new_registry
from libs.protocol.codes import CloseCode
from libs.tasks.owned import OwnedTasks
from services.ws_edge.config import EdgeConfig
from services.ws_edge.drain import plan_batches
from services.ws_edge.fanout import Fanout
from services.ws_edge.hub import Hub
from services.ws_edge.metrics import EdgeMetrics

if TYPE_CHECKING:
    from services.ws_edge.connection import Connection

log = logging.getLogger(__name__)


def default_edge_id() -> str:
    """Host and pid say where; the suffix keeps replicas sharing a process (tests) apart."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def jwt_config(config: EdgeConfig) -> JwtConfig:
    return JwtConfig(
        audience=config.jwt_audience,
        issuer=config.jwt_issuer,
        algorithms=config.jwt_algorithms,
        leeway_seconds=config.jwt_leeway_seconds,
        public_key_path=config.jwt_public_key_path or None,
        jwks_path=config.jwt_jwks_path or None,
    )


def core_tls(config: EdgeConfig) -> ClientTls | None:
    """The edge's mTLS material for core, read at start; None for plaintext."""
    if not config.core_tls_cert_path:
        return None
    return ClientTls(
        ca_pem=Path(config.core_tls_ca_path).read_bytes(),
        cert_pem=Path(config.core_tls_cert_path).read_bytes(),
        key_pem=Path(config.core_tls_key_path).read_bytes(),
        server_name=config.core_tls_server_name,
    )


class Replica:
    """Shared state of one edge: core client, bus, hub, metrics, health, open connections."""

    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        self.edge_id = config.edge_id or default_edge_id()
        self.registry = new_registry()
        self.connections: set[Connection] = set()
        self.hub = Hub()
        self.metrics = EdgeMetrics(
            self.registry,
            open_connections=lambda: len(self.connections),
            active_sessions=lambda: self.hub.session_count,
        )
        self.verifier = JwtVerifier(jwt_config(config))
        self.core = CoreClient(
            config.core_target,
            deadline=config.core_deadline_seconds,
            attempts=config.core_attempts,
            metrics=self.metrics.core,
            tls=core_tls(config),
        )
        self.fanout = Fanout(
            config.amqp_url,
            self.edge_id,
            queue_max_length=config.queue_max_length,
            on_change=self.hub.dispatch_change,
            on_presence=self.hub.dispatch_presence,
            on_reconnect=self.hub.resync_all,
            on_lost=self._event_lost,
        )
        self.health = HealthState()
        self.health.add_check("core", self.core.healthy)
        self._background = OwnedTasks(log, "edge replica")

    def _event_lost(self, user: str | None) -> None:
        """A poison event: counted (an alert watches it); its user's devices check with core."""
        self.metrics.undeliverable.inc()
        self.hub.resync_user(user)

    async def start(self) -> None:
        await self.fanout.start()

    @property
    def draining(self) -> bool:
        return self.health.draining

    def background(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Runs `coro` detached but tracked, so shutdown can wait for it; failures are logged."""
        self._background.spawn(coro)

    async def drain(self, within: float | None = None) -> None:
        """Readiness fails, then connections close with 1001 in jittered batches.

        Returns within `within` seconds (default: the grace period, less a margin for
        what shutdown does after): each batch runs as its own task at its slot, each
        close gets what is left of the budget, and whoever is still open near its end
        (a stalled reader, a handler stuck on core) is closed with 1001 at once.
        """
        self.health.mark_draining()
        loop = asyncio.get_running_loop()
        started = loop.time()
        grace = self.config.grace_seconds if within is None else within
        margin = min(1.0, grace / 5)
        deadline = started + max(0.0, grace - 2 * margin)
        connections = list(self.connections)
        log.info("draining", extra={"connections": len(connections)})
        plan = plan_batches(
            connections,
            batches=self.config.drain_batches,
            spread=min(self.config.drain_spread_seconds, max(0.0, grace - 3 * margin)),
        )

        async def close_batch(delay: float, batch: tuple[Connection, ...]) -> None:
            await asyncio.sleep(max(0.0, started + delay - loop.time()))
            await asyncio.gather(
                *(conn.going_away(deadline) for conn in batch), return_exceptions=True
            )

        tasks = [asyncio.create_task(close_batch(batch.delay, batch.items)) for batch in plan]
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.0, deadline - loop.time()))
        # Anything that slipped in during the drain (the upgrade was already past the check).
        late = [conn for conn in self.connections if conn.close_code is None]
        if late:
            tasks += [asyncio.create_task(conn.going_away(deadline)) for conn in late]
            await asyncio.wait(tasks, timeout=max(0.0, deadline - loop.time()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in list(self.connections):
            if not conn.closed:
                conn.hard_close(CloseCode.GOING_AWAY, "server draining", linger=margin / 2)

    async def close(self, within: float = 5.0) -> None:
        """After the drain: background work (presence LEAVEs, unbinds), then bus and core."""
        await self._background.wait(within)
        with contextlib.suppress(Exception):
            await self.fanout.close()
        await self.core.close()
