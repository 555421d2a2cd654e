"""Where a local cluster keeps its state, and the ports it listens on.

Everything lives under one state directory the caller names; the cluster's
processes run in a network namespace of their own (netns.py), so the ports are
the namespace's loopback, not the machine's: the application-controller's
metrics server, which binds every interface (Argo CD v3.2 has no flag for its
address), is reachable from nowhere else, and two clusters never collide.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
# The git host the committed Applications name (gitops/argocd/source.yaml);
# the loopback proxy serves the local repository under it (gitproxy.py).
GIT_HOST = "git.harmonyflow.io"
GIT_REPO_PATH = "harmonyflow/syncbridge.git"


@dataclass(frozen=True)
class Ports:
    """Ports on the namespace's own loopback (nothing else listens there)."""

    etcd_client: int = 23790
    etcd_peer: int = 23800
    apiserver: int = 16443
    controller_manager: int = 20257
    scheduler: int = 20259
    kwok: int = 20247
    kwok_metrics: int = 20248
    redis: int = 26379
    repo_server: int = 28081
    repo_server_metrics: int = 28084
    controller_metrics: int = 28082
    git_proxy: int = 28443


@dataclass(frozen=True)
class Layout:
    """The files of one cluster under `state` (absolute)."""

    state: Path

    @property
    def netns(self) -> str:
        """The namespace's name: one per state directory, so `down` finds it again."""
        digest = hashlib.sha256(str(self.state.resolve()).encode()).hexdigest()[:10]
        return f"sbcluster-{digest}"

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def etcd_data(self) -> Path:
        return self.state / "etcd"

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def git_root(self) -> Path:
        """GIT_PROJECT_ROOT of the proxy's git http-backend."""
        return self.state / "git"

    @property
    def repository(self) -> Path:
        """The bare repository Argo CD reads as https://GIT_HOST/GIT_REPO_PATH."""
        return self.git_root / GIT_REPO_PATH

    @property
    def argocd_home(self) -> Path:
        return self.state / "argocd"

    @property
    def tls_data(self) -> Path:
        """ARGOCD_TLS_DATA_PATH: one PEM file per git host Argo CD trusts."""
        return self.argocd_home / "tls"

    @property
    def tool_path(self) -> Path:
        """The repo-server's PATH entry: the pinned kustomize and nothing else of ours."""
        return self.argocd_home / "bin"

    @property
    def proxy_log(self) -> Path:
        """One JSON line per CONNECT the proxy saw: host and whether it was served."""
        return self.logs / "git-proxy-connects.jsonl"

    def url(self, port: int, scheme: str = "https") -> str:
        return f"{scheme}://{HOST}:{port}"
