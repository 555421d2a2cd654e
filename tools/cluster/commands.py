"""The command line and environment of every component (pure: paths in, argv out)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tools.cluster.certs import Pki
from tools.cluster.layout import GIT_HOST, HOST, Layout, Ports
from tools.cluster.procs import Process

SERVICE_RANGE = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service; only ever an object, never dialled
KWOK_ANNOTATION = "kwok.x-k8s.io/node=fake"
REDIS = "/usr/bin/redis-server"
BASE_PATH = "/usr/bin:/bin"


@dataclass(frozen=True)
class Tools:
    """The pinned binaries (tools/cluster/build_tools.sh and tools/setup build them)."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path
    argocd: Path
    kustomize: Path
    helm: Path  # the repo-server renders chart Applications with it

    @classmethod
    def in_dir(cls, bin_dir: Path) -> Tools:
        return cls(**{name: bin_dir / name.replace("_", "-") for name in cls.__dataclass_fields__})


def kubeconfig(pki: Pki, server: str, namespace: str = "default") -> str:
    """A kubeconfig for the admin client (JSON is YAML; no YAML library needed)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": server, "certificate-authority": str(pki.ca.cert)},
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate": str(pki.admin.cert),
                    "client-key": str(pki.admin.key),
                },
            }
        ],
        "contexts": [
            {
                "name": "local",
                "context": {"cluster": "local", "user": "admin", "namespace": namespace},
            }
        ],
        "current-context": "local",
    }
    return json.dumps(config, indent=2) + "\n"


def etcd(tools: Tools, layout: Layout, ports: Ports) -> Process:
    client = f"http://{HOST}:{ports.etcd_client}"
    peer = f"http://{HOST}:{ports.etcd_peer}"
    argv = [
        str(tools.etcd),
        "--name=local",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=local={peer}",
        # A test cluster: losing its data on a crash costs nothing, fsync costs seconds.
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]
    return Process("etcd", argv, {"PATH": BASE_PATH})


def apiserver(tools: Tools, layout: Layout, ports: Ports, pki: Pki) -> Process:
    argv = [
        str(tools.kube_apiserver),
        f"--etcd-servers=http://{HOST}:{ports.etcd_client}",
        f"--bind-address={HOST}",
        f"--advertise-address={HOST}",
        f"--secure-port={ports.apiserver}",
        f"--cert-dir={layout.pki / 'apiserver-generated'}",
        f"--tls-cert-file={pki.apiserver.cert}",
        f"--tls-private-key-file={pki.apiserver.key}",
        f"--client-ca-file={pki.ca.cert}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={pki.service_account.cert}",
        f"--service-account-signing-key-file={pki.service_account.key}",
        f"--service-cluster-ip-range={SERVICE_RANGE}",
        "--authorization-mode=Node,RBAC",
        # No kubelet and no second apiserver: nothing to reconcile the endpoints of.
        "--endpoint-reconciler-type=none",
        # Pod Security admission is on by default; named so that it stays on.
        "--enable-admission-plugins=PodSecurity",
        "--profiling=false",
        "--v=0",
    ]
    return Process("kube-apiserver", argv, {"PATH": BASE_PATH})


def controller_manager(tools: Tools, layout: Layout, ports: Ports, pki: Pki) -> Process:
    argv = [
        str(tools.kube_controller_manager),
        f"--kubeconfig={layout.kubeconfig}",
        f"--authentication-kubeconfig={layout.kubeconfig}",
        f"--authorization-kubeconfig={layout.kubeconfig}",
        f"--bind-address={HOST}",
        f"--secure-port={ports.controller_manager}",
        f"--cert-dir={layout.pki / 'controller-manager-generated'}",
        "--leader-elect=false",
        f"--service-account-private-key-file={pki.service_account.key}",
        f"--root-ca-file={pki.ca.cert}",
        f"--service-cluster-ip-range={SERVICE_RANGE}",
        "--use-service-account-credentials=false",
        # kwok renews the fake nodes' leases; on two loaded cores a renewal can be late
        # by more than the default 50 s, the nodes go NotReady for a moment, their pods
        # are marked not Ready, and kwok (which set Ready once) never sets it again.
        "--node-monitor-grace-period=10m",
        "--profiling=false",
    ]
    return Process("kube-controller-manager", argv, {"PATH": BASE_PATH})


def scheduler(tools: Tools, layout: Layout, ports: Ports) -> Process:
    argv = [
        str(tools.kube_scheduler),
        f"--kubeconfig={layout.kubeconfig}",
        f"--authentication-kubeconfig={layout.kubeconfig}",
        f"--authorization-kubeconfig={layout.kubeconfig}",
        f"--bind-address={HOST}",
        f"--secure-port={ports.scheduler}",
        f"--cert-dir={layout.pki / 'scheduler-generated'}",
        "--leader-elect=false",
        "--profiling=false",
    ]
    return Process("kube-scheduler", argv, {"PATH": BASE_PATH})


def kwok(tools: Tools, layout: Layout, ports: Ports, config: Path | None) -> Process:
    argv = [
        str(tools.kwok),
        f"--kubeconfig={layout.kubeconfig}",
        *([f"--config={config}"] if config else []),
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}",
        f"--server-address={HOST}:{ports.kwok}",
        "--cidr=10.244.0.1/16",
        f"--node-ip={HOST}",
    ]
    return Process("kwok", argv, {"PATH": BASE_PATH, "HOME": str(layout.state)})


def redis(layout: Layout, ports: Ports) -> Process:
    argv = [
        REDIS,
        "--bind", HOST, "--port", str(ports.redis), "--dir", str(layout.argocd_home),
        "--save", "", "--appendonly", "no", "--protected-mode", "yes",
    ]  # fmt: skip
    return Process("argocd-redis", argv, {"PATH": BASE_PATH})


def _argocd_env(layout: Layout, role: str) -> dict[str, str]:
    home = layout.argocd_home
    return {
        # One multi-call binary; it acts as the component this names.
        "ARGOCD_BINARY_NAME": role,
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "PATH": f"{layout.tool_path}:{BASE_PATH}",
        "ARGOCD_TLS_DATA_PATH": str(layout.tls_data),
        "ARGOCD_SSH_DATA_PATH": str(home / "ssh"),
        "ARGOCD_GPG_DATA_PATH": str(home / "gpg-keys"),
        "ARGOCD_GNUPGHOME": str(home / "gnupg"),
        "ARGOCD_GPG_ENABLED": "false",
        "ARGOCD_ASK_PASS_SOCK": str(home / f"{role}-askpass.sock"),
    }


def repo_server(tools: Tools, layout: Layout, ports: Ports) -> Process:
    env = _argocd_env(layout, "argocd-repo-server")
    # Every https fetch goes through the loopback proxy: it serves GIT_HOST from the
    # local repository and refuses every other host (chart repositories included).
    proxy = f"http://{HOST}:{ports.git_proxy}"
    env |= {"HTTPS_PROXY": proxy, "https_proxy": proxy, "NO_PROXY": HOST, "no_proxy": HOST}
    argv = [
        str(tools.argocd),
        f"--address={HOST}",
        f"--port={ports.repo_server}",
        "--disable-tls",
        f"--metrics-address={HOST}",
        f"--metrics-port={ports.repo_server_metrics}",
        f"--redis={HOST}:{ports.redis}",
    ]
    env["ARGOCD_REPO_SERVER_PARALLELISM_LIMIT"] = "2"  # two shared cores
    return Process("argocd-repo-server", argv, env)


def application_controller(tools: Tools, layout: Layout, ports: Ports) -> Process:
    env = _argocd_env(layout, "argocd-application-controller")
    # The in-cluster destination (https://kubernetes.default.svc) is the kubeconfig's server.
    env |= {"ARGOCD_FAKE_IN_CLUSTER": "true", "KUBECONFIG": str(layout.kubeconfig)}
    argv = [
        str(tools.argocd),
        f"--kubeconfig={layout.kubeconfig}",
        "--namespace=argocd",
        f"--repo-server={HOST}:{ports.repo_server}",
        "--repo-server-plaintext",
        f"--redis={HOST}:{ports.redis}",
        # Binds every interface (no address flag in v3.2): inside the namespace only.
        f"--metrics-port={ports.controller_metrics}",
        "--app-resync=10",
        "--self-heal-timeout-seconds=2",
        "--status-processors=4",
        "--operation-processors=4",
    ]
    return Process("argocd-application-controller", argv, env)


def git_proxy(python: Path, layout: Layout, ports: Ports, pki: Pki, repo_root: Path) -> Process:
    argv = [
        str(python),
        "-m",
        "tools.cluster.gitproxy",
        f"--port={ports.git_proxy}",
        f"--host={GIT_HOST}",
        f"--cert={pki.git.cert}",
        f"--key={pki.git.key}",
        f"--git-root={layout.git_root}",
        f"--log={layout.proxy_log}",
    ]
    return Process(
        "git-proxy", argv, {"PATH": BASE_PATH, "PYTHONPATH": str(repo_root)}, cwd=repo_root
    )
