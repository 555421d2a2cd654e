"""kubectl inside the cluster's network namespace, with its admin kubeconfig."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class KubeError(RuntimeError):
    """kubectl failed; the message holds its stderr."""


class Timeout(RuntimeError):
    """A wait ran out of time; the message says what was awaited and what was last seen."""


@dataclass(frozen=True)
class Kube:
    kubectl: Path
    kubeconfig: Path
    prefix: Sequence[str]

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.prefix, str(self.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env={"PATH": "/usr/bin:/bin", "HOME": str(self.kubeconfig.parent)},
        )
        if check and done.returncode != 0:
            raise KubeError(f"kubectl {' '.join(args[:4])}: {done.stderr.strip()}")
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def get(self, kind: str, name: str, namespace: str | None = None) -> Any:
        where = ["-n", namespace] if namespace else []
        return self.json("get", kind, name, *where)

    def apply(self, manifest: str, *extra: str) -> str:
        return self.run("apply", "-f", "-", *extra, stdin=manifest).stdout


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.5) -> T:
    """Calls `probe` until it returns something other than None (or an exception stops)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            got = probe()
        except (KubeError, subprocess.TimeoutExpired, ValueError, KeyError) as err:
            got, last = None, err
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise Timeout(f"{what}: not within {timeout:.0f} s (last: {last})")
        time.sleep(every)
