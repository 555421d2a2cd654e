"""The relay process serves /metrics on SYNCBRIDGE_CORE_RELAY_METRICS_PORT, not on core's port.

No servers needed: the relay keeps retrying a PostgreSQL that refuses, and its
metrics answer meanwhile. Every port here is one this test holds or picked free.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from libs.testing.ports import free_port

RELAY_BINARY = Path("services/session_core/outbox_relay")


@contextlib.contextmanager
def held_port(*, listen: bool) -> Iterator[int]:
    """A loopback port this test owns: listening (taken) or bound only (refuses connections)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        if listen:
            sock.listen()
        yield int(sock.getsockname()[1])


def relay(env: dict[str, str]) -> subprocess.Popen[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SYNCBRIDGE_")}
    return subprocess.Popen(
        [str(RELAY_BINARY)],
        env={**inherited, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def scrape(port: int, within: float = 20.0) -> str:
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
                return str(answer.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_serves_on_its_own_port_while_cores_port_is_taken() -> None:
    with held_port(listen=True) as core_port, held_port(listen=False) as no_postgres:
        own_port = free_port()
        proc = relay(
            {
                "SYNCBRIDGE_CORE_METRICS_PORT": str(core_port),
                "SYNCBRIDGE_CORE_RELAY_METRICS_PORT": str(own_port),
                "SYNCBRIDGE_CORE_PG_DSN": f"postgresql://syncbridge@127.0.0.1:{no_postgres}/x",
            }
        )
        try:
            text = scrape(own_port)
            assert "syncbridge_core_outbox_published_total 0.0" in text
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            _, stderr = proc.communicate()
        assert "cannot listen" not in stderr


def test_a_taken_relay_port_is_named_in_the_error() -> None:
    with held_port(listen=True) as own_port:
        proc = relay({"SYNCBRIDGE_CORE_RELAY_METRICS_PORT": str(own_port)})
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "SYNCBRIDGE_CORE_RELAY_METRICS_PORT: cannot listen" in stderr
    assert "SYNCBRIDGE_CORE_METRICS_PORT" not in stderr
