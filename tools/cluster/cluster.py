"""`tools/cluster/cluster up|down|status --state DIR`: a local Kubernetes control plane
and Argo CD, on the loopback of a network namespace of their own.

up: certificates (openssl), etcd, kube-apiserver (Pod Security admission on),
kube-controller-manager, kube-scheduler, the pinned CRDs (.tools/cluster/crds),
kwok with six fake nodes in three zones, an empty bare git repository served as
https://GIT_HOST/GIT_REPO_PATH through the loopback proxy, Redis, Argo CD's
repo-server and application-controller. `--seed CHECKOUT` pushes that
checkout's HEAD to the repository's main. down: stops them in reverse order by
pid (SIGTERM, SIGKILL after a timeout), then every process left in the
namespace, then the namespace. Exit codes: 0 ok, 1 failed, 2 usage, 3 already
running (up) / not running (status).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tools.cluster import certs, commands, netns, nodes, procs
from tools.cluster.commands import Tools
from tools.cluster.kube import Kube, KubeError, Timeout, wait_for
from tools.cluster.layout import GIT_HOST, HOST, Layout, Ports

REPO = Path(__file__).resolve().parents[2]  # the checkout (its .tools)
SOURCE = Path(__file__).absolute().parents[2]  # where this code is (runfiles under Bazel)
GIT = "/usr/bin/git"
BASH = "/bin/bash"
PYTHON = Path("/usr/bin/python3.11")
# kwok Stages that write the status of the operators this cluster does not run.
STAGES = Path(__file__).absolute().parent / "stages.yaml"

# Start order; `down` stops in the reverse. Timeouts: the apiserver drains for ~3 s.
ORDER = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "git-proxy",
    "argocd-redis",
    "argocd-repo-server",
    "argocd-application-controller",
)
STOP_TIMEOUT = {"kube-apiserver": 20.0, "etcd": 10.0}


class ClusterError(RuntimeError):
    """The cluster could not be brought up; the message names the step and its log."""


@dataclass
class Cluster:
    layout: Layout
    tools: Tools
    data: Path  # .tools/cluster: crds/ and argocd-config/
    ports: Ports = field(default_factory=Ports)
    log: Callable[[str], None] = print
    # (group, Kind) of the CRDs to create; None: every pinned one.
    kinds: set[tuple[str, str]] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def prefix(self) -> list[str]:
        return netns.prefix(self.layout.netns)

    @property
    def kube(self) -> Kube:
        return Kube(self.tools.kubectl, self.layout.kubeconfig, self.prefix)

    # --- up ---------------------------------------------------------------
    def up(self, seed: Path | None = None, workloads: bool = True) -> None:
        """Starts the cluster; `workloads=False`: only the API (control plane and CRDs),
        for tests that never run a pod nor sync (the server-side dry-run)."""
        started = time.monotonic()
        needed = (
            vars(self.tools)
            if workloads
            else {k: v for k, v in vars(self.tools).items() if k.startswith(("etcd", "kube"))}
        )
        missing = [str(p) for p in needed.values() if not p.is_file()]
        if missing:
            raise ClusterError(f"missing {', '.join(missing)}: run `sudo tools/setup`")
        if netns.exists(self.layout.netns) or self.running():
            raise ClusterError(f"a cluster is running on {self.layout.state}: `down` it first")
        for directory in (self.layout.logs, self.layout.pids, self.layout.argocd_home / "tmp"):
            directory.mkdir(parents=True, exist_ok=True)
        if workloads and self.kinds is not None:  # Argo CD's own, whatever the caller uses
            self.kinds = self.kinds | {
                ("argoproj.io", "Application"),
                ("argoproj.io", "AppProject"),
            }
        netns.create(self.layout.netns)
        try:
            self._control_plane()
            self._phase("control plane", started)
            self._crds()
            self._phase("CRDs", started)
            if workloads:
                self._nodes_and_argocd_config()
                self._phase("kwok nodes, Argo CD config", started)
                self._git(seed)
                self._argocd()
                self._phase("Argo CD", started)
        except BaseException:
            self.log("tools/cluster: start failed; stopping what started")
            self.down()
            raise

    def _phase(self, name: str, started: float) -> None:
        self.timings[name] = time.monotonic() - started
        self.log(f"tools/cluster: {name} up after {self.timings[name]:.1f} s")

    def _start(self, proc: procs.Process) -> None:
        procs.start(proc, self.layout.pids, self.layout.logs, self.prefix)

    def _listening(self, name: str, port: int, timeout: float = 60) -> None:
        """Waits until something accepts on the namespace's HOST:port (bash's /dev/tcp)."""

        def probe() -> bool | None:
            pid = procs.read_pid(self.layout.pids, name)
            if pid is None or not procs.alive(pid):
                raise ClusterError(f"{name} exited: see {self.layout.logs / (name + '.log')}")
            script = f"exec 3<>/dev/tcp/{HOST}/{port}"
            done = subprocess.run(
                [*self.prefix, BASH, "-c", script], capture_output=True, check=False
            )
            return True if done.returncode == 0 else None

        wait_for(f"{name} on port {port}", probe, timeout, every=0.2)

    def _control_plane(self) -> None:
        # Every `up` is a new cluster: a previous run's store would hold its objects.
        shutil.rmtree(self.layout.etcd_data, ignore_errors=True)
        pki = certs.make(self.layout.pki, HOST, commands.SERVICE_IP, GIT_HOST)
        server = f"https://{HOST}:{self.ports.apiserver}"
        self.layout.kubeconfig.write_text(commands.kubeconfig(pki, server))
        self.layout.kubeconfig.chmod(0o600)
        self._start(commands.etcd(self.tools, self.layout, self.ports))
        self._listening("etcd", self.ports.etcd_client)
        self._start(commands.apiserver(self.tools, self.layout, self.ports, pki))
        self._listening("kube-apiserver", self.ports.apiserver, timeout=90)
        kube = self.kube
        wait_for("/readyz", lambda: kube.run("get", "--raw", "/readyz").stdout or None, 90)
        self._start(commands.controller_manager(self.tools, self.layout, self.ports, pki))
        self._start(commands.scheduler(self.tools, self.layout, self.ports))
        # Discovery can 404 just after /readyz; the default ServiceAccount means the
        # controller-manager works (pods need it).
        wait_for("API discovery", lambda: kube.run("api-resources").stdout or None, 60)
        wait_for(
            "default ServiceAccount", lambda: kube.get("serviceaccount", "default", "default"), 60
        )

    def _crds(self) -> None:
        kube = self.kube
        crds = self.data / "crds"
        files = sorted(crds.glob("*.json"))
        if not files:
            raise ClusterError(f"no CRDs in {crds}: run `sudo tools/setup`")
        if self.kinds is not None:  # each CRD costs the API server an OpenAPI rebuild
            files = [f for f in files if tuple(f.stem.split("_", 1)) in self.kinds]
            missing = self.kinds - {tuple(f.stem.split("_", 1)) for f in files}
            if missing:
                raise ClusterError(f"no pinned CRD for {sorted(missing)} in {crds}")
        # One `create`: a fresh cluster has none of them, and create skips the
        # last-applied annotation the Application CRD is too big for.
        kube.run("create", *(f"--filename={f}" for f in files), timeout=300)
        # `wait` fails outright while a CRD has no conditions yet: retry it.
        established = ("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")
        wait_for("CRDs established", lambda: kube.run(*established).stdout or None, 120, every=1)

    def _nodes_and_argocd_config(self) -> None:
        kube = self.kube
        kube.apply(nodes.manifest())
        stages = self.layout.state / "kwok-stages.yaml"
        stages.write_text(stages_for(STAGES.read_text(), self.kinds))
        self._start(commands.kwok(self.tools, self.layout, self.ports, stages))
        want = len(nodes.ZONES) * nodes.PER_ZONE

        def ready_nodes() -> int | None:
            listed = kube.json("get", "nodes")["items"]
            ready = [
                n
                for n in listed
                for c in n.get("status", {}).get("conditions", [])
                if c["type"] == "Ready" and c["status"] == "True"
            ]
            return len(ready) if len(ready) >= want else None

        wait_for(f"{want} Ready kwok nodes", ready_nodes, 60)
        kube.run("create", "namespace", "argocd")
        config = sorted((self.data / "argocd-config").glob("argocd-*.yaml"))
        kube.run("apply", "-n", "argocd", *(f"--filename={p}" for p in config))
        # Install settings, not the tree's: refresh every 10 s instead of 3 min.
        patch = {"data": {"timeout.reconciliation": "10s", "timeout.reconciliation.jitter": "0s"}}
        kube.run(
            "patch",
            "configmap",
            "argocd-cm",
            "-n",
            "argocd",
            "--type=merge",
            "-p",
            json.dumps(patch),
        )
        kube.apply(json.dumps(DEFAULT_PROJECT))

    def _git(self, seed: Path | None) -> None:
        repo = self.layout.repository
        repo.mkdir(parents=True, exist_ok=True)
        _git("init", "--quiet", "--bare", "--initial-branch=main", str(repo))
        if seed is not None:
            _git("-C", str(seed), "push", "--quiet", f"file://{repo}", "HEAD:refs/heads/main")
        self.layout.tls_data.mkdir(parents=True, exist_ok=True)
        pki = certs.load(self.layout.pki)
        (self.layout.tls_data / GIT_HOST).write_text(pki.ca.cert.read_text())
        self.layout.tool_path.mkdir(parents=True, exist_ok=True)
        for tool in (self.tools.kustomize, self.tools.helm):  # what the repo-server execs
            link = self.layout.tool_path / tool.name
            link.unlink(missing_ok=True)
            link.symlink_to(tool)

    def _argocd(self) -> None:
        pki = certs.load(self.layout.pki)
        self._start(commands.git_proxy(PYTHON, self.layout, self.ports, pki, SOURCE))
        self._listening("git-proxy", self.ports.git_proxy)
        self._start(commands.redis(self.layout, self.ports))
        self._listening("argocd-redis", self.ports.redis)
        self._start(commands.repo_server(self.tools, self.layout, self.ports))
        self._listening("argocd-repo-server", self.ports.repo_server)
        self._start(commands.application_controller(self.tools, self.layout, self.ports))
        self._listening("argocd-application-controller", self.ports.controller_metrics)

    # --- down / status ----------------------------------------------------
    def running(self) -> list[str]:
        """Components whose pid file names a live process."""
        return [
            name
            for name in ORDER
            if (pid := procs.read_pid(self.layout.pids, name)) is not None and procs.alive(pid)
        ]

    def down(self) -> list[str]:
        report = []
        for name in reversed(ORDER):
            line = procs.stop(self.layout.pids, name, STOP_TIMEOUT.get(name, 10.0))
            if not line.endswith("not started"):
                report.append(line)
        if netns.exists(self.layout.netns):
            for pid in netns.pids(self.layout.netns):
                killed = procs.stop_pid(pid, 5.0)
                report.append(
                    f"stray pid {pid} in {self.layout.netns}: {'killed' if killed else 'stopped'}"
                )
            netns.delete(self.layout.netns)
            report.append(f"network namespace {self.layout.netns}: deleted")
        for line in report:
            self.log(f"tools/cluster: {line}")
        return report

    def status(self) -> dict[str, object]:
        state: dict[str, object] = {
            "state": str(self.layout.state),
            "netns": self.layout.netns if netns.exists(self.layout.netns) else None,
            "running": self.running(),
            "kubeconfig": str(self.layout.kubeconfig),
            "repository": f"https://{GIT_HOST}/{self.layout.repository.relative_to(self.layout.git_root)}",
        }
        if "kube-apiserver" in state["running"]:  # type: ignore[operator]
            try:
                state["nodes"] = len(self.kube.json("get", "nodes")["items"])
                apps = self.kube.json("get", "applications.argoproj.io", "-n", "argocd")["items"]
                state["applications"] = {
                    a["metadata"]["name"]: "{}/{}".format(
                        a.get("status", {}).get("sync", {}).get("status", "?"),
                        a.get("status", {}).get("health", {}).get("status", "?"),
                    )
                    for a in apps
                }
            except (KubeError, Timeout) as err:
                state["error"] = str(err)
        return state


# What argocd-server would create on its first start (it does not run here).
DEFAULT_PROJECT = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "AppProject",
    "metadata": {"name": "default", "namespace": "argocd"},
    "spec": {
        "sourceRepos": ["*"],
        "destinations": [{"server": "*", "namespace": "*"}],
        "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
    },
}


_STAGE_REF = re.compile(r"^    apiGroup: ([\w.-]+)/\w+\n    kind: (\w+)$", re.M)


def stages_for(text: str, kinds: set[tuple[str, str]] | None) -> str:
    """The Stages of `text` whose kind the cluster serves: kwok exits on any other."""
    kept = []
    for doc in text.split("\n---\n"):
        ref = _STAGE_REF.search(doc)
        if ref is None:
            continue
        group, kind = ref.groups()
        if kinds is None or group.endswith("k8s.io") or (group, kind) in kinds:
            kept.append(doc.strip() + "\n")
    return "---\n".join(kept)


def _git(*args: str) -> None:
    done = subprocess.run([GIT, *args], capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise ClusterError(f"git {args[0]}: {done.stderr.strip()}")


def for_checkout(state: Path, repo: Path = REPO) -> Cluster:
    """A cluster using `repo`'s .tools (what tools/setup built)."""
    return Cluster(
        layout=Layout(state.resolve()),
        tools=Tools.in_dir(repo / ".tools" / "bin"),
        data=repo / ".tools" / "cluster",
    )


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--state", type=Path, required=True, help="the cluster's state directory")
    parser.add_argument("--seed", type=Path, help="up: push this checkout's HEAD to main")
    parser.add_argument(
        "--api-only", action="store_true", help="up: control plane and CRDs; no kwok, no Argo CD"
    )
    args = parser.parse_args(argv)
    cluster = for_checkout(args.state)
    try:
        if args.command == "up":
            cluster.up(seed=args.seed, workloads=not args.api_only)
            layout = cluster.layout
            print(f"tools/cluster: up; KUBECONFIG={layout.kubeconfig}, in netns {layout.netns}")
        elif args.command == "down":
            cluster.down()
        else:
            state = cluster.status()
            print(json.dumps(state, indent=2))
            return 0 if state["running"] else 3
    except (ClusterError, KubeError, Timeout, netns.NetnsError) as err:
        print(f"tools/cluster: {err}", file=sys.stderr)
        return 3 if "running on" in str(err) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
