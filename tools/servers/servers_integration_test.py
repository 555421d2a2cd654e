"""The real servers: idempotent start, and stop/start cycles as fault tests do them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tools.servers import servers


@pytest.fixture(autouse=True)
def all_running_before_and_after() -> Iterator[None]:
    servers.start()
    yield
    servers.start()


def test_start_when_running_is_a_quick_no_op() -> None:
    began = time.monotonic()
    outcome = servers.start()
    assert time.monotonic() - began < 2
    assert all(detail.startswith("already running") for detail in outcome.values()), outcome
    assert all(detail.startswith("running") for detail in servers.status().values())


@pytest.mark.parametrize("name", ["rabbitmq", "redis"])
def test_stop_then_start_works_repeatedly(name: str) -> None:
    for _ in range(2):
        assert servers.stop([name])[name].startswith("stopped")
        assert not servers.is_running(name)
        assert servers.stop([name])[name] == "not running"
        assert servers.start([name])[name].startswith("started")
        assert servers.is_running(name)


@pytest.mark.parametrize("name", servers.NAMES)
def test_start_after_a_crash(name: str) -> None:
    assert servers.kill([name])[name].startswith("killed")
    assert not servers.is_running(name)
    assert servers.start([name])[name].startswith("started")
    assert servers.is_running(name)


def test_postgres_has_the_syncbridge_database() -> None:
    assert servers.psql("SELECT current_user", database=servers.POSTGRES_DB) == "syncbridge"
