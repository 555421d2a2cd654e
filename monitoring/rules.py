"""The committed PrometheusRule as promtool and Prometheus read it, and checks on it.

The rule YAML under gitops/components/alerts is the one source of truth: every
test here derives what it needs (a promtool rules file, a time-compressed copy
for a live Prometheus, the list of alerts) from it, never from a second copy.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).parent.parent
RULE_PATH = REPO / "gitops/components/alerts/prometheusrule.yaml"
RUNBOOK_PREFIX = "https://git.harmonyflow.io/harmonyflow/syncbridge/src/branch/main/"
ALERT_PREFIX = "SyncBridge"
SEVERITIES = frozenset({"critical", "warning"})
STATIC_ANNOTATIONS = ("summary", "runbook_url")

Doc = dict[str, Any]


def load(path: Path = RULE_PATH) -> Doc:
    """The PrometheusRule object."""
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict) or document.get("kind") != "PrometheusRule":
        raise ValueError(f"{path}: not a PrometheusRule")
    return document


def rule_entries(rule: Doc) -> list[Doc]:
    """Every rule (recording and alerting) of every group."""
    return [entry for group in rule["spec"]["groups"] for entry in group["rules"]]


def alerts(rule: Doc) -> dict[str, Doc]:
    """Alerting rules by name (names are unique; a duplicate is an error)."""
    found: dict[str, Doc] = {}
    for entry in rule_entries(rule):
        if "alert" in entry:
            if entry["alert"] in found:
                raise ValueError(f"alert {entry['alert']} is defined twice")
            found[entry["alert"]] = entry
    return found


def write_rules_file(rule: Doc, path: Path) -> Path:
    """Writes the rule's .spec (Prometheus' own rules-file format) to `path`."""
    path.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    return path


# --- the alert contract ------------------------------------------------------


def anchors(markdown: str) -> set[str]:
    """Anchors of a Markdown file's headings, as the Git forge renders them."""
    found = set()
    for line in markdown.splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            found.add(slug)
    return found


def contract_problems(rule: Doc, repo: Path = REPO) -> list[str]:
    """What an alert lacks of the house contract (name, severity, annotations,
    a runbook_url to an existing anchor); empty when every alert has it."""
    problems = []
    for name, entry in alerts(rule).items():
        if not re.fullmatch(rf"{ALERT_PREFIX}(?:[A-Z][a-z0-9]+)+", name):
            problems.append(f"{name}: not CamelCase with the {ALERT_PREFIX} prefix")
        severity = entry.get("labels", {}).get("severity")
        if severity not in SEVERITIES:
            problems.append(f"{name}: severity {severity!r} is not one of {sorted(SEVERITIES)}")
        annotations = entry.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not annotations.get(key):
                problems.append(f"{name}: no {key} annotation")
        url = annotations.get("runbook_url", "")
        if url:
            problems.extend(_runbook_problems(name, url, repo))
    return problems


def _runbook_problems(name: str, url: str, repo: Path) -> list[str]:
    if not url.startswith(RUNBOOK_PREFIX) or "#" not in url:
        return [f"{name}: runbook_url {url!r} is not {RUNBOOK_PREFIX}<file>#<anchor>"]
    relative, _, anchor = url[len(RUNBOOK_PREFIX) :].partition("#")
    if not relative.startswith("docs/runbooks/"):
        return [f"{name}: runbook_url points outside docs/runbooks/: {relative}"]
    page = repo / relative
    if not page.is_file():
        return [f"{name}: runbook {relative} does not exist"]
    if anchor not in anchors(page.read_text()):
        return [f"{name}: {relative} has no section #{anchor}"]
    return []


# --- promtool unit tests ----------------------------------------------------


def coverage_problems(tests: Doc, names: Iterable[str]) -> list[str]:
    """Alerts without a case that fires, or without an explicit case that must not."""
    firing: set[str] = set()
    silent: set[str] = set()
    for group in tests.get("tests", []):
        for case in group.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    problems = []
    for name in sorted(names):
        if name not in firing:
            problems.append(f"{name}: no promtool case where it fires")
        if name not in silent:
            problems.append(f"{name}: no promtool case where it must not fire (exp_alerts: [])")
    unknown = (firing | silent) - set(names)
    problems.extend(f"{name}: tested but not defined" for name in sorted(unknown))
    return problems


def with_static_annotations(tests: Doc, rule: Doc) -> Doc:
    """The tests with each expected alert's summary and runbook_url taken from
    its rule (they never vary); each case must state the rendered description."""
    by_name = alerts(rule)
    out = copy.deepcopy(tests)
    for group in out.get("tests", []):
        for case in group.get("alert_rule_test", []):
            entry = by_name.get(case["alertname"])
            for expected in case.get("exp_alerts") or []:
                annotations = expected.setdefault("exp_annotations", {})
                if "description" not in annotations:
                    raise ValueError(
                        f"{case['alertname']}: an expected alert states no description"
                    )
                if entry is not None:
                    for key in STATIC_ANNOTATIONS:
                        annotations.setdefault(key, entry["annotations"][key])
    return out
