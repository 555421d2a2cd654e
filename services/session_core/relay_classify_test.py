"""Which relay failures are outages (wait, blame no row) and which a row's (retry, set aside)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aio_pika
import pytest

from services.session_core.relay import Outage, Unpublishable, _check, _Publisher


def publisher(
    *, open_here: bool = True, transport_open: bool = True, transport: bool = True
) -> Any:
    inner = SimpleNamespace(is_closed=not transport_open)
    connection = SimpleNamespace(
        is_closed=not open_here,
        transport=SimpleNamespace(connection=inner) if transport else None,
    )
    return _Publisher(connection)  # type: ignore[arg-type]


NACK: Any = SimpleNamespace(name="Basic.Nack")


@pytest.mark.parametrize(
    "error",
    [
        TimeoutError(),  # a confirm that never came
        ConnectionResetError(),
        aio_pika.exceptions.AMQPConnectionError(),
        aio_pika.exceptions.ConnectionClosed(320, "CONNECTION_FORCED"),
        # A nack (only the frame's name is read).
        aio_pika.exceptions.DeliveryError(None, NACK),
    ],
)
def test_broker_trouble_is_an_outage(error: Exception) -> None:
    assert isinstance(publisher().classify(error), Outage)


@pytest.mark.parametrize(
    "error",
    [
        TypeError("string exceeds maximum length of 255 bytes"),
        Unpublishable("routing key longer than 255 bytes"),
        aio_pika.exceptions.ChannelPreconditionFailed(406, "message size too large"),
        RuntimeError("whatever the client library raised"),
    ],
)
def test_a_refusal_on_a_live_connection_is_the_rows(error: Exception) -> None:
    assert publisher().classify(error) is error


@pytest.mark.parametrize(
    "state",
    [{"open_here": False}, {"transport": False}, {"transport_open": False}],
)
def test_any_error_on_a_dead_connection_is_an_outage(state: dict[str, bool]) -> None:
    error = RuntimeError("<Connection ...> closed")
    assert isinstance(publisher(**state).classify(error), Outage)


def test_routing_keys_over_255_bytes_are_refused_before_publishing() -> None:
    _check({"routing_key": "user." + "a" * 250})
    with pytest.raises(Unpublishable):
        _check({"routing_key": "user." + "a" * 251})
    with pytest.raises(Unpublishable):
        _check({"routing_key": "é" * 128})  # 256 bytes of UTF-8
