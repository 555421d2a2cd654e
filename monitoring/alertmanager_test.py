"""Alertmanager routes each severity of each environment as the deployment
report has it (checked by amtool itself), and holds no credentials."""

from __future__ import annotations

import subprocess

import pytest

from monitoring import alertmanager

AMTOOL = "/usr/bin/amtool"  # Debian's prometheus-alertmanager, installed by tools/setup
CONFIG = str(alertmanager.CONFIG_PATH)

# (labels of an alert, the receivers it must reach, in amtool's order)
ROUTES = [
    ({"environment": "staging", "severity": "critical"}, "pagerduty-staging,slack-staging"),
    ({"environment": "staging", "severity": "warning"}, "slack-staging"),
    ({"environment": "prod", "severity": "critical"}, "pagerduty-prod,slack-prod"),
    ({"environment": "prod", "severity": "warning"}, "slack-prod"),
    # dev never pages
    ({"environment": "dev", "severity": "critical"}, "slack-dev"),
    ({"environment": "dev", "severity": "warning"}, "slack-dev"),
    # an alert without severity still reaches its environment's channel
    ({"environment": "staging", "alertname": "KubeJobFailed"}, "slack-staging"),
    # a Prometheus without the environment label: nothing is dropped
    ({"severity": "critical"}, "slack-unrouted"),
    ({"environment": "prod", "alertname": "Watchdog", "severity": "none"}, "null"),
]


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=60)


def routes_test(labels: dict[str, str], expected: str) -> subprocess.CompletedProcess[str]:
    pairs = [f"{name}={value}" for name, value in labels.items()]
    return amtool(
        "config", "routes", "test", f"--config.file={CONFIG}", f"--verify.receivers={expected}",
        "alertname=SyncBridgeTest", *pairs,
    )  # fmt: skip


def test_check_config() -> None:
    checked = amtool("check-config", CONFIG)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


@pytest.mark.parametrize(("labels", "expected"), ROUTES)
def test_route(labels: dict[str, str], expected: str) -> None:
    result = routes_test(labels, expected)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == expected


def test_a_wrong_expectation_fails() -> None:
    """amtool's verification is real: a warning must not page."""
    result = routes_test({"environment": "staging", "severity": "warning"}, "pagerduty-staging")
    assert result.returncode != 0
    assert "did not match" in result.stdout + result.stderr


def test_each_environment_has_its_channel() -> None:
    channels = alertmanager.slack_channels(alertmanager.load())
    assert channels["slack-staging"] == "#staging-alerts"  # as the report has it
    assert channels["slack-prod"] == "#prod-alerts"
    assert channels["slack-dev"] == "#dev-alerts"


def test_no_credentials_in_the_config() -> None:
    assert alertmanager.credential_problems(alertmanager.load()) == []


def test_an_inline_credential_is_caught() -> None:
    config = alertmanager.load()
    config["global"]["slack_api_url"] = "https://hooks.invalid/T000/B000/XXXX"
    config["receivers"][-1]["pagerduty_configs"][0]["routing_key_file"] = "/etc/keys/pagerduty"
    problems = alertmanager.credential_problems(config)
    assert "global.slack_api_url: inline credential" in problems[0]
    assert "routing_key_file: '/etc/keys/pagerduty' is not in the mounted Secret" in problems[1]
