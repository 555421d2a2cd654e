"""pytest plugin: real Redis, PostgreSQL and RabbitMQ, isolated per test.

Enable it in a test module with::

    pytest_plugins = ("libs.testing.fixtures",)

Fixtures (all function-scoped, sync, yielding plain URLs for any client):

- ``redis_url``: ``redis://127.0.0.1:6379/<n>``, a logical database of its own,
  empty at the start and flushed afterwards.
- ``pg_dsn``: ``postgresql://syncbridge@127.0.0.1:5432/<db>``, a database
  created for the test (superuser role) and dropped afterwards.
- ``amqp_url``: ``amqp://guest:guest@127.0.0.1:5672/<vhost>``, a vhost created
  for the test with full permissions for guest, deleted afterwards.
- ``servers``: a ``ServerControl`` to stop, kill or restart the shared servers
  in fault tests; whatever it stopped is started again after the test. Such
  tests affect every test running at the same time: tag them ``exclusive``.

A server that does not answer is started through tools/servers (which holds a
file lock, so parallel test processes start it once). That needs the test to
run outside Bazel's sandbox: see README.md.
"""

from __future__ import annotations

import re
import secrets
import urllib.parse
from collections.abc import Iterator

import pytest

from tools.servers import servers as _servers

REDIS_COUNTER_KEY = "syncbridge:testing:last-db"


def ensure_running(*names: str) -> None:
    """Starts whichever of the named servers (all if none) does not answer."""
    missing = [name for name in names or _servers.NAMES if not _servers.is_running(name)]
    if missing:
        _servers.start(missing)


def _slug(request: pytest.FixtureRequest, limit: int) -> str:
    """The test's name, shortened to something a database or vhost name can carry."""
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:limit]
    return f"{slug}_{secrets.token_hex(4)}"


def _redis_databases() -> int:
    reply = _servers.redis_command("CONFIG", "GET", "databases")
    assert isinstance(reply, list) and isinstance(reply[1], bytes), reply
    return int(reply[1])


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis URL whose logical database no other running test uses; empty at start."""
    ensure_running("redis")
    counter = _servers.redis_command("INCR", REDIS_COUNTER_KEY)
    assert isinstance(counter, int), counter
    # db 0 holds the counter; wrapping round is safe while fewer tests than
    # databases run at once, and each database is flushed before reuse.
    db = 1 + (counter - 1) % (_redis_databases() - 1)
    _servers.redis_command("FLUSHDB", db=db)
    yield f"redis://{_servers.HOST}:{_servers.REDIS_PORT}/{db}"
    ensure_running("redis")  # a fault test may have stopped it
    _servers.redis_command("FLUSHDB", db=db)


@pytest.fixture
def pg_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """A DSN for a PostgreSQL database created for this test (dropped afterwards)."""
    ensure_running("postgres")
    name = f"test_{_slug(request, 40)}"  # [a-z0-9_] only: safe to quote as an identifier
    _servers.psql(f'CREATE DATABASE "{name}"')
    yield f"postgresql://{_servers.POSTGRES_USER}@{_servers.HOST}:{_servers.POSTGRES_PORT}/{name}"
    ensure_running("postgres")
    # FORCE ends connections the test left open instead of failing the drop.
    _servers.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _management(method: str, path: str, body: object = None, ok: tuple[int, ...] = ()) -> None:
    status, text = _servers.management_request(method, path, body)
    if status not in ok:
        raise _servers.ServerError(f"RabbitMQ management {method} /api/{path}: {status} {text!r}")


@pytest.fixture
def amqp_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An AMQP URL for a RabbitMQ vhost created for this test (deleted afterwards)."""
    ensure_running("rabbitmq")
    vhost = urllib.parse.quote(f"test_{_slug(request, 40)}", safe="")
    user = _servers.RABBITMQ_USER
    _management("PUT", f"vhosts/{vhost}", ok=(201, 204))
    permissions = {"configure": ".*", "write": ".*", "read": ".*"}
    _management("PUT", f"permissions/{vhost}/{user}", permissions, ok=(201, 204))
    password = _servers.RABBITMQ_PASSWORD
    yield f"amqp://{user}:{password}@{_servers.HOST}:{_servers.AMQP_PORT}/{vhost}"
    ensure_running("rabbitmq")
    _management("DELETE", f"vhosts/{vhost}", ok=(204, 404))


class ServerControl:
    """The shared servers, for fault tests. No names means all three."""

    names = _servers.NAMES

    def start(self, *names: str) -> None:
        _servers.start(names)

    def stop(self, *names: str) -> None:
        """Clean stop (Redis SHUTDOWN NOSAVE, pg_ctl -m fast, RabbitMQ SIGTERM)."""
        _servers.stop(names)

    def kill(self, *names: str) -> None:
        """Crash: SIGKILL (PostgreSQL: pg_ctl -m immediate)."""
        _servers.kill(names)

    def restart(self, *names: str) -> None:
        _servers.restart(names)

    def is_running(self, name: str) -> bool:
        return _servers.is_running(name)


@pytest.fixture(name="servers")
def servers_fixture() -> Iterator[ServerControl]:
    """Control of the shared servers; all of them run again once the test is over."""
    ensure_running()
    yield ServerControl()
    ensure_running()
