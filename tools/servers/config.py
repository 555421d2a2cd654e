"""Where the project's servers live: fixed names, binaries and timeouts, and `Config`.

Nothing is read at import: `default_config()` reads SYNCBRIDGE_STATE_DIR and
SYNCBRIDGE_*_PORT when called, naming any bad variable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path

NAMES = ("redis", "postgres", "rabbitmq")
HOST = "127.0.0.1"

DEFAULT_STATE_DIR = Path("/var/tmp/syncbridge")  # noqa: S108 - survives reboots, unlike /tmp
REDIS_DATABASES = 1024  # one logical database per test; db 0 holds shared counters
POSTGRES_USER = "syncbridge"
POSTGRES_DB = "syncbridge"
RABBITMQ_USER = "guest"
# RabbitMQ's built-in default user, refused from non-loopback peers.
RABBITMQ_PASSWORD = "guest"  # noqa: S105
RABBITMQ_NODE = "syncbridge@localhost"

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REDIS_SERVER = Path("/usr/bin/redis-server")
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")

# Cold starts measured on a busy 2-core machine: redis ~0.1 s, postgres 0.6-2 s
# (initdb included), rabbitmq 3-6 s; the limits leave room for a loaded CI box.
START_TIMEOUT = {"redis": 20.0, "postgres": 60.0, "rabbitmq": 120.0}
STOP_TIMEOUT = 60.0  # RabbitMQ with the management plugin takes 6-8 s to stop
_POLL = 0.1


class ServerError(Exception):
    """A server could not be configured, started or stopped; the message says why."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Where the servers keep their files and which loopback ports they use."""

    state_dir: Path = DEFAULT_STATE_DIR
    redis_port: int = 6379
    postgres_port: int = 5432
    amqp_port: int = 5672
    rabbitmq_management_port: int = 15672
    rabbitmq_dist_port: int = 25672  # Erlang node-to-node; RabbitMQ's rule is AMQP + 20000
    rabbitmq_node: str = RABBITMQ_NODE  # unique per instance: epmd is shared machine-wide

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Config:
        """Reads SYNCBRIDGE_STATE_DIR and SYNCBRIDGE_*_PORT, naming any bad variable."""
        state_dir = environ.get("SYNCBRIDGE_STATE_DIR", str(DEFAULT_STATE_DIR))
        if not os.path.isabs(state_dir):
            raise ServerError(f"SYNCBRIDGE_STATE_DIR must be an absolute path, got {state_dir!r}")
        defaults = cls()
        amqp_port = _port(environ, "SYNCBRIDGE_AMQP_PORT", defaults.amqp_port)
        if amqp_port > 45535:
            raise ServerError(
                "SYNCBRIDGE_AMQP_PORT must be at most 45535: RabbitMQ's node-to-node "
                f"port is the AMQP port + 20000, got {amqp_port}"
            )
        return cls(
            state_dir=Path(state_dir),
            redis_port=_port(environ, "SYNCBRIDGE_REDIS_PORT", defaults.redis_port),
            postgres_port=_port(environ, "SYNCBRIDGE_POSTGRES_PORT", defaults.postgres_port),
            amqp_port=amqp_port,
            rabbitmq_management_port=_port(
                environ,
                "SYNCBRIDGE_RABBITMQ_MANAGEMENT_PORT",
                defaults.rabbitmq_management_port,
            ),
            rabbitmq_dist_port=amqp_port + 20000,
        )

    @classmethod
    def throwaway(cls, state_dir: Path) -> Config:
        """A second, independent set of servers: free loopback ports, its own node name."""
        with contextlib.ExitStack() as stack:
            sockets = [stack.enter_context(socket.socket()) for _ in range(5)]
            for sock in sockets:  # all bound at once, so the five ports differ
                sock.bind((HOST, 0))
            redis, postgres, amqp, management, dist = (sock.getsockname()[1] for sock in sockets)
        node = f"syncbridge-{amqp}@localhost"
        return cls(state_dir, redis, postgres, amqp, management, dist, node)

    def to_json(self) -> str:
        return json.dumps({**dataclasses.asdict(self), "state_dir": str(self.state_dir)})

    @classmethod
    def from_json(cls, text: str) -> Config:
        fields = json.loads(text)
        return cls(**{**fields, "state_dir": Path(fields["state_dir"])})

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/0"

    @property
    def postgres_dsn(self) -> str:
        return f"postgresql://{POSTGRES_USER}@{HOST}:{self.postgres_port}/{POSTGRES_DB}"

    @property
    def amqp_url(self) -> str:
        return f"amqp://{RABBITMQ_USER}:{RABBITMQ_PASSWORD}@{HOST}:{self.amqp_port}/%2F"

    @property
    def rabbitmq_management_url(self) -> str:
        return f"http://{HOST}:{self.rabbitmq_management_port}"


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ServerError(f"{name} must be a TCP port number (1-65535), got {raw!r}")
    return int(raw)


def default_config(environ: Mapping[str, str] | None = None) -> Config:
    """The shared servers' configuration, from the environment (os.environ by default)."""
    return Config.from_env(os.environ if environ is None else environ)
