"""The real servers, as a second throwaway set on free ports: start, stop, crash, restart.

The shared servers are left alone: a server this test (re)started would be
killed by Bazel when the test ends, under other tests still using it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest

from tools.servers import servers
from tools.servers.servers import Config

_SHARED_STATE = servers.default_config().state_dir
STATE_ROOT = _SHARED_STATE.with_name(_SHARED_STATE.name + "-tests")


@pytest.fixture(scope="module")
def config() -> Iterator[Config]:
    config = Config.throwaway(STATE_ROOT / f"integration-{time.time_ns()}")
    servers.start(config=config)
    yield config
    servers.stop(config=config)
    shutil.rmtree(config.state_dir)


def test_cold_start_answers_on_loopback_with_a_syncbridge_database(config: Config) -> None:
    assert all(servers.is_running(name, config=config) for name in servers.NAMES)
    databases = servers.psql("SELECT datname FROM pg_database", port=config.postgres_port)
    assert "syncbridge" in databases.split()
    assert servers.redis_command("CONFIG", "GET", "bind", port=config.redis_port) == [
        b"bind",
        b"127.0.0.1",
    ]


def test_start_when_running_is_a_quick_no_op(config: Config) -> None:
    began = time.monotonic()
    outcome = servers.start(config=config)
    assert time.monotonic() - began < 2
    assert all(detail.startswith("already running") for detail in outcome.values()), outcome
    assert all(detail.startswith("running") for detail in servers.status(config=config).values())


@pytest.mark.parametrize("name", ["rabbitmq", "redis"])
def test_stop_then_start_works_repeatedly(config: Config, name: str) -> None:
    for _ in range(2):
        assert servers.stop([name], config=config)[name].startswith("stopped")
        assert not servers.is_running(name, config=config)
        assert servers.stop([name], config=config)[name] == "not running"
        assert servers.start([name], config=config)[name].startswith("started")
        assert servers.is_running(name, config=config)


@pytest.mark.parametrize("name", servers.NAMES)
def test_start_after_a_crash(config: Config, name: str) -> None:
    assert servers.kill([name], config=config)[name].startswith("killed")
    assert not servers.is_running(name, config=config)
    assert servers.start([name], config=config)[name].startswith("started")
    assert servers.is_running(name, config=config)
