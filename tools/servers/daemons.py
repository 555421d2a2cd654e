"""The three servers: how each is configured, launched, probed and stopped.

One class per server behind `_Server`; start/stop logic that is the same for
all three is in control.py.
"""

from __future__ import annotations

import abc
import os
import signal
from pathlib import Path

from tools.servers.clients import (
    _amqp_ready,
    _management_ready,
    _postgres_ready,
    _redis_ready,
    psql,
    redis_command,
)
from tools.servers.config import (
    HOST,
    PG_BIN,
    POSTGRES_DB,
    POSTGRES_USER,
    RABBITMQ_SERVER,
    REDIS_DATABASES,
    REDIS_SERVER,
    START_TIMEOUT,
    Config,
    ServerError,
)
from tools.servers.process import _account, _alive, _owned_dir, _read_pid, _run, _tail, _write


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
                "# Dev/test only: safety against a machine crash traded for speed.",
                "fsync = off",
                "full_page_writes = off",
                "# But a commit reaches the OS before it is acknowledged, so a killed",
                "# PostgreSQL (kill -9, not a machine crash) keeps every acknowledged",
                "# write, as in production: the fault matrix (tests/e2e) relies on it.",
                "synchronous_commit = on",
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
