"""start / stop / kill / restart / status: the same steps for every server, under a lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator

from tools.servers.clients import _port_in_use
from tools.servers.config import (
    _POLL,
    HOST,
    NAMES,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Config,
    ServerError,
    default_config,
)
from tools.servers.daemons import _SERVERS, _Server
from tools.servers.process import _alive, _tail


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
    return _SERVERS[_select([name])[0]](config or default_config()).ready()


def main_pid(name: str, *, config: Config | None = None) -> int | None:
    """The pid of this config's instance of `name` (its main process), None if not running."""
    return _SERVERS[_select([name])[0]](config or default_config()).pid()


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
    config = config or default_config()
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
    config = config or default_config()
    chosen = _select(names)
    with _locked(config):
        return {name: _stop_one(_SERVERS[name](config), hard=False) for name in chosen}


def kill(names: Iterable[str] = (), *, config: Config | None = None) -> dict[str, str]:
    """Crashes the named servers (SIGKILL; PostgreSQL: immediate stop), for fault tests."""
    config = config or default_config()
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
    config = config or default_config()
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
