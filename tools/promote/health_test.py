"""Health verdicts: the status file's rules, and Argo CD's API on a loopback fake."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tools.promote import health
from tools.promote.fake_argocd import FakeArgo

IMAGE = "registry.harmonyflow.io/syncbridge/ws-edge"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)


def record(smoke: str = "passed", env: str = "staging", digest: str = D1) -> str:
    return health.status_record(env, smoke, {IMAGE: digest}, "c" * 40, "run 7", NOW)


def test_a_passed_smoke_test_of_exactly_these_digests_is_healthy() -> None:
    verdict = health.from_status_file("staging", record(), {IMAGE: D1})
    assert verdict.healthy, verdict.reasons
    assert verdict.source == "status file gitops/status/staging.json"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "no status file for staging"),
        ("{not json", "not JSON"),
        ("[]", "JSON object"),
        (record(smoke="failed"), "did not pass (smoke='failed': run 7)"),
        (record(env="dev"), "is for 'dev', not 'staging'"),
        (record(digest=D2), f"smoke test covered {D2}, not {D1}"),
    ],
)
def test_unhealthy_status_files_say_why(text: str | None, reason: str) -> None:
    verdict = health.from_status_file("staging", text, {IMAGE: D1})
    assert not verdict.healthy
    assert any(reason in r for r in verdict.reasons), verdict.reasons


def test_a_stale_status_is_refused_when_a_max_age_is_given() -> None:
    later = NOW + timedelta(hours=3)
    ok = health.from_status_file("staging", record(), {IMAGE: D1}, timedelta(hours=4), later)
    stale = health.from_status_file("staging", record(), {IMAGE: D1}, timedelta(hours=2), later)
    assert ok.healthy
    assert not stale.healthy and "older than" in stale.reasons[0]


# --- Argo CD -------------------------------------------------------------------


@pytest.fixture
def argo() -> Iterator[FakeArgo]:
    fake = FakeArgo()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def app(sync: str = "Synced", health_status: str = "Healthy", digest: str = D1) -> Any:
    return {
        "status": {
            "sync": {"status": sync},
            "health": {"status": health_status},
            "summary": {"images": [f"{IMAGE}@{digest}"]},
        }
    }


def test_argocd_synced_healthy_and_running_the_digest(
    argo: FakeArgo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(health.TOKEN_ENV, "t0ken")
    argo.apps["ws-edge"] = app()
    verdict = health.from_argocd(argo.url, "staging", {"ws-edge": (IMAGE, D1)})
    assert verdict.healthy, verdict.reasons
    assert verdict.source == f"Argo CD {argo.url}"
    assert argo.auth == ["Bearer t0ken"]


@pytest.mark.parametrize(
    ("application", "reason"),
    [
        (app(sync="OutOfSync"), "is OutOfSync, not Synced"),
        (app(health_status="Degraded"), "is Degraded, not Healthy"),
        (app(digest=D2), f"does not run {IMAGE}@{D1}"),
        (None, "answered HTTP 404"),
    ],
)
def test_argocd_unhealthy_says_why(argo: FakeArgo, application: Any, reason: str) -> None:
    if application is not None:
        argo.apps["ws-edge"] = application
    verdict = health.from_argocd(argo.url, "staging", {"ws-edge": (IMAGE, D1)})
    assert not verdict.healthy
    assert any(reason in r for r in verdict.reasons), verdict.reasons


def test_argocd_that_does_not_answer_is_unreachable() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(health.Unreachable):
        health.from_argocd(
            f"http://127.0.0.1:{port}", "staging", {"ws-edge": (IMAGE, D1)}, timeout=2
        )
