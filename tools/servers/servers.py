"""Project-owned local Redis, PostgreSQL and RabbitMQ for development and tests.

    python3 tools/servers/servers.py start|stop|status|restart|kill [redis|postgres|rabbitmq ...]

No names means all three. Every server listens on 127.0.0.1 only and keeps its
data and logs under SYNCBRIDGE_STATE_DIR (default /var/tmp/syncbridge).

DEV/TEST ONLY: nothing asks for a password. PostgreSQL trusts every loopback
TCP connection (superuser role `syncbridge`); RabbitMQ's built-in guest/guest
user works only from loopback. Durability is switched off (no Redis
persistence, PostgreSQL fsync=off) because the data is disposable.

Importable (`from tools.servers import servers`): start(), stop(), restart(),
kill(), is_running(), status(), main_pid() and signal_tree() (fault tests),
default_config() (the environment's ports and URLs, read when called:
importing reads nothing), and the small stdlib
clients the test fixtures use (redis_command, psql, management_request).
Standard library only, so the CLI runs without Bazel. Config.throwaway()
describes a second, independent set on free ports.

The package, one job per module: config.py (names, paths, Config),
clients.py (protocol clients and readiness probes), process.py (pids,
accounts, launcher commands), daemons.py (the three servers), control.py
(start/stop/status under a lock); this module is the CLI and the one import.

A server started from inside `bazel test` dies when that test ends (Bazel
kills whatever a test leaves behind): start the shared ones from a shell, CI
setup or `bazel run //tools/servers -- start` (see libs/testing/README.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

if not __package__:
    # Run as a script (tools/setup, tools/run-local): the repository root makes
    # `tools.servers` importable, as it is under Bazel and pytest.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.servers.clients import (
    RedisReplyError,
    RespValue,
    _resp_encode,
    _resp_read,
    management_request,
    psql,
    redis_command,
)
from tools.servers.config import (
    DEFAULT_STATE_DIR,
    HOST,
    NAMES,
    POSTGRES_DB,
    POSTGRES_USER,
    RABBITMQ_NODE,
    RABBITMQ_PASSWORD,
    RABBITMQ_USER,
    REDIS_DATABASES,
    Config,
    ServerError,
    default_config,
)
from tools.servers.control import (
    _select,
    is_running,
    kill,
    main_pid,
    restart,
    start,
    status,
    stop,
)
from tools.servers.daemons import _Postgres, _RabbitMQ, _Redis
from tools.servers.process import process_tree, signal_tree

__all__ = [
    "DEFAULT_STATE_DIR",
    "HOST",
    "NAMES",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "RABBITMQ_NODE",
    "RABBITMQ_PASSWORD",
    "RABBITMQ_USER",
    "REDIS_DATABASES",
    "Config",
    "RedisReplyError",
    "RespValue",
    "ServerError",
    "_Postgres",
    "_RabbitMQ",
    "_Redis",
    "_resp_encode",
    "_resp_read",
    "default_config",
    "is_running",
    "kill",
    "main",
    "main_pid",
    "management_request",
    "process_tree",
    "psql",
    "redis_command",
    "restart",
    "signal_tree",
    "start",
    "status",
    "stop",
]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = default_config()
    except ServerError as error:
        print(f"servers: {error}", file=sys.stderr)
        return 1
    parser = argparse.ArgumentParser(
        prog="servers.py",
        description="Runs this project's Redis, PostgreSQL and RabbitMQ on 127.0.0.1 "
        f"(dev/test only), state under {config.state_dir}.",
    )
    parser.add_argument("command", choices=["start", "stop", "status", "restart", "kill"])
    parser.add_argument("names", nargs="*", metavar="name", help="redis, postgres, rabbitmq")
    args = parser.parse_args(argv)
    actions: dict[str, Callable[..., dict[str, str]]] = {
        "start": start,
        "stop": stop,
        "status": status,
        "restart": restart,
        "kill": kill,
    }
    try:
        for name, outcome in actions[args.command](args.names, config=config).items():
            print(f"{name}: {outcome}", flush=True)
    except ServerError as error:
        print(f"servers: {error}", file=sys.stderr)
        return 1
    if args.command == "status":
        return 0 if all(is_running(n, config=config) for n in _select(args.names)) else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
