"""The cluster's own network namespace: its loopback is the only network it has.

`ip netns add` keeps it (a bind mount under /run/netns) after the process that
made it exits, so `tools/cluster up` can return and `down` can find it again.
"""

from __future__ import annotations

import subprocess

IP = "/usr/sbin/ip"


class NetnsError(RuntimeError):
    """The namespace could not be made, entered or removed."""


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IP, *args], capture_output=True, text=True, check=False, timeout=30)


def exists(name: str) -> bool:
    listed = _ip("netns", "list")
    return any(line.split()[0] == name for line in listed.stdout.splitlines() if line.strip())


def create(name: str) -> None:
    """A new namespace with its loopback up; refuses one that exists (a cluster is running)."""
    if exists(name):
        raise NetnsError(f"network namespace {name} exists: is a cluster running on this state?")
    made = _ip("netns", "add", name)
    if made.returncode != 0:
        raise NetnsError(f"ip netns add {name}: {made.stderr.strip()} (root is needed)")
    up = _ip("-n", name, "link", "set", "lo", "up")
    if up.returncode != 0:
        delete(name)
        raise NetnsError(f"loopback of {name}: {up.stderr.strip()}")


def prefix(name: str) -> list[str]:
    """argv prefix that runs a command inside the namespace (ip execs it: same pid)."""
    return [IP, "netns", "exec", name]


def pids(name: str) -> list[int]:
    """Every process inside the namespace (all of them ours: we made it)."""
    listed = _ip("netns", "pids", name)
    return [int(word) for word in listed.stdout.split() if word.isdigit()]


def delete(name: str) -> None:
    if not exists(name):
        return
    gone = _ip("netns", "delete", name)
    if gone.returncode != 0:
        raise NetnsError(f"ip netns delete {name}: {gone.stderr.strip()}")
