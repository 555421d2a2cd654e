"""What Argo CD would apply, through the real API server with server-side dry-run:
admission (Pod Security included), CRD schemas with defaulting, field validation.
Stricter than kubeconform (//gitops:validate_test); both run.

For each cluster root (dev, staging, prod): the root itself into `argocd`, and
every Application of this repository: its path rendered, dry-run into its
destination namespace. Bases are not applied by anything, only rendered through
these. Namespaces are created for real first (a namespaced object cannot be
dry-run into a namespace that does not exist): the environments' own from the
namespaces overlays, with their labels; the others (argocd, operators') bare.
Pod Security warnings (the app namespaces warn at `restricted`) fail the test,
and each pod template is also dry-run as a Pod into a namespace that *enforces*
`restricted`: admitted there means the template meets it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import harness
from tools.cluster.cluster import Cluster
from tools.cluster.kube import Kube
from tools.cluster.layout import GIT_HOST
from tools.gitops import render

ENFORCING = "restricted-enforced"
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
THIS_REPO = f"https://{GIT_HOST}/harmonyflow/syncbridge.git"


@dataclass(frozen=True)
class Target:
    """One `kubectl apply` Argo CD would do: a rendered path into a namespace."""

    env: str
    name: str  # the Application's, or "root"
    path: str  # below the repository root
    namespace: str
    objects: tuple[dict[str, Any], ...]

    @property
    def id(self) -> str:
        return f"{self.env}/{self.name}"


def build(tree: Path, path: str) -> list[dict[str, Any]]:
    root = tree.parent / path
    return [d.obj for d in render.build_documents(root, harness.runfile("KUSTOMIZE"))]


def targets(tree: Path) -> list[Target]:
    found = []
    for env in render.ENVIRONMENTS:
        root = build(tree, f"gitops/clusters/{env}")
        found.append(Target(env, "root", f"gitops/clusters/{env}", "argocd", tuple(root)))
        for app in root:
            source = app.get("spec", {}).get("source", {}) if app["kind"] == "Application" else {}
            if source.get("repoURL") != THIS_REPO or app["metadata"]["name"] == "root":
                continue
            dest = app["spec"]["destination"].get("namespace", "default")
            objects = tuple(build(tree, source["path"]))
            found.append(Target(env, app["metadata"]["name"], source["path"], dest, objects))
    return found


with render.materialized(harness.gitops_tree()) as _tree:
    TARGETS = targets(_tree)


def custom_kinds(available: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """(group, Kind) of every object the targets hold that a pinned CRD defines."""
    used = {
        (obj["apiVersion"].rpartition("/")[0], obj["kind"])
        for target in TARGETS
        for obj in target.objects
    }
    return used & available


def as_list(objects: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    crds = harness.runfile("CLUSTER_STAMP").parent / "crds"
    available = {tuple(p.stem.split("_", 1)) for p in crds.glob("*.json")}
    kinds = custom_kinds({(g, k) for g, k in available})
    # Only the API: nothing here runs a pod or syncs; only the CRDs the tree uses.
    with harness.start(tmp_path_factory.mktemp("cluster"), workloads=False, kinds=kinds) as c:
        kube = c.kube
        defined = [o for t in TARGETS for o in t.objects if o["kind"] == "Namespace"]
        kube.apply(as_list(defined), "--server-side", "--field-manager=dry-run-test")
        names = {o["metadata"]["name"] for o in defined}
        for extra in sorted({t.namespace for t in TARGETS} - names - {"default"}):
            kube.run("create", "namespace", extra)
        enforcing = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ENFORCING,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
        kube.apply(json.dumps(enforcing))
        yield c


def cluster_scoped(kube: Kube) -> set[str]:
    """Kinds without a namespace, as this API server says (CRDs included)."""
    listed = kube.run("api-resources", "--namespaced=false", "--no-headers").stdout
    return {line.split()[-1] for line in listed.splitlines() if line.strip()}


def dry_run(kube: Kube, objects: list[dict[str, Any]], namespace: str) -> tuple[int, str, str]:
    """Like Argo CD: the destination namespace for namespaced objects that name none."""
    scoped = cluster_scoped(kube)
    placed = []
    for obj in objects:
        obj = json.loads(json.dumps(obj))
        if obj["kind"] not in scoped and not obj["metadata"].get("namespace"):
            obj["metadata"]["namespace"] = namespace
        placed.append(obj)
    done = kube.run(
        "apply", "--server-side", "--dry-run=server", "--field-manager=dry-run-test",
        "--force-conflicts", "-f", "-", stdin=as_list(placed), check=False,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def test_every_environment_and_app_is_a_target() -> None:
    ids = {t.id for t in TARGETS}
    for env in render.ENVIRONMENTS:
        assert {f"{env}/root", f"{env}/ws-edge", f"{env}/session-core", f"{env}/namespaces"} <= ids
    assert all(t.objects for t in TARGETS), [t.id for t in TARGETS if not t.objects]


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
def test_what_argocd_applies_is_admitted_by_the_api_server(
    cluster: Cluster, target: Target
) -> None:
    code, out, err = dry_run(cluster.kube, list(target.objects), target.namespace)
    assert code == 0, f"{target.path}: the API server refused it:\n{err}"
    assert "PodSecurity" not in err, f"{target.path}: Pod Security warnings:\n{err}"
    assert out.count("(server dry run)") == len(target.objects), out


WORKLOADS = [t for t in TARGETS if any(o["kind"] in POD_TEMPLATE_KINDS for o in t.objects)]


@pytest.mark.parametrize("target", WORKLOADS, ids=lambda t: t.id)
def test_pod_templates_are_admitted_where_restricted_is_enforced(
    cluster: Cluster, target: Target
) -> None:
    # Admission looks the pod's ServiceAccount up: the target's, created for real there.
    accounts = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": o["metadata"]["name"]}}
        for o in target.objects
        if o["kind"] == "ServiceAccount"
    ]
    if accounts:
        cluster.kube.apply(as_list(accounts), f"--namespace={ENFORCING}")
    for obj in target.objects:
        if obj["kind"] not in POD_TEMPLATE_KINDS:
            continue
        template = obj["spec"]["template"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "check", "labels": template["metadata"].get("labels", {})},
            "spec": template["spec"],
        }
        code, _out, err = dry_run(cluster.kube, [pod], ENFORCING)
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        assert code == 0, f"{target.id} {name}: refused where restricted is enforced:\n{err}"


def test_a_pod_without_the_restricted_context_is_refused(cluster: Cluster) -> None:
    """The check above can fail: a pod without the restricted securityContext is refused."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bad"},
        "spec": {"containers": [{"name": "c", "image": "registry.example/x@sha256:" + "0" * 64}]},
    }
    code, _out, err = dry_run(cluster.kube, [pod], ENFORCING)
    assert code != 0 and "violates PodSecurity" in err


def test_a_field_the_crd_schema_lacks_is_refused(cluster: Cluster) -> None:
    """And an object with a field its CRD's schema does not have does not pass."""
    target = next(t for t in TARGETS if t.id == "staging/ws-edge")
    certificate = json.loads(
        json.dumps(next(o for o in target.objects if o["kind"] == "Certificate"))
    )
    certificate["spec"]["notAField"] = True
    code, _out, err = dry_run(cluster.kube, [certificate], target.namespace)
    assert code != 0 and "notAField" in err
