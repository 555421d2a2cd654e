"""Processes: pid files, accounts, owned directories, launcher commands, log tails."""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tools.servers.config import ServerError


def _alive(pid: int, comm: str) -> bool:
    """True if pid is a live (not zombie) process named comm; guards against pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X") and name == comm


def process_tree(pid: int) -> list[int]:
    """`pid` and every live descendant of it, parents first (from /proc's ppid fields)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited while we looked
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def signal_tree(pid: int, sig: int) -> list[int]:
    """Sends `sig` to `pid` and all its descendants; returns the pids it reached.

    Fault tests use it for SIGKILL/SIGSTOP/SIGCONT of a whole server: a
    PostgreSQL backend or a RabbitMQ helper left running would blunt the fault.
    The tree is read before any signal, so SIGKILL's reparenting cannot hide a child.
    """
    reached = []
    for member in process_tree(pid):
        try:
            os.kill(member, sig)
        except ProcessLookupError:
            continue
        reached.append(member)
    return reached


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
