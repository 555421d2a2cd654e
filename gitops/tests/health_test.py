"""Every argocd-cm health check, in Argo CD's own Lua interpreter, for each status it can give."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops.tests import health

ARGOCD_CM = Path(__file__).absolute().parents[1] / "argocd" / "health" / "argocd-cm.yaml"


def _conditions(*pairs: tuple[str, str], reason: str = "", message: str = "m") -> dict[str, Any]:
    return {
        "conditions": [
            {"type": kind, "status": status, "reason": reason, "message": message}
            for kind, status in pairs
        ]
    }


# (check, object, expected status): a healthy, a waiting and, where the kind
# can fail, a failed object for each check.
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("argoproj.io_Application", {"status": {"health": {"status": "Healthy"}}}, "Healthy"),
    ("argoproj.io_Application", {"status": {"health": {"status": "Degraded"}}}, "Degraded"),
    ("argoproj.io_Application", {"metadata": {"name": "new"}}, "Progressing"),
    (
        "networking.k8s.io_Ingress",
        {"status": {"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}},
        "Healthy",
    ),
    ("networking.k8s.io_Ingress", {"status": {"loadBalancer": {}}}, "Progressing"),
    ("cert-manager.io_Certificate", {"status": _conditions(("Ready", "True"))}, "Healthy"),
    (
        "cert-manager.io_Certificate",
        {"status": _conditions(("Ready", "False"), reason="Failed")},
        "Degraded",
    ),
    (
        "cert-manager.io_Certificate",
        {"status": _conditions(("Ready", "False"), ("Issuing", "True"), reason="DoesNotExist")},
        "Progressing",
    ),
    (
        "postgresql.cnpg.io_Cluster",
        {"status": {"phase": "Cluster in healthy state", **_conditions(("Ready", "True"))}},
        "Healthy",
    ),
    (
        "postgresql.cnpg.io_Cluster",
        {"status": {"phase": "Setting up primary", **_conditions(("Ready", "False"))}},
        "Progressing",
    ),
    (
        "rabbitmq.com_RabbitmqCluster",
        {"status": _conditions(("AllReplicasReady", "True"), ("ClusterAvailable", "True"))},
        "Healthy",
    ),
    (
        "rabbitmq.com_RabbitmqCluster",
        {"status": _conditions(("AllReplicasReady", "False"), ("ClusterAvailable", "True"))},
        "Progressing",
    ),
    (
        "rabbitmq.com_RabbitmqCluster",
        {"status": _conditions(("AllReplicasReady", "True"), ("ReconcileSuccess", "False"))},
        "Degraded",
    ),
    ("trust.cert-manager.io_Bundle", {"status": _conditions(("Synced", "True"))}, "Healthy"),
    ("trust.cert-manager.io_Bundle", {"status": _conditions(("Synced", "False"))}, "Degraded"),
    ("trust.cert-manager.io_Bundle", {"metadata": {"name": "new"}}, "Progressing"),
]


@pytest.fixture(scope="module")
def checks() -> dict[str, str]:
    return health.checks(yaml.safe_load(ARGOCD_CM.read_text()))


@pytest.fixture(scope="module")
def glua() -> Path:
    return Path(os.environ["GLUA"]).absolute()


@pytest.mark.parametrize(("key", "obj", "expected"), CASES)
def test_health_check(
    checks: dict[str, str], glua: Path, key: str, obj: dict[str, Any], expected: str
) -> None:
    status, _message = health.run(glua, checks[key], obj)
    assert status == expected


def test_every_check_has_cases(checks: dict[str, str]) -> None:
    covered = {key for key, _obj, _expected in CASES}
    assert covered == set(checks)


def test_a_broken_script_fails_loudly(glua: Path) -> None:
    with pytest.raises(RuntimeError, match="glua failed"):
        health.run(glua, "return obj.status.missing.field", {"status": {}})
