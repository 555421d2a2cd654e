"""free_port hands out a loopback port that can be bound at once."""

from __future__ import annotations

import socket

from libs.testing.ports import HOST, free_port


def test_the_port_is_free_on_loopback() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind((HOST, port))
