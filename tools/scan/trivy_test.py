"""Trivy's command lines and report parsing, without running Trivy (scan_test runs it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.scan import trivy

T, P, C = Path("/t/trivy"), Path("/x"), Path("/cache")
IGNORE = Path("/ignore.yaml")
OFFLINE = [
    trivy.secret_fs_argv(T, P, C, IGNORE),
    trivy.secret_image_argv(T, P, C, IGNORE),
    trivy.config_argv(T, P, C, IGNORE),
    trivy.sbom_argv(T, P, C, "cyclonedx", Path("/out.json")),
]


@pytest.mark.parametrize("argv", OFFLINE, ids=lambda a: a[1] + "-" + a[-2])
def test_offline_scans_fetch_nothing(argv: list[str]) -> None:
    assert {"--skip-version-check", "--disable-telemetry"} <= set(argv)
    assert "--skip-db-update" in argv or "--skip-check-update" in argv
    assert argv[argv.index("--cache-dir") + 1] == "/cache"


def test_the_vulnerability_scan_asks_for_its_database() -> None:
    argv = trivy.vuln_image_argv(T, P, C, "registry.invalid/db")
    assert "--skip-db-update" not in argv
    assert argv[argv.index("--db-repository") + 1] == "registry.invalid/db"
    assert "--db-repository" not in trivy.vuln_image_argv(T, P, C, None)


def test_the_ignore_file_is_passed_only_when_given() -> None:
    assert "--ignorefile" in trivy.config_argv(T, P, C, IGNORE)
    assert "--ignorefile" not in trivy.config_argv(T, P, C, None)


REPORT = {
    "Results": [
        {
            "Target": "deploy/settings.env",
            "Class": "secret",
            "Secrets": [
                {
                    "RuleID": "github-pat",
                    "Severity": "CRITICAL",
                    "Title": "GitHub PAT",
                    "StartLine": 3,
                }
            ],
        },
        {
            "Target": "apps/x/Deployment-x-y.yaml",
            "Class": "config",
            "Misconfigurations": [
                {
                    "ID": "KSV-0017",
                    "Severity": "HIGH",
                    "Title": "Privileged",
                    "Status": "FAIL",
                    "CauseMetadata": {"Resource": "Deployment/y"},
                },
                {"ID": "KSV-0001", "Severity": "MEDIUM", "Title": "ok", "Status": "PASS"},
                {"ID": "KSV-0011", "Severity": "LOW", "Title": "CPU", "Status": "FAIL"},
            ],
        },
    ]
}


def test_findings_are_secrets_and_failed_checks() -> None:
    found = trivy.findings(REPORT)
    assert [(f.scanner, f.rule, f.severity) for f in found] == [
        ("secret", "github-pat", "CRITICAL"),
        ("misconfig", "KSV-0017", "HIGH"),
        ("misconfig", "KSV-0011", "LOW"),
    ]
    assert str(found[0]) == "CRITICAL secret: deploy/settings.env (line 3): github-pat: GitHub PAT"
    assert trivy.counted(REPORT) == 2 and trivy.counted({}) == 0


def test_severity_filters_from_a_level_up() -> None:
    found = trivy.findings(REPORT)
    assert [f.rule for f in trivy.severe(found, "HIGH")] == ["github-pat", "KSV-0017"]
    assert len(trivy.severe(found, "LOW")) == 3
    with pytest.raises(ValueError, match="severity 'SEVERE'"):
        trivy.at_least("SEVERE")
