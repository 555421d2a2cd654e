"""The fixtures hand out working, fresh and distinct resources, used with the real clients."""

from __future__ import annotations

import asyncio

import aio_pika
import aio_pika.exceptions
import asyncpg
import pytest
import redis.asyncio
from pamqp.commands import Basic

from tools.servers import servers

pytest_plugins = ("libs.testing.fixtures",)


def _last_path_part(url: str) -> str:
    return url.rsplit("/", 1)[1]


@pytest.mark.asyncio
async def test_redis_round_trip(redis_url: str) -> None:
    client = redis.asyncio.from_url(redis_url)
    try:
        assert await client.dbsize() == 0
        await client.set("greeting", "hello", ex=60)
        assert await client.get("greeting") == b"hello"
    finally:
        await client.aclose()
    assert _last_path_part(redis_url) != "0"  # db 0 holds the allocation counter


@pytest.mark.asyncio
async def test_postgres_round_trip(pg_dsn: str) -> None:
    connection = await asyncpg.connect(pg_dsn)
    try:
        assert await connection.fetchval("SELECT current_database()") == _last_path_part(pg_dsn)
        await connection.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
        await connection.execute("INSERT INTO notes VALUES ($1, $2)", 1, "hello")
        assert await connection.fetchval("SELECT body FROM notes WHERE id = $1", 1) == "hello"
    finally:
        await connection.close()


@pytest.mark.asyncio
async def test_rabbitmq_publish_confirmed_then_consumed(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue("greetings", durable=True)
        confirmation = await channel.default_exchange.publish(
            aio_pika.Message(b"hello", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue.name,
        )
        assert isinstance(confirmation, Basic.Ack)
        async with asyncio.timeout(10), queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    assert message.body == b"hello"
                break


# Both parametrised runs check they got something nobody handed out before, that
# nothing the other run wrote is visible, and that the previous run's resources
# were cleaned up (pytest runs them in order, in one process).
_handed_out: list[tuple[str, str, str]] = []


@pytest.mark.asyncio
@pytest.mark.parametrize("run", ["first", "second"])
async def test_each_test_gets_its_own_resources(
    run: str, redis_url: str, pg_dsn: str, amqp_url: str, server_config: servers.Config
) -> None:
    for previous in _handed_out:
        assert redis_url != previous[0]
        assert pg_dsn != previous[1]
        assert amqp_url != previous[2]
    if _handed_out:
        previous_redis, previous_pg, previous_amqp = _handed_out[-1]
        db = int(_last_path_part(previous_redis))
        assert servers.redis_command("DBSIZE", db=db, port=server_config.redis_port) == 0
        query = "SELECT count(*) FROM pg_database WHERE datname = '%s'"
        port = server_config.postgres_port
        assert servers.psql(query % _last_path_part(previous_pg), port=port) == "0"
        status, _ = servers.management_request(
            "GET",
            f"vhosts/{_last_path_part(previous_amqp)}",
            port=server_config.rabbitmq_management_port,
        )
        assert status == 404
    _handed_out.append((redis_url, pg_dsn, amqp_url))

    client = redis.asyncio.from_url(redis_url)
    try:
        assert await client.get("marker") is None
        await client.set("marker", run)
    finally:
        await client.aclose()

    connection = await asyncpg.connect(pg_dsn)
    try:
        assert await connection.fetchval("SELECT to_regclass('marker')") is None
        await connection.execute("CREATE TABLE marker (run text)")
    finally:
        await connection.close()

    amqp = await aio_pika.connect(amqp_url, timeout=10)
    async with amqp:
        with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
            probe = await amqp.channel()
            await probe.declare_queue("marker", passive=True)
        channel = await amqp.channel()
        await channel.declare_queue("marker", durable=True)
