"""The app overlays against the services' config modules, both ways, and the report's figures."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops.tests import configcheck
from libs.config.settings import load_config
from services.session_core.config import CoreConfig
from services.ws_edge.config import EdgeConfig
from tools.gitops import render

GITOPS = Path(__file__).absolute().parents[1]
OVERLAYS = [
    f"apps/{app}/overlays/{env}"
    for app in ("ws-edge", "session-core")
    for env in ("dev", "staging", "prod")
]


@pytest.fixture(scope="module")
def tree() -> Iterator[Path]:
    """The gitops tree as real files (runfiles are symlinks kustomize refuses)."""
    with render.materialized(GITOPS) as real:
        yield real


@pytest.fixture(scope="module")
def rendered(tree: Path) -> dict[str, list[dict[str, Any]]]:
    kustomize = Path(os.environ["KUSTOMIZE"]).absolute()
    return {root: render.build(tree / root, kustomize) for root in OVERLAYS}


def _container(objects: list[dict[str, Any]], role: str) -> configcheck.Container:
    found = [c for c in configcheck.containers(objects) if c.role == role]
    assert len(found) == 1, f"expected one {role} container, found {len(found)}"
    return found[0]


def test_every_overlay_is_true_to_the_code(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for root, objects in rendered.items():
        assert configcheck.check_root(objects) == [], root


def test_every_overlay_has_all_its_containers(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for root, objects in rendered.items():
        roles = sorted(c.role for c in configcheck.containers(objects))
        if "ws-edge" in root:
            assert roles == ["ws-edge"], root
        else:
            assert roles == ["migrate", "outbox-relay", "session-core"], root


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_reports_figures(rendered: dict[str, list[dict[str, Any]]], env: str) -> None:
    edge = _container(rendered[f"apps/ws-edge/overlays/{env}"], "ws-edge")
    core = _container(rendered[f"apps/session-core/overlays/{env}"], "session-core")
    edge_config = load_config(EdgeConfig, edge.env, prefix="SYNCBRIDGE_EDGE_")
    core_config = load_config(CoreConfig, core.env, prefix="SYNCBRIDGE_CORE_")
    assert edge_config.ping_interval_seconds == 30
    assert core_config.session_ttl_seconds == 7 * 24 * 3600
    assert edge.spec["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
    # Core keeps the relay out of its process: the relay Deployment runs it.
    assert core_config.relay_in_process is False
    assert core_config.migrate_on_start is False


def test_an_unknown_variable_is_caught(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = copy.deepcopy(rendered["apps/ws-edge/overlays/staging"])
    config_map = next(o for o in objects if o["kind"] == "ConfigMap")
    config_map["data"]["SYNCBRIDGE_EDGE_PING_SECONDS"] = "30"
    problems = configcheck.check_root(objects)
    assert any(
        "SYNCBRIDGE_EDGE_PING_SECONDS: the ws-edge code reads no such" in p for p in problems
    )


def test_a_config_map_nobody_reads_is_caught(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = copy.deepcopy(rendered["apps/ws-edge/overlays/staging"])
    config_map = next(o for o in objects if o["kind"] == "ConfigMap")
    orphan = copy.deepcopy(config_map)
    orphan["metadata"]["name"] = "ws-edge-config-old"
    problems = configcheck.check_root([*objects, orphan])
    assert any("ConfigMap/ws-edge-config-old:" in p for p in problems)


def test_a_missing_variable_is_caught(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = copy.deepcopy(rendered["apps/session-core/overlays/prod"])
    config_map = next(o for o in objects if o["kind"] == "ConfigMap")
    del config_map["data"]["SYNCBRIDGE_CORE_SESSION_TTL_SECONDS"]
    problems = configcheck.check_root(objects)
    assert any("SESSION_TTL_SECONDS: neither set nor listed" in p for p in problems)


def test_an_invalid_value_is_caught(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = copy.deepcopy(rendered["apps/ws-edge/overlays/dev"])
    config_map = next(o for o in objects if o["kind"] == "ConfigMap")
    # The edge's own rule: the drain spread must fit in the grace period.
    config_map["data"]["SYNCBRIDGE_EDGE_DRAIN_SPREAD_SECONDS"] = "30"
    problems = configcheck.check_root(objects)
    assert any("DRAIN_SPREAD_SECONDS: must be below" in p for p in problems)


def test_a_secret_no_externalsecret_makes_is_caught(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    objects = [
        o
        for o in copy.deepcopy(rendered["apps/session-core/overlays/staging"])
        if o["kind"] != "ExternalSecret" or o["metadata"]["name"] != "session-core-secrets"
    ]
    problems = configcheck.check_root(objects)
    assert any(
        "Secret session-core-secrets/SYNCBRIDGE_CORE_PG_DSN is made by no" in p for p in problems
    )


def test_a_proxy_that_exits_before_the_drain_is_caught(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    objects = copy.deepcopy(rendered["apps/ws-edge/overlays/prod"])
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    annotations[configcheck.WAIT_BEFORE_EXIT] = "20"
    problems = configcheck.check_root(objects)
    assert any("must exceed preStop 5 s + grace 25 s" in p for p in problems)


def test_a_kill_before_the_proxy_exits_is_caught(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = copy.deepcopy(rendered["apps/session-core/overlays/prod"])
    deployment = next(
        o for o in objects if o["metadata"]["name"] == "session-core" and o["kind"] == "Deployment"
    )
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 30
    problems = configcheck.check_root(objects)
    assert any("terminationGracePeriodSeconds 30 must exceed" in p for p in problems)


def test_a_port_the_process_does_not_bind_is_caught(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    objects = copy.deepcopy(rendered["apps/session-core/overlays/dev"])
    relay = next(
        o for o in objects if o["metadata"]["name"] == "outbox-relay" and o["kind"] == "Deployment"
    )
    relay["spec"]["template"]["spec"]["containers"][0]["env"] = [
        e
        for e in relay["spec"]["template"]["spec"]["containers"][0]["env"]
        if e["name"] != "SYNCBRIDGE_CORE_METRICS_PORT"
    ]
    problems = configcheck.check_root(objects)
    assert any("containerPorts [9103] but the process binds [9102]" in p for p in problems)


def test_the_defaulted_lists_name_real_variables() -> None:
    known = set(configcheck.variables(EdgeConfig)) | set(configcheck.variables(CoreConfig))
    for role, defaulted in configcheck.DEFAULTED.items():
        assert set(defaulted) <= known, role
        assert all(reason for reason in defaulted.values()), role


def _redis_values(tree: Path, env: str) -> dict[str, Any]:
    kustomize = Path(os.environ["KUSTOMIZE"]).absolute()
    root = render.build(tree / f"clusters/{env}", kustomize)
    [app] = [
        o for o in root if o["kind"] == "Application" and o["metadata"]["name"] == "redis-cluster"
    ]
    assert app["spec"]["destination"]["namespace"] == f"redis-{env}"
    values: dict[str, Any] = app["spec"]["source"]["helm"]["valuesObject"]
    return values


def _redis_settings(configmap: str) -> dict[str, str]:
    """redis.conf lines (`name value`) as a dict; comments and blanks skipped."""
    pairs = (ln.split(None, 1) for ln in configmap.splitlines() if ln.strip() and ln[0] != "#")
    return {p[0]: p[1].strip() for p in pairs if len(p) == 2}


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_redis_is_the_cluster_core_expects(
    tree: Path, rendered: dict[str, list[dict[str, Any]]], env: str
) -> None:
    values = _redis_values(tree, env)
    # The report: 3 masters + 3 replicas.
    assert (values["cluster"]["nodes"], values["cluster"]["replicas"]) == (6, 1)
    # services/session_core/cache.py: every key has a TTL; eviction must be a miss.
    settings = _redis_settings(values["redis"]["configmap"])
    assert settings["maxmemory-policy"] == "volatile-lru"
    # The password the chart reads is the Secret this repository's part makes.
    kustomize = Path(os.environ["KUSTOMIZE"]).absolute()
    ours = render.build(tree / "infrastructure/redis/cluster", kustomize)
    made = {o["spec"]["target"]["name"] for o in ours if o["kind"] == "ExternalSecret"}
    assert values["existingSecret"] in made
    # And core talks to it as a cluster.
    core = _container(rendered[f"apps/session-core/overlays/{env}"], "session-core")
    assert load_config(CoreConfig, core.env, prefix="SYNCBRIDGE_CORE_").redis_cluster is True


def test_redis_settings_are_read_line_by_line() -> None:
    assert _redis_settings("# c\nmaxmemory 768mb\n\nmaxmemory-policy  noeviction\n") == {
        "maxmemory": "768mb",
        "maxmemory-policy": "noeviction",
    }
