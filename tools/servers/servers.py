"""Project-owned local Redis, PostgreSQL and RabbitMQ for development and tests.

    python3 tools/servers/servers.py start|stop|status|restart|kill [redis|postgres|rabbitmq ...]

No names means all three. Every server listens on 127.0.0.1 only and keeps its
data and logs under SYNCBRIDGE_STATE_DIR (default /var/tmp/syncbridge).

DEV/TEST ONLY: nothing asks for a password. PostgreSQL trusts every loopback
TCP connection (superuser role `syncbridge`); RabbitMQ's built-in guest/guest
user works only from loopback. Durability is switched off (no Redis
persistence, PostgreSQL fsync=off) because the data is disposable.

Importable (`from tools.servers import servers`): start(), stop(), restart(),
kill(), is_running(), status(), the port and URL constants, and the small
stdlib clients the test fixtures use (redis_command, psql,
management_request). Standard library only, so the CLI runs without Bazel.
Config.throwaway() describes a second, independent set on free ports.

A server started from inside `bazel test` dies when that test ends (Bazel
kills whatever a test leaves behind): start the shared ones from a shell, CI
setup or `bazel run //tools/servers -- start` (see libs/testing/README.md).
"""

from __future__ import annotations

import abc
import argparse
import base64
import contextlib
import dataclasses
import fcntl
import json
import os
import pwd
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, TypeAlias

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


try:
    CONFIG = Config.from_env(os.environ)
except ServerError as _error:
    if __name__ == "__main__":
        sys.exit(f"servers: {_error}")
    raise

STATE_DIR = CONFIG.state_dir
REDIS_PORT = CONFIG.redis_port
POSTGRES_PORT = CONFIG.postgres_port
AMQP_PORT = CONFIG.amqp_port
RABBITMQ_MANAGEMENT_PORT = CONFIG.rabbitmq_management_port
REDIS_URL = CONFIG.redis_url
POSTGRES_DSN = CONFIG.postgres_dsn
AMQP_URL = CONFIG.amqp_url
RABBITMQ_MANAGEMENT_URL = CONFIG.rabbitmq_management_url


# --- Minimal clients (probes, shutdown, test fixtures) -----------------------------------


class RedisReplyError(ServerError):
    """Redis answered a command with an error reply."""


RespValue: TypeAlias = "int | bytes | list[RespValue] | None"


def redis_command(*args: str | int, port: int | None = None, db: int = 0) -> RespValue:
    """Sends one command to the local Redis (after SELECT db) and returns its reply."""
    commands = [("SELECT", db), args] if db else [args]
    with (
        socket.create_connection((HOST, port or REDIS_PORT), timeout=5) as sock,
        sock.makefile("rb") as reader,
    ):
        sock.sendall(b"".join(_resp_encode(command) for command in commands))
        replies = [_resp_read(reader) for _ in commands]
    return replies[-1]


def _resp_encode(args: Sequence[str | int]) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _resp_read(reader: BinaryIO) -> RespValue:
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("Redis closed the connection mid-reply")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body
    if kind == b"-":
        raise RedisReplyError(body.decode(errors="replace"))
    if kind == b":":
        return int(body)
    if kind == b"$":
        length = int(body)
        if length < 0:
            return None
        return reader.read(length + 2)[:-2]
    if kind == b"*":
        count = int(body)
        return None if count < 0 else [_resp_read(reader) for _ in range(count)]
    raise ConnectionError(f"unexpected Redis reply {line!r}")


def psql(sql: str, *, database: str = "postgres", port: int | None = None) -> str:
    """Runs SQL through psql over loopback TCP as the superuser; returns unaligned rows."""
    result = subprocess.run(
        [
            str(PG_BIN / "psql"),
            "-X",  # ignore any ~/.psqlrc
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            HOST,
            "-p",
            str(port or POSTGRES_PORT),
            "-U",
            POSTGRES_USER,
            "-d",
            database,
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "10"},
        check=False,
    )
    if result.returncode != 0:
        raise ServerError(f"psql failed ({sql!r}): {result.stderr.strip()}")
    return result.stdout.strip()


def management_request(
    method: str, path: str, body: object = None, *, port: int | None = None
) -> tuple[int, bytes]:
    """Calls the RabbitMQ management HTTP API as guest; returns (status, body)."""
    request = urllib.request.Request(
        f"http://{HOST}:{port or RABBITMQ_MANAGEMENT_PORT}/api/{path.lstrip('/')}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": "Basic "
            + base64.b64encode(f"{RABBITMQ_USER}:{RABBITMQ_PASSWORD}".encode()).decode(),
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _redis_ready(port: int) -> bool:
    try:
        return redis_command("PING", port=port) == b"PONG"
    except (OSError, ServerError):  # refused, or -LOADING while starting
        return False


def _postgres_ready(port: int) -> bool:
    """True once the server authenticates a startup packet (not merely accepts TCP)."""
    params = f"user\0{POSTGRES_USER}\0database\0postgres\0\0".encode()
    startup = struct.pack("!ii", 8 + len(params), 196608) + params  # protocol 3.0
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            sock.sendall(startup)
            reply = sock.recv(1)
            with contextlib.suppress(OSError):
                sock.sendall(b"X\0\0\0\4")  # Terminate
    except OSError:
        return False
    return reply == b"R"  # authentication request/ok; 'E' means starting or shutting down


def _amqp_ready(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            sock.sendall(b"AMQP\0\0\x09\x01")
            return sock.recv(1) == b"\x01"  # a method frame: connection.start
    except OSError:
        return False


def _management_ready(port: int) -> bool:
    try:
        return management_request("GET", "whoami", port=port)[0] == 200
    except OSError:
        return False


def _port_in_use(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


# --- Processes -------------------------------------------------------------------------


def _alive(pid: int, comm: str) -> bool:
    """True if pid is a live (not zombie) process named comm; guards against pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X") and name == comm


def _read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def _account(user: str) -> pwd.struct_passwd | None:
    """The account to run a server as: `user` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(user)
    except KeyError:
        raise ServerError(
            f"user {user!r} does not exist (is its Debian package installed?)"
        ) from None


def _owned_dir(path: Path, account: pwd.struct_passwd | None, mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)
    path.chmod(mode)
    return path


def _write(path: Path, text: str, account: pwd.struct_passwd | None) -> None:
    path.write_text(text)
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)


def _run(
    argv: Sequence[str],
    *,
    account: pwd.struct_passwd | None,
    cwd: Path,
    log: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> None:
    """Runs a launcher or control command as `account`, its output appended to `log`.

    A new session keeps daemons it leaves behind out of the caller's process
    group, so they outlive a test runner that kills its group on exit.
    """
    base = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(cwd)}
    if account is not None:
        base |= {"USER": account.pw_name, "LOGNAME": account.pw_name}
    with log.open("ab") as out:
        if account is not None:
            os.chown(log, account.pw_uid, account.pw_gid)
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=base | dict(env or {}),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=None if account is None else account.pw_uid,
            group=None if account is None else account.pw_gid,
            extra_groups=None if account is None else [],
        )
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise ServerError(f"{argv[0]} did not return within {timeout:.0f} s") from None
    if code != 0:
        raise ServerError(f"{Path(argv[0]).name} exited with {code}:\n{_tail(log, 8)}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"    (no log at {path})"
    return "\n".join(f"    {line}" for line in text.splitlines()[-lines:]) or f"    ({path} empty)"


# --- The three servers -----------------------------------------------------------------


class _Server(abc.ABC):
    """What start/stop need to know about one server; subclasses fill in the specifics."""

    name: str
    comm: str  # process name of the main process, see _alive
    pid_grace: float  # seconds after launch by which its pid file exists

    def __init__(self, config: Config) -> None:
        self.config = config
        self.dir = config.state_dir / self.name

    @abc.abstractmethod
    def ports(self) -> dict[str, int]:
        """Implemented by each server."""

    @abc.abstractmethod
    def pid(self) -> int | None:
        """Pid of this project's instance if it is alive, else None."""

    @abc.abstractmethod
    def ready(self) -> bool:
        """Implemented by each server."""

    @abc.abstractmethod
    def launch(self) -> None:
        """Implemented by each server."""

    @abc.abstractmethod
    def shutdown(self, pid: int) -> None:
        """Implemented by each server."""

    def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)

    def after_start(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Runs once the server answers, after a fresh launch."""

    @abc.abstractmethod
    def log_files(self) -> list[Path]:
        """Implemented by each server."""

    def logs(self) -> str:
        return "\n".join(f"  {path}:\n{_tail(path)}" for path in self.log_files())

    def _pid_from(self, path: Path) -> int | None:
        pid = _read_pid(path)
        return pid if pid is not None and _alive(pid, self.comm) else None


class _Redis(_Server):
    name = "redis"
    comm = "redis-server"
    pid_grace = 3.0

    def ports(self) -> dict[str, int]:
        return {"redis": self.config.redis_port}

    def pid(self) -> int | None:
        return self._pid_from(self.dir / "redis.pid")

    def ready(self) -> bool:
        return _redis_ready(self.config.redis_port)

    def log_files(self) -> list[Path]:
        return [self.dir / "launcher.log", self.dir / "redis.log"]

    def launch(self) -> None:
        account = _account("redis")
        _owned_dir(self.dir, account)
        _run(
            [
                str(REDIS_SERVER),
                *("--bind", HOST),
                *("--port", str(self.config.redis_port)),
                *("--protected-mode", "yes"),
                *("--daemonize", "yes"),
                *("--pidfile", str(self.dir / "redis.pid")),
                *("--logfile", str(self.dir / "redis.log")),
                *("--dir", str(self.dir)),
                *("--databases", str(REDIS_DATABASES)),
                *("--save", ""),  # no RDB snapshots: test data is disposable
                *("--appendonly", "no"),
            ],
            account=account,
            cwd=self.dir,
            log=self.dir / "launcher.log",
        )

    def shutdown(self, pid: int) -> None:
        try:
            redis_command("SHUTDOWN", "NOSAVE", port=self.config.redis_port)
        except (ConnectionRefusedError, TimeoutError, ServerError):
            os.kill(pid, signal.SIGTERM)  # not answering: Redis also stops cleanly on SIGTERM
        except ConnectionError:
            pass  # success: the server closes the connection instead of replying


class _Postgres(_Server):
    name = "postgres"
    comm = "postgres"
    pid_grace = 3.0

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def ports(self) -> dict[str, int]:
        return {"postgres": self.config.postgres_port}

    def pid(self) -> int | None:
        return self._pid_from(self.data / "postmaster.pid")

    def ready(self) -> bool:
        return _postgres_ready(self.config.postgres_port)

    def log_files(self) -> list[Path]:
        return [self.dir / "launcher.log", self.dir / "postgres.log"]

    def settings(self) -> str:
        """postgresql.conf additions, rewritten at every start so port changes apply."""
        return "\n".join(
            [
                "# Written by tools/servers/servers.py at every start; edits are lost.",
                f"listen_addresses = '{HOST}'",
                f"port = {self.config.postgres_port}",
                f"unix_socket_directories = '{self.dir / 'run'}'",
                "max_connections = 200",
                "# Dev/test only: crash safety traded for speed (disposable data).",
                "fsync = off",
                "synchronous_commit = off",
                "full_page_writes = off",
                "",
            ]
        )

    @staticmethod
    def hba() -> str:
        return "\n".join(
            [
                "# Dev/test only: any loopback TCP client may log in as any role, no password.",
                "# No `local` lines: the unix socket refuses everyone.",
                "# TYPE  DATABASE  USER  ADDRESS       METHOD",
                "host    all       all   127.0.0.1/32  trust",
                "",
            ]
        )

    def launch(self) -> None:
        account = _account("postgres")
        _owned_dir(self.dir, account)
        _owned_dir(self.dir / "run", account)
        log = self.dir / "launcher.log"
        if not (self.data / "PG_VERSION").exists():
            _run(
                [
                    str(PG_BIN / "initdb"),
                    *("-D", str(self.data)),
                    *("-U", POSTGRES_USER),
                    "--auth=trust",  # replaced by hba() below
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                account=account,
                cwd=self.dir,
                log=log,
            )
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write("\ninclude 'syncbridge.conf'\n")
        _write(self.data / "pg_hba.conf", self.hba(), account)
        _write(self.data / "syncbridge.conf", self.settings(), account)
        if (self.data / "postmaster.pid").exists() and self.pid() is None:
            # A crashed postmaster leaves its pid and socket lock files; while
            # its pid lingers as an unreaped zombie PostgreSQL refuses to start.
            for stale in [self.data / "postmaster.pid", *(self.dir / "run").glob(".s.PGSQL.*")]:
                stale.unlink(missing_ok=True)
        _run(
            [
                str(PG_BIN / "pg_ctl"),
                "start",
                "--wait",  # reports a postmaster that dies at once; start() probes TCP too
                *("--timeout", str(int(START_TIMEOUT[self.name]))),
                *("-D", str(self.data)),
                *("-l", str(self.dir / "postgres.log")),
            ],
            account=account,
            cwd=self.dir,
            log=log,
            timeout=START_TIMEOUT[self.name] + 10,
        )

    def after_start(self) -> None:
        exists = psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{POSTGRES_DB}'",  # noqa: S608 - a constant
            port=self.config.postgres_port,
        )
        if not exists:
            psql(f'CREATE DATABASE "{POSTGRES_DB}"', port=self.config.postgres_port)

    def _pg_ctl_stop(self, mode: str) -> None:
        _run(
            [str(PG_BIN / "pg_ctl"), "stop", "-D", str(self.data), "-m", mode, "--no-wait"],
            account=_account("postgres"),
            cwd=self.dir,
            log=self.dir / "launcher.log",
        )

    def shutdown(self, pid: int) -> None:
        self._pg_ctl_stop("fast")

    def kill(self, pid: int) -> None:
        # SIGKILL on the postmaster would orphan its backends and block the next
        # start; "immediate" is PostgreSQL's own crash-like stop.
        self._pg_ctl_stop("immediate")


class _RabbitMQ(_Server):
    name = "rabbitmq"
    comm = "beam.smp"
    pid_grace = 15.0

    def ports(self) -> dict[str, int]:
        return {
            "amqp": self.config.amqp_port,
            "management": self.config.rabbitmq_management_port,
            "erlang distribution": self.config.rabbitmq_dist_port,
        }

    def pid(self) -> int | None:
        return self._pid_from(self.dir / "rabbitmq.pid")

    def ready(self) -> bool:
        # The management listener starts before AMQP; both must answer.
        return _amqp_ready(self.config.amqp_port) and _management_ready(
            self.config.rabbitmq_management_port
        )

    def log_files(self) -> list[Path]:
        return [self.dir / "launcher.log", self.dir / "log" / "rabbitmq.log"]

    def conf(self) -> str:
        return "\n".join(
            [
                "# Written by tools/servers/servers.py at every start; edits are lost.",
                f"listeners.tcp.1 = {HOST}:{self.config.amqp_port}",
                f"management.tcp.ip = {HOST}",
                f"management.tcp.port = {self.config.rabbitmq_management_port}",
                "# guest/guest is refused from anything but loopback (RabbitMQ's default).",
                "loopback_users.guest = true",
                "",
            ]
        )

    def env(self) -> dict[str, str]:
        return {
            "HOME": str(self.dir),  # the Erlang cookie lands here
            "RABBITMQ_NODENAME": self.config.rabbitmq_node,
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_LOGS": str(self.dir / "log" / "rabbitmq.log"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbitmq.pid"),
            "RABBITMQ_DIST_PORT": str(self.config.rabbitmq_dist_port),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": HOST,  # epmd (shared, port 4369) on loopback too
        }

    def launch(self) -> None:
        account = _account("rabbitmq")
        _owned_dir(self.dir, account)
        _owned_dir(self.dir / "log", account)
        _write(self.dir / "rabbitmq.conf", self.conf(), account)
        _write(self.dir / "enabled_plugins", "[rabbitmq_management].\n", account)
        # An empty env file keeps the machine's /etc/rabbitmq/rabbitmq-env.conf out.
        _write(self.dir / "rabbitmq-env.conf", "", account)
        _run(
            [str(RABBITMQ_SERVER), "-detached"],
            account=account,
            cwd=self.dir,
            log=self.dir / "launcher.log",
            env=self.env(),
        )

    def shutdown(self, pid: int) -> None:
        os.kill(pid, signal.SIGTERM)  # the Erlang VM stops RabbitMQ cleanly on SIGTERM


_SERVERS: dict[str, type[_Server]] = {"redis": _Redis, "postgres": _Postgres, "rabbitmq": _RabbitMQ}


# --- Public API ------------------------------------------------------------------------


def _select(names: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(names)) or list(NAMES)
    unknown = [name for name in chosen if name not in NAMES]
    if unknown:
        raise ServerError(f"unknown server {unknown[0]!r}; choose from {', '.join(NAMES)}")
    return chosen


@contextlib.contextmanager
def _locked(config: Config) -> Iterator[None]:
    """Serialises start/stop across processes (parallel tests, a developer's shell)."""
    try:
        config.state_dir.mkdir(parents=True, exist_ok=True)
        lock = (config.state_dir / "servers.lock").open("a")
    except OSError as error:
        raise ServerError(
            f"cannot write the state dir {config.state_dir} ({error.strerror}); inside a "
            "Bazel sandbox it is read-only: tag the test no-sandbox, or start the servers "
            "first with tools/servers/servers.py start"
        ) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _wait(until: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL)
    return True


def is_running(name: str, *, config: Config | None = None) -> bool:
    """True if the server answers its own protocol on its port (whoever started it)."""
    return _SERVERS[_select([name])[0]](config or CONFIG).ready()


def _start_one(server: _Server) -> str:
    name = server.name
    started = time.monotonic()
    pid = server.pid()
    if pid is not None and server.ready():
        return f"already running (pid {pid})"
    if pid is None:
        for label, port in server.ports().items():
            if _port_in_use(port):
                raise ServerError(
                    f"{name}: {HOST}:{port} ({label}) is held by another process, not this "
                    f"project's instance under {server.config.state_dir}; stop it or choose "
                    "another port (SYNCBRIDGE_*_PORT)"
                )
        try:
            server.launch()
        except ServerError as error:
            main_log = server.log_files()[-1]
            raise ServerError(f"{name}: {error}\n  {main_log}:\n{_tail(main_log)}") from None

    seen = pid is not None

    def up() -> bool:
        nonlocal seen
        if server.ready():
            return True
        # A pid that vanished, or none after the grace period, is a crash.
        if server.pid() is not None:
            seen = True
        elif seen or time.monotonic() - started > server.pid_grace:
            raise ServerError(f"{name} exited during start-up:\n{server.logs()}")
        return False

    if not _wait(up, START_TIMEOUT[name]):
        raise ServerError(
            f"{name} did not accept connections within {START_TIMEOUT[name]:.0f} s:\n"
            f"{server.logs()}"
        )
    if pid is None:
        server.after_start()
    return f"started in {time.monotonic() - started:.1f} s"


def start(names: Iterable[str] = (), *, config: Config | None = None) -> dict[str, str]:
    """Starts the named servers (all if none) unless running; waits until they answer.

    Returns what happened per server. Raises ServerError with the log tail when
    one does not come up, or when its port is held by something else.
    """
    config = config or CONFIG
    chosen = _select(names)
    with _locked(config):
        return {name: _start_one(_SERVERS[name](config)) for name in chosen}


def _stop_one(server: _Server, *, hard: bool) -> str:
    pid = server.pid()
    if pid is None:
        return "not running"
    (server.kill if hard else server.shutdown)(pid)
    if not _wait(lambda: not _alive(pid, server.comm), STOP_TIMEOUT):
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: not _alive(pid, server.comm), 10)
        return f"killed (pid {pid}) after {STOP_TIMEOUT:.0f} s without stopping"
    # Ports close with the process, but let the last listener go before returning.
    _wait(lambda: not any(_port_in_use(port) for port in server.ports().values()), 5)
    return f"{'killed' if hard else 'stopped'} (pid {pid})"


def stop(names: Iterable[str] = (), *, config: Config | None = None) -> dict[str, str]:
    """Stops the named servers (all if none) cleanly and waits until they are gone."""
    config = config or CONFIG
    chosen = _select(names)
    with _locked(config):
        return {name: _stop_one(_SERVERS[name](config), hard=False) for name in chosen}


def kill(names: Iterable[str] = (), *, config: Config | None = None) -> dict[str, str]:
    """Crashes the named servers (SIGKILL; PostgreSQL: immediate stop), for fault tests."""
    config = config or CONFIG
    chosen = _select(names)
    with _locked(config):
        return {name: _stop_one(_SERVERS[name](config), hard=True) for name in chosen}


def restart(names: Iterable[str] = (), *, config: Config | None = None) -> dict[str, str]:
    """Stops then starts the named servers (all if none)."""
    chosen = _select(names)
    stopped = stop(chosen, config=config)
    started = start(chosen, config=config)
    return {name: f"{stopped[name]}, {started[name]}" for name in chosen}


def status(names: Iterable[str] = (), *, config: Config | None = None) -> dict[str, str]:
    """Describes each named server: running, stopped, or its port held by another process."""
    config = config or CONFIG
    result = {}
    for name in _select(names):
        server = _SERVERS[name](config)
        pid = server.pid()
        ports = ", ".join(f"{label} {port}" for label, port in server.ports().items())
        if pid is not None:
            state = "running" if server.ready() else "NOT answering"
            result[name] = f"{state} (pid {pid}) on {HOST}: {ports}"
        elif is_running(name, config=config):
            result[name] = (
                f"answering on {HOST} ({ports}), but not the instance of {config.state_dir}"
            )
        else:
            result[name] = "stopped"
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="servers.py",
        description="Runs this project's Redis, PostgreSQL and RabbitMQ on 127.0.0.1 "
        f"(dev/test only), state under {CONFIG.state_dir}.",
    )
    parser.add_argument("command", choices=["start", "stop", "status", "restart", "kill"])
    parser.add_argument("names", nargs="*", metavar="name", help="redis, postgres, rabbitmq")
    args = parser.parse_args(argv)
    actions: dict[str, Callable[[list[str]], dict[str, str]]] = {
        "start": start,
        "stop": stop,
        "status": status,
        "restart": restart,
        "kill": kill,
    }
    try:
        for name, outcome in actions[args.command](args.names).items():
            print(f"{name}: {outcome}", flush=True)
    except ServerError as error:
        print(f"servers: {error}", file=sys.stderr)
        return 1
    if args.command == "status":
        return 0 if all(is_running(name) for name in _select(args.names)) else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
