"""`servers` gives a fault test its own servers to restart or crash, restored afterwards."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aio_pika
import pytest
import redis.asyncio
from pamqp.commands import Basic

from tools.servers import servers as servers_module

if TYPE_CHECKING:  # imported by pytest_plugins, where pytest rewrites its asserts
    from libs.testing.fixtures import ServerControl

pytest_plugins = ("libs.testing.fixtures",)


async def _publish_confirmed(amqp_url: str, body: bytes) -> None:
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue("survivors", durable=True)
        confirmation = await channel.default_exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue.name,
        )
        assert isinstance(confirmation, Basic.Ack)


@pytest.mark.asyncio
async def test_rabbitmq_restart_keeps_vhost_and_persistent_messages(
    servers: ServerControl, amqp_url: str
) -> None:
    # Not the shared server:
    assert servers.config.amqp_port != servers_module.default_config().amqp_port
    await _publish_confirmed(amqp_url, b"before")
    servers.restart("rabbitmq")
    assert servers.is_running("rabbitmq")
    await _publish_confirmed(amqp_url, b"after")
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        queue = await (await connection.channel()).declare_queue("survivors", durable=True)
        bodies = []
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            bodies.append(message.body)
    assert bodies == [b"before", b"after"]


@pytest.mark.asyncio
async def test_redis_restart_loses_data_by_design(servers: ServerControl, redis_url: str) -> None:
    before = redis.asyncio.from_url(redis_url)
    try:
        await before.set("volatile", "1")
        assert await before.get("volatile") == b"1"
    finally:
        await before.aclose()
    servers.restart("redis")
    after = redis.asyncio.from_url(redis_url)
    try:
        assert await after.get("volatile") is None  # no persistence, by design
    finally:
        await after.aclose()


_crashed: list[servers_module.Config] = []


def test_a_crashed_server_is_down_until_the_test_ends(servers: ServerControl, pg_dsn: str) -> None:
    servers.kill("postgres")
    assert not servers.is_running("postgres")
    _crashed.append(servers.config)


def test_then_it_runs_again(servers: ServerControl) -> None:
    # Runs after the test above, whose teardown restarted what it crashed.
    assert _crashed == [servers.config]
    assert servers.is_running("postgres")
