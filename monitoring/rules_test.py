"""The PrometheusRule passes promtool, every alert keeps the contract, and every
alert has a promtool case that fires and one that must not (all proven able to fail)."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from monitoring import rules

PROMTOOL = "/usr/bin/promtool"  # Debian's `prometheus` package, installed by tools/setup
TESTS_PATH = Path(__file__).parent / "alerts_test.promtool.yaml"


@pytest.fixture(scope="module")
def rule() -> rules.Doc:
    return rules.load()


@pytest.fixture(scope="module")
def tests() -> rules.Doc:
    document: rules.Doc = yaml.safe_load(TESTS_PATH.read_text())
    return document


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=300)


def unit_test(
    rule: rules.Doc, tests: rules.Doc, directory: Path
) -> subprocess.CompletedProcess[str]:
    rules.write_rules_file(rule, directory / "rules.yaml")
    prepared = rules.with_static_annotations(tests, rule)
    (directory / "tests.yaml").write_text(yaml.safe_dump(prepared, sort_keys=False))
    return promtool("test", "rules", str(directory / "tests.yaml"))


def failed_cases(output: str) -> list[tuple[str, bool]]:
    """(alertname, whether the failing case expected no alert) of each failure."""
    found = []
    for match in re.finditer(r"alertname: (\w+), time: [^,]+,\s*\n\s*exp:(\[\])?", output):
        found.append((match.group(1), match.group(2) is not None))
    return found


# --- the contract ---------------------------------------------------------------


def test_there_are_alerts_for_every_part_of_the_report(rule: rules.Doc) -> None:
    names = set(rules.alerts(rule))
    for name in (
        "SyncBridgeHighErrorRate",
        "SyncBridgeHighLatency",
        "SyncBridgePodCrashLooping",
        "SyncBridgePodNotReady",
        "SyncBridgeHighMemoryUsage",
        "SyncBridgeHighCpuUsage",
        "SyncBridgeWebSocketErrors",
        "SyncBridgeRedisDown",
        "SyncBridgePostgresqlDown",
        "SyncBridgeRabbitmqDown",
        "SyncBridgeDiskSpaceLow",
        "SyncBridgeDiskSpaceCritical",
        "SyncBridgeNodeNotReady",
        "SyncBridgePodEvicted",
        "SyncBridgeOutboxBacklog",
        "SyncBridgeOutboxLag",
        "SyncBridgeOutboxDeadLetters",
        "SyncBridgePoisonEvents",
        "SyncBridgeResumeBySnapshot",
        "SyncBridgeSlowConsumerDisconnects",
        "SyncBridgeCoreUnreachable",
        "SyncBridgeUpdateErrorBudgetBurnFast",
        "SyncBridgeUpdateErrorBudgetBurnSlow",
        "SyncBridgeUpdateLatencyBudgetBurnFast",
        "SyncBridgeUpdateLatencyBudgetBurnSlow",
    ):
        assert name in names, name


@pytest.mark.parametrize(
    ("name", "severity", "duration"),
    [
        ("SyncBridgeHighErrorRate", "critical", "2m"),
        ("SyncBridgeHighLatency", "warning", "5m"),
        ("SyncBridgePodCrashLooping", "critical", None),
        ("SyncBridgePodNotReady", "critical", "2m"),
        ("SyncBridgeHighMemoryUsage", "warning", None),
        ("SyncBridgeHighCpuUsage", "warning", None),
        ("SyncBridgeWebSocketErrors", "critical", None),
        ("SyncBridgeRedisDown", "critical", None),
        ("SyncBridgePostgresqlDown", "critical", None),
        ("SyncBridgeRabbitmqDown", "critical", None),
        ("SyncBridgeDiskSpaceLow", "warning", None),
        ("SyncBridgeDiskSpaceCritical", "critical", None),
        ("SyncBridgeNodeNotReady", "critical", None),
        ("SyncBridgePodEvicted", "warning", None),
    ],
)
def test_report_severities_and_durations(
    rule: rules.Doc, name: str, severity: str, duration: str | None
) -> None:
    """As the deployment report has them (None: the report names no duration)."""
    entry = rules.alerts(rule)[name]
    assert entry["labels"]["severity"] == severity
    if duration is not None:
        assert entry["for"] == duration


def test_every_alert_keeps_the_contract(rule: rules.Doc) -> None:
    assert rules.contract_problems(rule) == []


def test_the_contract_check_catches_each_breach(rule: rules.Doc) -> None:
    broken = copy.deepcopy(rule)
    entries = [e for e in rules.rule_entries(broken) if "alert" in e]
    entries[0]["alert"] = "syncbridge_high_errors"
    del entries[1]["labels"]["severity"]
    entries[2]["annotations"]["description"] = ""
    entries[3]["annotations"]["runbook_url"] = entries[3]["annotations"]["runbook_url"] + "-gone"
    entries[4]["annotations"]["runbook_url"] = "https://example.invalid/runbook"
    problems = "\n".join(rules.contract_problems(broken))
    assert "syncbridge_high_errors: not CamelCase" in problems
    assert f"{entries[1]['alert']}: severity None" in problems
    assert f"{entries[2]['alert']}: no description" in problems
    assert f"{entries[3]['alert']}: docs/runbooks/alerts.md has no section" in problems
    assert f"{entries[4]['alert']}: runbook_url" in problems


def test_anchors_follow_the_forge_slugs() -> None:
    assert rules.anchors(
        "# Alert runbook\n## SyncBridgeRedisDown\n### Service level objectives"
    ) == {
        "alert-runbook",
        "syncbridgeredisdown",
        "service-level-objectives",
    }


# --- promtool ------------------------------------------------------------------


def test_promtool_check_rules(rule: rules.Doc, tmp_path: Path) -> None:
    checked = promtool("check", "rules", str(rules.write_rules_file(rule, tmp_path / "r.yaml")))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules.rule_entries(rule))} rules found" in checked.stdout


def test_promtool_check_rejects_a_broken_expression(rule: rules.Doc, tmp_path: Path) -> None:
    broken = copy.deepcopy(rule)
    rules.rule_entries(broken)[0]["expr"] = "sum by (namespace) (rate(x[5m])"
    checked = promtool("check", "rules", str(rules.write_rules_file(broken, tmp_path / "r.yaml")))
    assert checked.returncode != 0


def test_every_alert_has_a_firing_and_a_silent_case(rule: rules.Doc, tests: rules.Doc) -> None:
    assert rules.coverage_problems(tests, rules.alerts(rule)) == []


def test_coverage_check_catches_a_missing_case(rule: rules.Doc, tests: rules.Doc) -> None:
    thinned = copy.deepcopy(tests)
    for group in thinned["tests"]:
        group["alert_rule_test"] = [
            case
            for case in group.get("alert_rule_test", [])
            if not (case["alertname"] == "SyncBridgeRedisDown" and not case["exp_alerts"])
            and not (case["alertname"] == "SyncBridgeOutboxLag" and case["exp_alerts"])
        ]
    assert rules.coverage_problems(thinned, rules.alerts(rule)) == [
        "SyncBridgeOutboxLag: no promtool case where it fires",
        "SyncBridgeRedisDown: no promtool case where it must not fire (exp_alerts: [])",
    ]


def test_promtool_unit_tests_pass(rule: rules.Doc, tests: rules.Doc, tmp_path: Path) -> None:
    result = unit_test(rule, tests, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _mutated(rule: rules.Doc, expr: str, keep_for: bool) -> rules.Doc:
    out = copy.deepcopy(rule)
    for entry in rules.rule_entries(out):
        if "alert" in entry:
            entry["expr"] = expr
            if not keep_for:
                entry.pop("for", None)
    return out


def test_every_firing_case_fails_when_its_alert_never_fires(
    rule: rules.Doc, tests: rules.Doc, tmp_path: Path
) -> None:
    result = unit_test(_mutated(rule, "vector(1) > 2", keep_for=True), tests, tmp_path)
    assert result.returncode != 0
    caught = {
        name
        for name, expected_none in failed_cases(result.stdout + result.stderr)
        if not expected_none
    }
    assert caught == set(rules.alerts(rule)), (result.stdout + result.stderr)[-3000:]


def test_every_silent_case_fails_when_its_alert_always_fires(
    rule: rules.Doc, tests: rules.Doc, tmp_path: Path
) -> None:
    result = unit_test(_mutated(rule, "vector(1)", keep_for=False), tests, tmp_path)
    assert result.returncode != 0
    caught = {
        name for name, expected_none in failed_cases(result.stdout + result.stderr) if expected_none
    }
    assert caught == set(rules.alerts(rule)), (result.stdout + result.stderr)[-3000:]
