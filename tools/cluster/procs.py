"""Starts the cluster's processes, each with a pid file and a log, and stops them by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Process:
    """One component: its name (pid file and log are named after it), argv and environment."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path | None = None


def pid_file(pids: Path, name: str) -> Path:
    return pids / f"{name}.pid"


def start(proc: Process, pids: Path, logs: Path, prefix: Sequence[str]) -> int:
    """Runs `proc` detached (its own session), stdout and stderr into logs/<name>.log."""
    pids.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{proc.name}.log").open("ab") as log:
        child = subprocess.Popen(
            [*prefix, *proc.argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(proc.env),
            cwd=proc.cwd,
            start_new_session=True,
        )
    pid_file(pids, proc.name).write_text(f"{child.pid}\n")
    return child.pid


def read_pid(pids: Path, name: str) -> int | None:
    try:
        return int(pid_file(pids, name).read_text())
    except (FileNotFoundError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own child not yet reaped) is not running.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_pid(pid: int, timeout: float) -> bool:
    """SIGTERM, then SIGKILL after `timeout` s; True when it had to be killed."""
    if not alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not alive(pid):
            return False
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    while alive(pid):
        _reap(pid)
        time.sleep(0.05)
    return True


def stop(pids: Path, name: str, timeout: float) -> str:
    """Stops the component named `name`; says what happened (for `down`'s output)."""
    pid = read_pid(pids, name)
    if pid is None:
        return f"{name}: not started"
    killed = stop_pid(pid, timeout)
    pid_file(pids, name).unlink(missing_ok=True)
    return f"{name}: {'killed after ' + str(timeout) + ' s' if killed else 'stopped'} (pid {pid})"
