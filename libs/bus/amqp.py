"""Declaring the exchanges: core's relay and every edge declare them the same way.

Whichever starts first creates it; a second declaration with other arguments
would be refused by the broker (PRECONDITION_FAILED), so there is one.
"""

from __future__ import annotations

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractExchange

from libs.bus.topology import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_MAX_LENGTH,
    DEAD_LETTER_QUEUE,
    EXCHANGE,
    EXCHANGE_TYPE,
)


async def declare_exchange(channel: AbstractChannel) -> AbstractExchange:
    """The durable topic exchange session events are published to."""
    return await channel.declare_exchange(EXCHANGE, EXCHANGE_TYPE, durable=True)


async def declare_dead_letter(channel: AbstractChannel) -> AbstractExchange:
    """The exchange poison is set aside on, with its durable, bounded queue bound to it."""
    exchange = await channel.declare_exchange(
        DEAD_LETTER_EXCHANGE, ExchangeType.FANOUT, durable=True
    )
    queue = await channel.declare_queue(
        DEAD_LETTER_QUEUE,
        durable=True,
        arguments={"x-max-length": DEAD_LETTER_MAX_LENGTH, "x-overflow": "drop-head"},
    )
    await queue.bind(exchange)
    return exchange
