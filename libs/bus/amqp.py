"""Declaring the exchange: core's relay and every edge declare it the same way.

Whichever starts first creates it; a second declaration with other arguments
would be refused by the broker (PRECONDITION_FAILED), so there is one.
"""

from __future__ import annotations

from aio_pika.abc import AbstractChannel, AbstractExchange

from libs.bus.topology import EXCHANGE, EXCHANGE_TYPE


async def declare_exchange(channel: AbstractChannel) -> AbstractExchange:
    """The durable topic exchange session events are published to."""
    return await channel.declare_exchange(EXCHANGE, EXCHANGE_TYPE, durable=True)
