"""Trivy's command lines and reports for the scans that need no downloaded database.

Pure: argv lists in, findings out; scan.py runs them. Every command keeps
Trivy from reaching out on its own (no version check, no telemetry, no DB or
check-bundle update), so a scan here is the same offline or on a forge.
Secret rules and the misconfiguration checks are compiled into the binary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")

# Flags every command gets: nothing is fetched behind our back.
_QUIET = ["--quiet", "--skip-version-check", "--disable-telemetry"]


@dataclass(frozen=True)
class Finding:
    scanner: str  # secret | misconfig
    target: str  # the file Trivy names (relative to what was scanned)
    rule: str  # Trivy's rule id, e.g. aws-access-key-id, KSV-0017
    severity: str
    title: str
    where: str = ""  # line, or the object a check is about

    def __str__(self) -> str:
        at = f" ({self.where})" if self.where else ""
        return f"{self.severity:<8} {self.scanner}: {self.target}{at}: {self.rule}: {self.title}"


def common(cache: Path, ignorefile: Path | None) -> list[str]:
    args = [*_QUIET, "--cache-dir", str(cache), "--format", "json"]
    if ignorefile is not None:
        args += ["--ignorefile", str(ignorefile)]
    return args


def secret_fs_argv(trivy: Path, path: Path, cache: Path, ignorefile: Path | None) -> list[str]:
    """Secrets in a directory tree (the repository, an unpacked filesystem)."""
    return [
        str(trivy),
        "filesystem",
        *common(cache, ignorefile),
        "--scanners",
        "secret",
        "--skip-db-update",
        "--skip-java-db-update",
        str(path),
    ]


def secret_image_argv(trivy: Path, layout: Path, cache: Path, ignorefile: Path | None) -> list[str]:
    """Secrets in every layer of an image, read from its OCI layout directory."""
    return [
        str(trivy),
        "image",
        *common(cache, ignorefile),
        "--scanners",
        "secret",
        "--skip-db-update",
        "--skip-java-db-update",
        "--input",
        str(layout),
    ]


def config_argv(trivy: Path, path: Path, cache: Path, ignorefile: Path | None) -> list[str]:
    """Misconfigurations of the manifests under `path`, by the checks Trivy embeds."""
    return [
        str(trivy),
        "config",
        *common(cache, ignorefile),
        "--skip-check-update",
        "--misconfig-scanners",
        "kubernetes",
        str(path),
    ]


def sbom_argv(trivy: Path, layout: Path, cache: Path, fmt: str, output: Path) -> list[str]:
    """An SBOM (cyclonedx, spdx-json) of an image's packages: OS and Python."""
    return [
        str(trivy),
        "image",
        *_QUIET,
        "--cache-dir",
        str(cache),
        "--format",
        fmt,
        "--output",
        str(output),
        "--skip-db-update",
        "--skip-java-db-update",
        "--input",
        str(layout),
    ]


def vuln_image_argv(trivy: Path, layout: Path, cache: Path, db_repository: str | None) -> list[str]:
    """Known vulnerabilities of an image's packages: needs Trivy's database.

    The database is an OCI artifact Trivy pulls from a container registry (or
    `db_repository`); where none is reachable this fails, it never passes.
    """
    argv = [str(trivy), "image", *_QUIET, "--cache-dir", str(cache), "--format", "json"]
    argv += ["--scanners", "vuln", "--exit-code", "1", "--severity", "HIGH,CRITICAL"]
    argv += ["--ignore-unfixed", "--input", str(layout)]
    if db_repository:
        argv += ["--db-repository", db_repository]
    return argv


def at_least(severity: str) -> tuple[str, ...]:
    """The severities from `severity` up, for filtering findings."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r}: want one of {', '.join(SEVERITIES)}")
    return SEVERITIES[SEVERITIES.index(severity) :]


def findings(report: Mapping[str, Any]) -> list[Finding]:
    """Secrets and failed misconfiguration checks of one Trivy JSON report."""
    found = []
    for result in report.get("Results") or []:
        target = str(result.get("Target", ""))
        for secret in result.get("Secrets") or []:
            found.append(
                Finding(
                    "secret",
                    target,
                    str(secret.get("RuleID", "")),
                    str(secret.get("Severity", "UNKNOWN")),
                    str(secret.get("Title", "")),
                    f"line {secret.get('StartLine')}",
                )
            )
        for check in result.get("Misconfigurations") or []:
            if check.get("Status") != "FAIL":
                continue
            found.append(
                Finding(
                    "misconfig",
                    target,
                    str(check.get("ID", "")),
                    str(check.get("Severity", "UNKNOWN")),
                    str(check.get("Title", "")),
                    str(check.get("CauseMetadata", {}).get("Resource", "") or ""),
                )
            )
    return found


def counted(report: Mapping[str, Any]) -> int:
    """How many files or manifests Trivy reported on (a scan of nothing is no pass)."""
    return len(report.get("Results") or [])


def severe(found: Sequence[Finding], severity: str) -> list[Finding]:
    wanted = at_least(severity)
    return [f for f in found if f.severity in wanted]
