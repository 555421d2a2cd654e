"""A real Argo CD syncs the committed gitops/ into a real API server, and promotions
roll out: the whole delivery path of README.md, on a local cluster per environment.

Each environment gets its own cluster (tools/cluster, one after the other): the
test's checkout of gitops/ and policies/ is pushed to the cluster's git repository
(what Argo CD reads as https://git.harmonyflow.io/harmonyflow/syncbridge.git), and
the cluster is bootstrapped the way README.md says, by applying the rendered
`gitops/clusters/<env>` once; from then on only Argo CD applies anything. Changes
are commits made by tools/promote in that checkout and pushed, as CI does.

Chart Applications (cert-manager, Linkerd, the operators, ...) cannot be fetched
here: no chart repository is reachable, and the loopback proxy refuses them (403).
The test proves that is the only thing they lack: each stops at a ComparisonError
naming its refused repository, and the proxy logged that host. The one thing their
sync would have done that this repository's Applications rely on, creating their
destination namespace (`CreateNamespace=true`, with its managedNamespaceMetadata),
the test does in their stead, from the rendered Applications.

Over 400 lines: one file because the three environments share the checkout, the
bring-up and the waits; each class is one environment.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.cluster import argocd, harness
from tools.cluster.cluster import Cluster
from tools.cluster.kube import Kube, Timeout
from tools.cluster.layout import GIT_HOST
from tools.gitops import render
from tools.promote import main as promote
from tools.promote.changes import Code

THIS_REPO = f"https://{GIT_HOST}/harmonyflow/syncbridge.git"
GIT = "/usr/bin/git"
EDGE_IMAGE = "registry.harmonyflow.io/syncbridge/ws-edge"
SYNC_TIMEOUT = 900.0  # the first sync of every wave, on two shared cores
ROLLOUT_TIMEOUT = 300.0


def phase(name: str, seconds: float) -> None:
    print(f"phase: {name} {seconds:.1f} s", flush=True)


def digest(fill: str) -> str:
    return "sha256:" + (fill * 64)[:64]


# --- the test's checkout: what a person or CI has --------------------------------
@dataclass
class Checkout:
    root: Path
    remote: str

    def git(self, *args: str) -> str:
        done = subprocess.run(
            [GIT, "-C", str(self.root), *args],
            capture_output=True, text=True, check=False, timeout=120,
            env={"PATH": "/usr/bin:/bin", "HOME": str(self.root.parent)},
        )  # fmt: skip
        assert done.returncode == 0, f"git {args[0]}: {done.stderr}"
        return done.stdout.strip()

    def promote(self, *args: str) -> tuple[int, str]:
        """tools/promote as CI runs it (its pinned validator tools from runfiles)."""
        out = io.StringIO()
        tools = [
            f"--kustomize={harness.runfile('KUSTOMIZE')}",
            f"--kubeconform={harness.runfile('KUBECONFORM')}",
            f"--opa={harness.runfile('OPA')}",
            f"--schemas={harness.runfile('SCHEMAS')}",
        ]
        code = promote.run([f"--repo={self.root}", *tools, *args], out)
        return code, out.getvalue()

    def push(self) -> None:
        self.git("push", "--quiet", "origin", "HEAD:main")

    def pinned(self, env: str, image: str = EDGE_IMAGE) -> str:
        overlay = self.root / f"gitops/apps/ws-edge/overlays/{env}/kustomization.yaml"
        for entry in yaml.safe_load(overlay.read_text())["images"]:
            if entry["name"] == image:
                return str(entry["digest"])
        raise AssertionError(f"{overlay}: no digest for {image}")


def new_checkout(root: Path) -> Checkout:
    """gitops/ and policies/ as committed (runfiles), in a repository of their own."""
    root.mkdir(parents=True)
    shutil.copytree(harness.gitops_tree(), root / "gitops", symlinks=False)
    shutil.copytree(harness.RUNFILES / "policies", root / "policies", symlinks=False)
    checkout = Checkout(root, "")
    checkout.git("init", "--quiet", "--initial-branch=main")
    checkout.git("config", "user.name", "sync-test")
    checkout.git("config", "user.email", "sync-test@harmonyflow.io")
    checkout.git("add", "--all")
    checkout.git("commit", "--quiet", "-m", "gitops/ and policies/ as committed")
    return checkout


# --- one environment's cluster ---------------------------------------------------
@dataclass
class Environment:
    env: str
    cluster: Cluster
    checkout: Checkout
    expected: dict[str, dict[str, Any]]  # the root's Applications, by name, as rendered

    @property
    def kube(self) -> Kube:
        return self.cluster.kube

    @property
    def namespace(self) -> str:
        return f"harmonyflow-{self.env}"

    def ours(self) -> list[str]:
        return sorted(n for n, a in self.expected.items() if source_of(a)["repoURL"] == THIS_REPO)

    def charts(self) -> list[str]:
        return sorted(n for n, a in self.expected.items() if source_of(a)["repoURL"] != THIS_REPO)

    def wait(
        self, what: str, probe: Callable[[], Any], timeout: float, every: float = 2.0
    ) -> float:
        """Seconds until `probe` returns a truthy value; on timeout, every app's state."""
        started = time.monotonic()
        while True:
            got = probe()
            if got:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                states = "\n  ".join(str(s) for s in argocd.applications(self.kube).values())
                raise Timeout(f"{what}: not within {timeout:.0f} s; applications:\n  {states}")
            time.sleep(every)

    def edge_pods(self) -> list[dict[str, Any]]:
        pods = self.kube.json(
            "get", "pods", "-n", self.namespace, "-l", "app.kubernetes.io/name=ws-edge"
        )["items"]
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def edge_runs(self, pinned: str) -> bool:
        """Every live ws-edge pod runs `pinned`, Running, and as many as the Deployment wants."""
        deployment = self.kube.get("deployment", "ws-edge", self.namespace)
        want = deployment["spec"].get("replicas", 1)
        pods = self.edge_pods()
        images = {
            c["image"] for p in pods for c in p["spec"]["containers"] if c["name"] == "ws-edge"
        }
        running = all(p.get("status", {}).get("phase") == "Running" for p in pods)
        return images == {f"{EDGE_IMAGE}@{pinned}"} and running and len(pods) == want


def as_list(objects: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})


def chart_namespaces(apps: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The namespaces chart Applications would create as their sync's first step."""
    found = []
    for app in apps:
        policy = app["spec"].get("syncPolicy", {})
        if source_of(app)["repoURL"] == THIS_REPO:
            continue
        if "CreateNamespace=true" not in policy.get("syncOptions", []):
            continue
        metadata = policy.get("managedNamespaceMetadata", {})
        found.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": app["spec"]["destination"]["namespace"],
                    "labels": metadata.get("labels", {}),
                    "annotations": metadata.get("annotations", {}),
                },
            }
        )
    return found


def source_of(app: dict[str, Any]) -> dict[str, Any]:
    spec = app["spec"]
    found: dict[str, Any] = spec["source"] if "source" in spec else spec["sources"][0]
    return found


def bring_up(tmp: Path, env: str) -> Iterator[Environment]:
    checkout = new_checkout(tmp / "checkout")
    with harness.start(tmp / "cluster", workloads=True) as cluster:
        # The cluster's repository is the checkout's origin (a bare repo on disk).
        bare = cluster.layout.repository
        checkout.git("push", "--quiet", f"file://{bare}", "HEAD:refs/heads/main")
        checkout.git("remote", "add", "origin", f"file://{bare}")
        checkout.git("fetch", "--quiet", "origin")
        checkout.remote = f"file://{bare}"
        rendered = [
            d.obj
            for d in render.build_documents(
                checkout.root / f"gitops/clusters/{env}", harness.runfile("KUSTOMIZE")
            )
        ]
        expected = {o["metadata"]["name"]: o for o in rendered if o["kind"] == "Application"}
        cluster.kube.apply(as_list(chart_namespaces(expected.values())))
        started = time.monotonic()
        # README.md's bootstrap: once, by hand; Argo CD owns everything after it.
        cluster.kube.apply(as_list(rendered))
        phase(f"{env}: bootstrap applied", time.monotonic() - started)
        yield Environment(env, cluster, checkout, expected)


def wait_first_sync(environment: Environment) -> float:
    ours = environment.ours()

    def all_synced() -> bool:
        states = argocd.applications(environment.kube)
        return set(environment.expected) <= set(states) and all(states[n].ready for n in ours)

    return environment.wait(
        f"{environment.env}: every app of this repository", all_synced, SYNC_TIMEOUT
    )


# --- staging: the whole root, the figures, a promotion and its rollback, drift --
@pytest.fixture(scope="class")
def staging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    yield from bring_up(tmp_path_factory.mktemp("staging"), "staging")


class TestStaging:
    def test_the_root_syncs_every_application_of_this_repository(
        self, staging: Environment
    ) -> None:
        seconds = wait_first_sync(staging)
        phase("staging: first sync (every app of this repository Synced and Healthy)", seconds)
        states = argocd.applications(staging.kube)
        assert set(states) == set(staging.expected), "the root made other Applications"
        assert {"root", "namespaces", "ws-edge", "session-core"} <= set(staging.ours())
        head = staging.checkout.git("rev-parse", "HEAD")
        for name in staging.ours():
            assert states[name].ready, str(states[name])
            assert states[name].revision == head, str(states[name])

    def test_chart_applications_stop_only_at_the_refused_fetch(self, staging: Environment) -> None:
        """Nothing but the network is missing for them: each ends at a ComparisonError
        about its own repository, and the proxy refused (403) that very host."""
        proxy_log = staging.cluster.layout.proxy_log
        states = argocd.applications(staging.kube)
        assert staging.charts(), "the root names chart Applications"
        for name in staging.charts():
            source = source_of(staging.expected[name])
            repo = source["repoURL"]
            host = urlsplit(repo if "://" in repo else f"oci://{repo}").hostname
            assert states[name].sync != "Synced", str(states[name])
            errors = [c for c in states[name].conditions if c.startswith("ComparisonError")]
            assert errors, f"{name}: no ComparisonError: {states[name]}"
            assert not any("InvalidSpecError" in c for c in states[name].conditions), str(
                states[name]
            )
            refused = [
                json.loads(line) for line in proxy_log.read_text().splitlines() if line.strip()
            ]
            assert any(r["host"] == host and not r["served"] for r in refused), (
                f"{name}: the proxy never refused {host}: {states[name]}"
            )

    def test_the_workloads_carry_the_reports_figures(self, staging: Environment) -> None:
        kube, ns = staging.kube, staging.namespace
        hpa = kube.get("hpa", "ws-edge", ns)
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
        # The Deployment names no replicas: the HPA controller raises it to its minimum
        # (no metrics here, so it never goes above), and kwok runs the pods.
        staging.wait(
            "the HPA scales ws-edge to 3",
            lambda: (
                kube.get("deployment", "ws-edge", ns)["spec"].get("replicas") == 3
                and staging.edge_runs(staging.checkout.pinned("staging"))
            ),
            ROLLOUT_TIMEOUT,
        )
        replicas = {
            d["metadata"]["name"]: d["status"].get("readyReplicas", 0)
            for d in kube.json("get", "deployments", "-n", ns)["items"]
        }
        assert replicas == {"ws-edge": 3, "session-core": 3, "outbox-relay": 2}, replicas
        pdbs = {p["metadata"]["name"]: p for p in kube.json("get", "pdb", "-n", ns)["items"]}
        assert pdbs["ws-edge"]["spec"]["minAvailable"] == 2
        assert pdbs["session-core"]["spec"]["minAvailable"] == 2
        policies = kube.json("get", "networkpolicy", "-n", ns)["items"]
        assert any(
            p["spec"].get("podSelector") == {} and "Ingress" in p["spec"].get("policyTypes", [])
            for p in policies
        ), "no default-deny NetworkPolicy"
        selected = {
            p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
            for p in policies
        }
        assert {"ws-edge", "session-core"} <= selected
        assert staging.edge_runs(staging.checkout.pinned("staging"))
        # As the API server stored them (defaults applied): each live pod, dry-run into a
        # namespace that enforces `restricted`, is admitted there.
        enforcing = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "restricted-enforced",
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
        kube.apply(json.dumps(enforcing))
        pods = kube.json("get", "pods", "-n", ns)["items"]
        assert {p["metadata"]["labels"].get("app.kubernetes.io/name") for p in pods} >= {
            "ws-edge",
            "session-core",
        }
        for pod in pods:
            image = pod["spec"]["containers"][0]["image"]
            assert "@sha256:" in image, f"{pod['metadata']['name']}: {image}"
            accounts = {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": pod["spec"]["serviceAccountName"]},
            }
            kube.apply(json.dumps(accounts), "--namespace=restricted-enforced")
            spec = {k: v for k, v in pod["spec"].items() if k != "nodeName"}
            check = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "check", "namespace": "restricted-enforced"},
                "spec": spec,
            }
            done = kube.run(
                "apply", "--dry-run=server", "-f", "-", stdin=json.dumps(check), check=False
            )
            assert done.returncode == 0, f"{pod['metadata']['name']}: {done.stderr}"
            assert "PodSecurity" not in done.stderr, done.stderr

    def test_a_promotion_rolls_out_and_its_rollback_restores(self, staging: Environment) -> None:
        checkout = staging.checkout
        before = checkout.pinned("staging")
        new = digest("7")
        code, out = checkout.promote("release", "--digest", f"ws-edge={new}")
        assert code == Code.OK, out
        code, out = checkout.promote(
            "record-status", "--env", "dev", "--smoke", "passed", "--details", "sync_test"
        )
        assert code == Code.OK, out
        code, out = checkout.promote("--from", "dev", "--to", "staging", "--service", "ws-edge")
        assert code == Code.OK, out
        assert checkout.pinned("staging") == new
        checkout.push()
        started = time.monotonic()
        argocd.refresh(staging.kube, "ws-edge")
        staging.wait(
            "staging ws-edge runs the promoted digest",
            lambda: staging.edge_runs(new),
            ROLLOUT_TIMEOUT,
        )
        phase(
            "staging: promotion rollout (push to every pod on the new digest)",
            time.monotonic() - started,
        )

        code, out = checkout.promote("rollback", "--env", "staging")
        assert code == Code.OK, out
        assert checkout.pinned("staging") == before
        checkout.push()
        started = time.monotonic()
        argocd.refresh(staging.kube, "ws-edge")
        staging.wait(
            "staging ws-edge back on the old digest",
            lambda: staging.edge_runs(before),
            ROLLOUT_TIMEOUT,
        )
        phase("staging: rollback rollout", time.monotonic() - started)
        head = checkout.git("rev-parse", "HEAD")
        staging.wait(
            "ws-edge Synced at the rollback commit",
            lambda: (
                (s := argocd.applications(staging.kube)["ws-edge"]).ready and s.revision == head
            ),
            ROLLOUT_TIMEOUT,
        )

    def test_a_change_that_breaks_a_policy_is_refused_before_any_commit(
        self, staging: Environment
    ) -> None:
        checkout = staging.checkout
        running = checkout.pinned("staging")
        # A release that passed dev's smoke test, ready to promote...
        code, out = checkout.promote("release", "--digest", f"ws-edge={digest('8')}")
        assert code == Code.OK, out
        code, out = checkout.promote(
            "record-status", "--env", "dev", "--smoke", "passed", "--details", "sync_test"
        )
        assert code == Code.OK, out
        # ...and then someone merged a staging patch that makes ws-edge privileged
        # (policies/podsecurity): promoting on top of it must add no commit, and so
        # nothing reaches the cluster.
        overlay = Path("gitops/apps/ws-edge/overlays/staging")
        patch = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "ws-edge"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": "ws-edge", "securityContext": {"privileged": True}}]
                    }
                }
            },
        }
        (checkout.root / overlay / "privileged.yaml").write_text(json.dumps(patch))
        kustomization = checkout.root / overlay / "kustomization.yaml"
        kustomization.write_text(
            kustomization.read_text() + "patches:\n  - path: privileged.yaml\n"
        )
        checkout.git("add", "--all")
        checkout.git("commit", "--quiet", "-m", "chore: a privileged ws-edge (a policy says no)")
        head = checkout.git("rev-parse", "HEAD")
        code, out = checkout.promote("--from", "dev", "--to", "staging", "--service", "ws-edge")
        assert code == Code.INVALID, out
        assert "does not validate" in out and "is privileged" in out, out
        assert checkout.git("rev-parse", "HEAD") == head, "the refused promotion committed"
        assert checkout.pinned("staging") == running
        # Nothing was pushed: the cluster's repository and pods stay where they were.
        checkout.git("reset", "--quiet", "--hard", "origin/main")
        remote_head = checkout.git("ls-remote", "origin", "refs/heads/main").split()[0]
        argocd.refresh(staging.kube, "ws-edge")
        staging.wait(
            "ws-edge reconciled at the unchanged main",
            lambda: (
                (s := argocd.applications(staging.kube)["ws-edge"]).ready
                and s.revision == remote_head
            ),
            ROLLOUT_TIMEOUT,
        )
        assert staging.edge_runs(running)

    def test_a_manual_drift_is_healed(self, staging: Environment) -> None:
        heal_drift(staging)


def heal_drift(environment: Environment) -> None:
    """`kubectl edit` of a synced object (ws-edge's image): self-heal puts git's back."""
    pinned = environment.checkout.pinned(environment.env)
    wrong = f"{EDGE_IMAGE}@{digest('d')}"
    environment.kube.run(
        "set", "image", "deployment/ws-edge", f"ws-edge={wrong}", "-n", environment.namespace
    )
    started = time.monotonic()
    environment.wait(
        f"{environment.env}: drift healed",
        lambda: environment.edge_runs(pinned),
        ROLLOUT_TIMEOUT,
    )
    phase(f"{environment.env}: drift healed (self-heal)", time.monotonic() - started)


# --- dev: syncs by itself and heals too -------------------------------------------
@pytest.fixture(scope="class")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    yield from bring_up(tmp_path_factory.mktemp("dev"), "dev")


class TestDev:
    def test_dev_syncs_by_itself_and_heals_a_drift(self, dev: Environment) -> None:
        phase("dev: first sync", wait_first_sync(dev))
        heal_drift(dev)


# --- prod: a person syncs, inside the window; drift is reported, never reverted ----
@pytest.fixture(scope="class")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    yield from bring_up(tmp_path_factory.mktemp("prod"), "prod")


def prod_window(checkout: Checkout) -> tuple[str, str]:
    patch = yaml.safe_load((checkout.root / "gitops/clusters/prod/sync-window.yaml").read_text())
    window = patch[0]["value"][0]
    assert window["kind"] == "allow" and window["manualSync"] is False, window
    return window["schedule"], window["duration"]


class TestProd:
    def test_prod_syncs_only_by_hand_and_reports_a_drift(self, prod: Environment) -> None:
        kube = prod.kube
        # Pressing Sync on the root (its project has no window): Argo CD takes over the
        # bootstrapped objects wave by wave. It deploys nothing: every Application here
        # is manual, so the root's sync then waits for a person to sync the first of
        # them (the waves wait for each Application's health).
        argocd.request_sync(kube, "root", "sync-test")
        started = time.monotonic()
        prod.wait(
            "prod root applied its first wave (the AppProjects)",
            lambda: (
                argocd.resource_status(argocd.application(kube, "root"), "AppProject", "syncbridge")
                == "Synced"
            ),
            SYNC_TIMEOUT,
        )
        phase("prod: root's first wave synced by hand", time.monotonic() - started)
        assert set(argocd.applications(kube)) == set(prod.expected)
        time.sleep(30)  # three reconciliations (10 s): no automated sync may start
        states = argocd.applications(kube)
        assert all(states[name].sync != "Synced" for name in prod.ours() if name != "root")
        assert not kube.json("get", "deployments", "-A")["items"], "prod synced by itself"

        # Pressing Sync on an Application of a workloads' project: its window decides.
        schedule, duration = prod_window(prod.checkout)
        inside = argocd.in_window(schedule, duration, datetime.now(UTC))
        argocd.request_sync(kube, "namespaces", "sync-test")
        if inside:
            prod.wait(
                "prod namespaces synced by hand inside the window",
                lambda: argocd.applications(kube)["namespaces"].ready,
                SYNC_TIMEOUT,
            )
        else:
            prod.wait(
                "the window refuses the sync",
                lambda: "window" in argocd.applications(kube)["namespaces"].operation.lower(),
                ROLLOUT_TIMEOUT,
            )
            assert kube.run("get", "namespace", prod.namespace, check=False).returncode != 0

        # Drift: a person edits a synced object (the syncbridge AppProject). Reported, kept.
        kube.run(
            "patch", "appprojects.argoproj.io", "syncbridge", "-n", argocd.NAMESPACE,
            "--type=merge", "-p", json.dumps({"spec": {"description": "edited by hand"}}),
        )  # fmt: skip
        started = time.monotonic()
        argocd.refresh(kube, "root")
        prod.wait(
            "prod root reports the drift",
            lambda: (
                argocd.resource_status(argocd.application(kube, "root"), "AppProject", "syncbridge")
                == "OutOfSync"
            ),
            ROLLOUT_TIMEOUT,
        )
        phase("prod: drift reported OutOfSync", time.monotonic() - started)
        time.sleep(30)  # three reconciliations: nothing may revert it
        live = kube.get("appprojects.argoproj.io", "syncbridge", argocd.NAMESPACE)
        assert live["spec"]["description"] == "edited by hand", "prod healed by itself"
        assert argocd.applications(kube)["root"].sync == "OutOfSync"
