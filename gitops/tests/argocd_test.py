"""Each cluster root as Argo CD would run it: wave order, sync policy per environment."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops.tests import hooks, projects, waves
from tools.gitops import render

GITOPS = Path(__file__).absolute().parents[1]
ENVIRONMENTS = ("dev", "staging", "prod")
REPO_URL = "https://git.harmonyflow.io/harmonyflow/syncbridge.git"


@pytest.fixture(scope="module")
def tree() -> Iterator[Path]:
    with render.materialized(GITOPS) as real:
        yield real


@pytest.fixture(scope="module")
def kustomize() -> Path:
    return Path(os.environ["KUSTOMIZE"]).absolute()


@pytest.fixture(scope="module")
def roots(tree: Path, kustomize: Path) -> dict[str, list[dict[str, Any]]]:
    return {env: render.build(tree / "clusters" / env, kustomize) for env in ENVIRONMENTS}


def _source_renderer(
    tree: Path, kustomize: Path
) -> Callable[[dict[str, Any]], list[dict[str, Any]] | None]:
    cache: dict[str, list[dict[str, Any]]] = {}

    def render_source(application: dict[str, Any]) -> list[dict[str, Any]] | None:
        source = application["spec"]["source"]
        if source["repoURL"] != REPO_URL:
            return None
        path = str(source["path"]).removeprefix("gitops/")
        if path not in cache:
            cache[path] = render.build(tree / path, kustomize)
        return cache[path]

    return render_source


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_kind_is_installed_in_an_earlier_wave(
    roots: dict[str, list[dict[str, Any]]], tree: Path, kustomize: Path, env: str
) -> None:
    assert waves.check_order(roots[env], _source_renderer(tree, kustomize)) == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_presync_hooks_need_nothing_of_the_sync_phase(
    roots: dict[str, list[dict[str, Any]]], tree: Path, kustomize: Path, env: str
) -> None:
    render_source = _source_renderer(tree, kustomize)
    problems = []
    for name, application in sorted(waves.applications(roots[env]).items()):
        objects = render_source(application)
        if objects is not None:
            problems += hooks.check_presync(name, objects)
    assert problems == []


def test_a_hook_needing_a_sync_phase_account_is_caught() -> None:
    """The first sync of a new cluster hung on exactly this (tests/cluster:sync_test)."""
    job = {
        "kind": "Job",
        "metadata": {"name": "migrate", "annotations": {hooks.HOOK: "PreSync"}},
        "spec": {
            "template": {
                "spec": {
                    "serviceAccountName": "migrate",
                    "containers": [
                        {"env": [{"valueFrom": {"secretKeyRef": {"name": "dsn", "key": "k"}}}]}
                    ],
                }
            }
        },
    }
    account = {"kind": "ServiceAccount", "metadata": {"name": "migrate"}}
    secret = {
        "kind": "ExternalSecret",
        "metadata": {"name": "dsn", "annotations": {hooks.HOOK: "PreSync"}},
        "spec": {"target": {"name": "dsn"}},
    }
    assert hooks.check_presync("app", [job, account, secret]) == [
        "app: PreSync Job/migrate needs ServiceAccount/migrate, which this Application "
        "makes only in the Sync phase"
    ]
    hooked = {**account, "metadata": {"name": "migrate", "annotations": {hooks.HOOK: "PreSync"}}}
    assert hooks.check_presync("app", [job, hooked, secret]) == []
    plain_secret = {**secret, "metadata": {"name": "dsn"}}
    assert len(hooks.check_presync("app", [job, hooked, plain_secret])) == 1


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_application_of_this_repository_points_at_a_root(
    roots: dict[str, list[dict[str, Any]]], tree: Path, env: str
) -> None:
    for application in waves.applications(roots[env]).values():
        source = application["spec"]["source"]
        if source["repoURL"] == REPO_URL:
            path = str(source["path"])
            assert env in path.split("/") or "ENV" not in path, path
            assert (tree / path.removeprefix("gitops/") / "kustomization.yaml").is_file(), path
            assert source["targetRevision"] == "main"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_sync_policy_by_environment(roots: dict[str, list[dict[str, Any]]], env: str) -> None:
    for name, application in waves.applications(roots[env]).items():
        automated = application["spec"].get("syncPolicy", {}).get("automated")
        assert "resources-finalizer.argocd.argoproj.io" in application["metadata"]["finalizers"]
        assert application["spec"]["project"] != "default"
        if env == "prod":
            assert automated is None, name
        else:
            assert automated is not None and automated["selfHeal"] is True, name


def test_prod_projects_have_a_sync_window(roots: dict[str, list[dict[str, Any]]]) -> None:
    """Every project that deploys workloads; not the root's (Argo CD's own objects, how
    an emergency change to the window reaches prod outside it)."""
    for env in ENVIRONMENTS:
        projects = [o for o in roots[env] if o["kind"] == "AppProject"]
        assert {p["metadata"]["name"] for p in projects} == {"root", "platform", "syncbridge"}
        for project in projects:
            windows = project["spec"].get("syncWindows")
            wanted = env == "prod" and project["metadata"]["name"] != "root"
            assert bool(windows) == wanted, (env, project["metadata"]["name"])


def test_the_hpa_owns_ws_edge_replicas(roots: dict[str, list[dict[str, Any]]]) -> None:
    for env in ENVIRONMENTS:
        edge = waves.applications(roots[env])["ws-edge"]
        ignored = edge["spec"]["ignoreDifferences"]
        assert {
            "group": "apps",
            "kind": "Deployment",
            "name": "ws-edge",
            "jsonPointers": ["/spec/replicas"],
        } in ignored
        assert "RespectIgnoreDifferences=true" in edge["spec"]["syncPolicy"]["syncOptions"]


def test_a_config_before_its_operator_is_caught(
    roots: dict[str, list[dict[str, Any]]], tree: Path, kustomize: Path
) -> None:
    root = copy.deepcopy(roots["staging"])
    postgresql = waves.applications(root)["postgresql"]
    postgresql["metadata"]["annotations"][waves.WAVE] = "-25"
    problems = waves.check_order(root, _source_renderer(tree, kustomize))
    assert any(
        "postgresql (wave -25): Cluster needs cloudnative-pg (wave -20)" in p for p in problems
    )


def test_a_missing_installer_is_caught(
    roots: dict[str, list[dict[str, Any]]], tree: Path, kustomize: Path
) -> None:
    root = [o for o in copy.deepcopy(roots["dev"]) if o["metadata"]["name"] != "trust-manager"]
    problems = waves.check_order(root, _source_renderer(tree, kustomize))
    assert any("Bundle needs trust-manager, which this root lacks" in p for p in problems)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_object_is_permitted_by_its_project(
    roots: dict[str, list[dict[str, Any]]], tree: Path, kustomize: Path, env: str
) -> None:
    assert projects.check(roots[env], _source_renderer(tree, kustomize)) == []


def test_a_kind_the_root_project_does_not_allow_is_caught(
    roots: dict[str, list[dict[str, Any]]], tree: Path, kustomize: Path
) -> None:
    root = copy.deepcopy(roots["staging"])
    project = next(o for o in root if o["kind"] == "AppProject" and o["metadata"]["name"] == "root")
    project["spec"]["namespaceResourceWhitelist"] = [
        e for e in project["spec"]["namespaceResourceWhitelist"] if e["kind"] != "Secret"
    ]
    problems = projects.check(root, _source_renderer(tree, kustomize))
    assert "root: Secret/repo-bitnamicharts: kind core/Secret is not permitted" in problems


def test_a_destination_no_project_allows_is_caught(
    roots: dict[str, list[dict[str, Any]]], tree: Path, kustomize: Path
) -> None:
    root = copy.deepcopy(roots["staging"])
    del waves.applications(root)["namespaces"]["spec"]["destination"]["namespace"]
    problems = projects.check(root, _source_renderer(tree, kustomize))
    assert any(
        p.startswith("namespaces: destination https://kubernetes.default.svc namespace ''")
        for p in problems
    ), problems


def test_an_object_outside_the_projects_namespaces_is_caught(
    roots: dict[str, list[dict[str, Any]]], tree: Path, kustomize: Path
) -> None:
    render = _source_renderer(tree, kustomize)

    def moved(application: dict[str, Any]) -> list[dict[str, Any]] | None:
        objects = copy.deepcopy(render(application))
        if objects is not None and application["metadata"]["name"] == "ws-edge":
            objects[0]["metadata"]["namespace"] = "kube-system"
        return objects

    problems = projects.check(roots["staging"], moved)
    assert any(
        p.startswith("ws-edge: ") and "'kube-system' is not permitted" in p for p in problems
    )
