"""One local cluster (tools/cluster) per test target, in the test's own temporary
directory, from the binaries Bazel hands the test (@cluster_tools)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tools.cluster.cluster import Cluster
from tools.cluster.commands import Tools
from tools.cluster.layout import Layout

RUNFILES = Path(os.environ.get("RUNFILES_DIR", ".")) / os.environ.get("TEST_WORKSPACE", "")


def runfile(variable: str) -> Path:
    """The runfiles path a BUILD `env` entry gives as $(rootpath ...)."""
    return Path(os.environ[variable]).absolute()


def tools() -> Tools:
    bin_dir = runfile("CLUSTER_KUBECTL").parent
    found = Tools.in_dir(bin_dir)
    return Tools(**{**vars(found), "kustomize": runfile("KUSTOMIZE")})


def gitops_tree() -> Path:
    return RUNFILES / "gitops"


@contextmanager
def start(
    state: Path, workloads: bool = True, kinds: set[tuple[str, str]] | None = None
) -> Iterator[Cluster]:
    """Up on entry, down on exit (also when the test fails), logs kept in `state`."""
    cluster = Cluster(
        layout=Layout(state.absolute()),
        tools=tools(),
        data=runfile("CLUSTER_STAMP").parent,
        log=lambda line: print(line, flush=True),
        kinds=kinds,
    )
    started = time.monotonic()
    cluster.up(workloads=workloads)
    print(f"phase: cluster start {time.monotonic() - started:.1f} s", flush=True)
    try:
        yield cluster
    finally:
        cluster.down()
        outputs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
        if outputs:  # the components' logs, for a failed run's post-mortem
            shutil.copytree(cluster.layout.logs, Path(outputs) / "cluster-logs", dirs_exist_ok=True)
