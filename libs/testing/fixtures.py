"""pytest plugin: real Redis, PostgreSQL and RabbitMQ, isolated per test.

Enable it in a test module with::

    pytest_plugins = ("libs.testing.fixtures",)

Fixtures (function-scoped and sync: they yield plain URLs, fit for any client):

- ``redis_url``: ``redis://127.0.0.1:<port>/<n>``, a logical database of its
  own, empty at the start and flushed afterwards.
- ``pg_dsn``: ``postgresql://syncbridge@127.0.0.1:<port>/<db>``, a database
  created for the test (the role is a superuser) and dropped afterwards.
- ``amqp_url``: ``amqp://guest:guest@127.0.0.1:<port>/<vhost>``, a vhost
  created for the test with full permissions for guest, deleted afterwards.
- ``servers``: a ``ServerControl`` to stop, crash or restart servers in fault
  tests. A test that requests it gets throwaway servers of its own (the URL
  fixtures then point at those), so it never disturbs other tests.
- ``server_config``: the ``tools.servers.servers.Config`` the above point at.

Which servers: the shared ones of tools/servers (standard ports) when they
all answer. When they do not, outside Bazel they are started (under a file
lock, so parallel test processes start them once) and keep running. Inside
``bazel test`` they cannot outlive the test (see README.md), so the process
gets throwaway servers on free ports instead, removed when it ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.servers import servers as _servers
from tools.servers.servers import Config

REDIS_COUNTER_KEY = "syncbridge:testing:last-db"
_SHARED_STATE = _servers.default_config().state_dir
THROWAWAY_ROOT = _SHARED_STATE.with_name(_SHARED_STATE.name + "-tests")


def under_bazel_test() -> bool:
    """True inside `bazel test`, whose process-wrapper kills every process a test leaves."""
    return "TEST_SRCDIR" in os.environ and "TEST_TMPDIR" in os.environ


def ensure_running(*names: str, config: Config | None = None) -> None:
    """Starts whichever of the named servers (all if none) does not answer."""
    config = config or _servers.default_config()
    missing = [n for n in names or _servers.NAMES if not _servers.is_running(n, config=config)]
    if missing:
        _servers.start(missing, config=config)


class ThrowawayServers:
    """This process's own servers on free ports, created on first use, removed at the end."""

    def __init__(self) -> None:
        self._config: Config | None = None

    def config(self) -> Config:
        if self._config is None:
            _remove_abandoned()
            state_dir = THROWAWAY_ROOT / str(os.getpid())
            config = Config.throwaway(state_dir)
            try:
                state_dir.mkdir(parents=True, exist_ok=True)
                (state_dir / "config.json").write_text(config.to_json())
            except OSError as error:
                raise _servers.ServerError(
                    f"cannot make throwaway servers in {state_dir} ({error.strerror}): tag the "
                    "test no-sandbox (libs/testing/README.md); for the shared servers, run "
                    "`python3 tools/servers/servers.py start` first"
                ) from None
            self._config = config
        return self._config

    def close(self) -> None:
        if self._config is not None:
            _discard(self._config)


def _discard(config: Config) -> None:
    with contextlib.suppress(_servers.ServerError):
        _servers.kill(config=config)  # the data is thrown away: no clean stop needed
    shutil.rmtree(config.state_dir, ignore_errors=True)


def _remove_abandoned() -> None:
    """Removes throwaway servers whose test process died without cleaning up."""
    for saved in THROWAWAY_ROOT.glob("*/config.json"):
        if Path("/proc", saved.parent.name).exists():
            continue  # its process still runs
        with contextlib.suppress(OSError, ValueError, TypeError):
            _discard(Config.from_json(saved.read_text()))


@pytest.fixture(scope="session")
def throwaway_servers() -> Iterator[ThrowawayServers]:
    """The process's throwaway servers (only started if a test needs them)."""
    holder = ThrowawayServers()
    yield holder
    holder.close()


@pytest.fixture
def server_config(request: pytest.FixtureRequest, throwaway_servers: ThrowawayServers) -> Config:
    """The servers this test talks to: shared if they answer (or can be started), else throwaway."""
    if "servers" in request.fixturenames:
        return throwaway_servers.config()
    shared = _servers.default_config()
    if all(_servers.is_running(name, config=shared) for name in _servers.NAMES):
        return shared
    return throwaway_servers.config() if under_bazel_test() else shared


def _unique_name(request: pytest.FixtureRequest) -> str:
    """test_<test name>_<random>, in [a-z0-9_] so it is safe as an identifier and a vhost."""
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    return f"test_{slug}_{secrets.token_hex(4)}"


@pytest.fixture
def redis_url(server_config: Config) -> Iterator[str]:
    """A Redis URL whose logical database no other running test uses; empty at start."""
    port = server_config.redis_port
    ensure_running("redis", config=server_config)
    counter = _servers.redis_command("INCR", REDIS_COUNTER_KEY, port=port)
    match _servers.redis_command("CONFIG", "GET", "databases", port=port):
        case [b"databases", bytes(value)] if isinstance(counter, int):
            databases = int(value)
        case reply:
            raise _servers.ServerError(f"unexpected Redis replies {counter!r}, {reply!r}")
    # db 0 holds the counter. Wrapping round is safe while fewer tests than
    # databases run at once, and every database is flushed before use.
    db = 1 + (counter - 1) % (databases - 1)
    _servers.redis_command("FLUSHDB", db=db, port=port)
    yield f"redis://{_servers.HOST}:{port}/{db}"
    if _servers.is_running("redis", config=server_config):  # a fault test may have stopped it
        _servers.redis_command("FLUSHDB", db=db, port=port)


@pytest.fixture
def pg_dsn(request: pytest.FixtureRequest, server_config: Config) -> Iterator[str]:
    """A DSN for a PostgreSQL database created for this test (dropped afterwards)."""
    port = server_config.postgres_port
    ensure_running("postgres", config=server_config)
    name = _unique_name(request)
    _servers.psql(f'CREATE DATABASE "{name}"', port=port)
    yield f"postgresql://{_servers.POSTGRES_USER}@{_servers.HOST}:{port}/{name}"
    if _servers.is_running("postgres", config=server_config):
        # FORCE ends connections the test left open instead of failing the drop.
        _servers.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', port=port)


def _management(config: Config, method: str, path: str, body: object, ok: set[int]) -> None:
    port = config.rabbitmq_management_port
    status, text = _servers.management_request(method, path, body, port=port)
    if status not in ok:
        raise _servers.ServerError(f"RabbitMQ management {method} /api/{path}: {status} {text!r}")


@pytest.fixture
def amqp_url(request: pytest.FixtureRequest, server_config: Config) -> Iterator[str]:
    """An AMQP URL for a RabbitMQ vhost created for this test (deleted afterwards)."""
    ensure_running("rabbitmq", config=server_config)
    vhost = urllib.parse.quote(_unique_name(request), safe="")
    user, password = _servers.RABBITMQ_USER, _servers.RABBITMQ_PASSWORD
    everything = {"configure": ".*", "write": ".*", "read": ".*"}
    _management(server_config, "PUT", f"vhosts/{vhost}", None, {201, 204})
    _management(server_config, "PUT", f"permissions/{vhost}/{user}", everything, {201, 204})
    yield f"amqp://{user}:{password}@{_servers.HOST}:{server_config.amqp_port}/{vhost}"
    if _servers.is_running("rabbitmq", config=server_config):
        _management(server_config, "DELETE", f"vhosts/{vhost}", None, {204, 404})


class ServerControl:
    """Fault injection on this test's own servers. No names means all three."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.touched: set[str] = set()

    def _names(self, names: tuple[str, ...]) -> tuple[str, ...]:
        self.touched.update(names or _servers.NAMES)
        return names

    def start(self, *names: str) -> None:
        _servers.start(names, config=self.config)

    def stop(self, *names: str) -> None:
        """Clean stop: Redis SHUTDOWN NOSAVE, pg_ctl -m fast, RabbitMQ SIGTERM."""
        _servers.stop(self._names(names), config=self.config)

    def kill(self, *names: str) -> None:
        """Crash: SIGKILL (PostgreSQL: pg_ctl -m immediate)."""
        _servers.kill(self._names(names), config=self.config)

    def restart(self, *names: str) -> None:
        _servers.restart(self._names(names), config=self.config)

    def signal(self, name: str, sig: int) -> list[int]:
        """Sends `sig` to the server's main process and all its children (kill -9 of the
        whole server, SIGSTOP/SIGCONT of a hang); returns the pids reached."""
        self._names((name,))
        pid = _servers.main_pid(name, config=self.config)
        if pid is None:
            raise _servers.ServerError(f"{name} is not running")
        return _servers.signal_tree(pid, sig)

    def is_running(self, name: str) -> bool:
        return _servers.is_running(name, config=self.config)


@pytest.fixture(name="servers")
def servers_fixture(server_config: Config) -> Iterator[ServerControl]:
    """Control of this test's throwaway servers; what it stopped runs again afterwards."""
    control = ServerControl(server_config)
    yield control
    if control.touched:
        ensure_running(*control.touched, config=server_config)
