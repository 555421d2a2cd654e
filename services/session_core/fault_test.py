"""session-core under faults: a RabbitMQ restart, a crash between commit and
publish, SIGTERM, and TTL expiry. Real servers, real processes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aio_pika
import asyncpg
import grpc
import pytest

from libs.bus.amqp import declare_exchange
from libs.bus.messages import decode_change
from libs.bus.topology import routing_key
from libs.testing.ports import free_port
from services.session_core.harness import (
    as_user,
    core_config,
    jwt_env,
    refused_port,
    running_core,
    stub_for,
    wait_serving,
)
from syncbridge.session.v1 import session_pb2

if TYPE_CHECKING:
    from libs.testing.fixtures import ServerControl

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio

CORE_BINARY = Path("services/session_core/session_core")
RELAY_BINARY = Path("services/session_core/outbox_relay")


async def durable_queue(amqp_url: str, user: str) -> tuple[Any, Any]:
    """A durable queue bound to `user`'s events: it outlives broker restarts."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    exchange = await declare_exchange(channel)
    queue = await channel.declare_queue("fault-test", durable=True)
    await queue.bind(exchange, routing_key=routing_key(user))
    return connection, queue


async def drain_versions(amqp_url: str, want: set[int], within: float = 30) -> set[int]:
    """Consumes the durable queue until every wanted version arrived (or time out)."""
    seen: set[int] = set()
    async with asyncio.timeout(within):
        while not want <= seen:
            try:
                connection = await aio_pika.connect(amqp_url)
            except (OSError, aio_pika.exceptions.AMQPError):
                await asyncio.sleep(0.5)
                continue
            async with connection:
                channel = await connection.channel()
                queue = await channel.declare_queue("fault-test", durable=True)
                while not want <= seen:
                    message = await queue.get(fail=False)
                    if message is None:
                        await asyncio.sleep(0.1)
                        continue
                    await message.ack()
                    seen.add(decode_change(message.body).version)
    return seen


async def write(stub: Any, session: Any, n: int) -> int:
    result = await stub.ApplyUpdate(
        session_pb2.ApplyUpdateRequest(
            session_id=session.session_id,
            device_id="phone",
            op_id=f"op-{n}",
            base_version=session.version,
            epoch=session.epoch,
            patch_json=json.dumps({f"k{n}": n}),
        ),
        metadata=as_user("alice"),
        timeout=10,
    )
    return int(result.change.version)


async def open_session(stub: Any) -> Any:
    response = await stub.OpenSession(
        session_pb2.OpenSessionRequest(device_id="phone"), metadata=as_user("alice"), timeout=10
    )
    return response.session


async def test_rabbitmq_restart_mid_run_misses_no_event(
    pg_dsn: str, redis_url: str, amqp_url: str, servers: ServerControl
) -> None:
    connection, _ = await durable_queue(amqp_url, "alice")
    await connection.close()
    async with (
        running_core(core_config(pg_dsn, redis_url, amqp_url)) as core,
        stub_for(core.port) as stub,
    ):
        session = await open_session(stub)
        acked = [await write(stub, session, n) for n in range(5)]
        servers.stop("rabbitmq")
        # Writes keep being acknowledged: the outbox holds their events.
        acked += [await write(stub, session, n) for n in range(5, 10)]
        servers.start("rabbitmq")
        acked += [await write(stub, session, n) for n in range(10, 15)]
        assert acked == list(range(2, 17))
        seen = await drain_versions(amqp_url, set(range(1, 17)))
    assert seen >= set(range(1, 17))


class CoreProcess:
    """session-core as its own OS process, configured only by environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(CORE_BINARY)],
            env={
                **os.environ,
                **env,
                "SYNCBRIDGE_CORE_GRPC_PORT": str(self.port),
                "SYNCBRIDGE_CORE_METRICS_PORT": "0",
            },
            stdout=sys.stderr,
            stderr=sys.stderr,
        )

    async def wait_serving(self) -> None:
        await wait_serving(self.port, alive=lambda: self.proc.poll() is None)


@pytest.fixture
def core_env(pg_dsn: str, redis_url: str) -> dict[str, str]:
    return {"SYNCBRIDGE_CORE_PG_DSN": pg_dsn, "SYNCBRIDGE_CORE_REDIS_URL": redis_url, **jwt_env()}


async def test_killed_between_commit_and_publish_outbox_still_delivers(
    pg_dsn: str, amqp_url: str, core_env: dict[str, str]
) -> None:
    connection, _ = await durable_queue(amqp_url, "alice")
    await connection.close()
    # Core A commits and acknowledges, but cannot publish: nothing answers at its broker.
    with refused_port() as no_broker:
        dead_url = f"amqp://guest:guest@127.0.0.1:{no_broker}/"
        first = CoreProcess({**core_env, "SYNCBRIDGE_CORE_AMQP_URL": dead_url})
        try:
            await first.wait_serving()
            async with stub_for(first.port) as stub:
                session = await open_session(stub)
                acked = [await write(stub, session, n) for n in range(10)]
            assert acked == list(range(2, 12))
            conn = await asyncpg.connect(pg_dsn)
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 11
            await conn.close()
        finally:
            first.proc.kill()  # SIGKILL: no shutdown path runs
            first.proc.wait()
    second = CoreProcess({**core_env, "SYNCBRIDGE_CORE_AMQP_URL": amqp_url})
    try:
        await second.wait_serving()
        seen = await drain_versions(amqp_url, set(range(1, 12)))
        assert seen >= set(range(1, 12))
        # SIGTERM: drains and exits cleanly within the grace period.
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(timeout=25) == 0
    finally:
        if second.proc.poll() is None:
            second.proc.kill()


def start_relay(pg_dsn: str, amqp_url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The outbox relay binary, configured only by environment."""
    return subprocess.Popen(
        [str(RELAY_BINARY)],
        env={
            **os.environ,
            "SYNCBRIDGE_CORE_PG_DSN": pg_dsn,
            "SYNCBRIDGE_CORE_AMQP_URL": amqp_url,
            **env,
        },
        stdout=sys.stderr,
        stderr=sys.stderr,
    )


def published_total(port: int) -> float | None:
    """The relay's published counter from its /metrics, or None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("syncbridge_core_outbox_published_total "):
            return float(line.split()[1])
    return None


async def test_the_relay_as_its_own_process_delivers_and_stops_on_sigterm(
    pg_dsn: str, redis_url: str, amqp_url: str
) -> None:
    connection, _ = await durable_queue(amqp_url, "alice")
    await connection.close()
    config = dataclasses.replace(core_config(pg_dsn, redis_url, amqp_url), relay_in_process=False)
    # Core's metrics port is taken (as beside a running core): the relay must not
    # care, it serves on SYNCBRIDGE_CORE_RELAY_METRICS_PORT.
    with socket.socket() as core_metrics:
        core_metrics.bind(("127.0.0.1", 0))
        core_metrics.listen()
        relay_port = free_port()
        relay_env = {
            "SYNCBRIDGE_CORE_METRICS_PORT": str(core_metrics.getsockname()[1]),
            "SYNCBRIDGE_CORE_RELAY_METRICS_PORT": str(relay_port),
        }
        async with running_core(config) as core, stub_for(core.port) as stub:
            session = await open_session(stub)
            acked = [await write(stub, session, n) for n in range(5)]
            await asyncio.sleep(1.0)
            # Core itself publishes nothing now: every event waits in the outbox.
            assert await core.pool.fetchval("SELECT count(*) FROM outbox") == 6
            relay = start_relay(pg_dsn, amqp_url, relay_env)
            try:
                seen = await drain_versions(amqp_url, set(range(1, 7)))
                assert seen >= set(range(1, 7)) and acked == list(range(2, 7))
                # Rows go once the broker confirmed them, just after consumers saw them.
                for _ in range(100):
                    if await core.pool.fetchval("SELECT count(*) FROM outbox") == 0:
                        break
                    await asyncio.sleep(0.05)
                else:
                    pytest.fail("the relay left published rows in the outbox")
                assert await asyncio.to_thread(published_total, relay_port) == 6
                relay.send_signal(signal.SIGTERM)
                assert relay.wait(timeout=15) == 0
            finally:
                if relay.poll() is None:
                    relay.kill()


async def test_expired_sessions_are_not_served_and_are_purged(
    pg_dsn: str, redis_url: str, amqp_url: str
) -> None:
    config = dataclasses.replace(
        core_config(pg_dsn, redis_url, amqp_url),
        session_ttl_seconds=1.0,
        purge_interval_seconds=0.3,
    )
    async with running_core(config) as core, stub_for(core.port) as stub:
        session = await open_session(stub)
        await stub.GetSession(
            session_pb2.GetSessionRequest(session_id=session.session_id), metadata=as_user("alice")
        )
        await asyncio.sleep(1.5)
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await stub.GetSession(
                session_pb2.GetSessionRequest(session_id=session.session_id),
                metadata=as_user("alice"),
            )
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
        for _ in range(50):
            if await core.pool.fetchval("SELECT count(*) FROM sessions") == 0:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the expired session was not purged within 5 s")


async def test_redis_down_core_keeps_serving_from_postgresql(
    pg_dsn: str, redis_url: str, amqp_url: str, servers: ServerControl
) -> None:
    async with (
        running_core(core_config(pg_dsn, redis_url, amqp_url)) as core,
        stub_for(core.port) as stub,
    ):
        session = await open_session(stub)
        acked = [await write(stub, session, n) for n in range(3)]
        servers.stop("redis")
        acked += [await write(stub, session, n) for n in range(3, 6)]
        replay = await stub.ChangesSince(
            session_pb2.ChangesSinceRequest(session_id=session.session_id, epoch=1, version=1),
            metadata=as_user("alice"),
        )
        assert replay.recovered and [c.version for c in replay.changes] == list(range(2, 8))
        servers.start("redis")
        acked += [await write(stub, session, n) for n in range(6, 9)]
        assert acked == list(range(2, 11))
        got = await stub.GetSession(
            session_pb2.GetSessionRequest(session_id=session.session_id), metadata=as_user("alice")
        )
        assert got.version == 10 and got.epoch == 1
