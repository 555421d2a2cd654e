"""The audit's decisions on canned index records (the I/O is lock_audit_test's)."""

from __future__ import annotations

from typing import Any

import pytest

from tools.lock_audit.audit import Answer, Outcome, Pin, advisories, judge, parse_lock

PIN = Pin("pycrypto", "2.6.1")
VULNS: list[dict[str, Any]] = [
    {"id": "PYSEC-1", "aliases": ["CVE-1", "GHSA-1"], "fixed_in": ["2.7"], "summary": "bad\nmore"},
    {"id": "GHSA-1", "aliases": ["CVE-1", "PYSEC-1"], "fixed_in": ["2.7"]},
    {"id": "PYSEC-2", "aliases": [], "details": "worse", "withdrawn": None},
    {"id": "PYSEC-3", "aliases": [], "withdrawn": "2024-01-01T00:00:00Z"},
]


def project(latest: str, vulns: list[dict[str, Any]], *versions: str) -> Answer:
    releases: dict[str, list[Any]] = {v: [] for v in (latest, *versions)}
    return Answer(
        200, {"info": {"version": latest}, "releases": releases, "vulnerabilities": vulns}
    )


def test_the_lock_parses_pins_with_extras_hashes_and_markers() -> None:
    text = (
        "# c\npyjwt[crypto]==2.15.1 \\\n    --hash=sha256:ab\nPy_YAML==6.0 ; python_version<'4'\n"
    )
    assert parse_lock(text) == [Pin("pyjwt", "2.15.1"), Pin("py-yaml", "6.0")]


@pytest.mark.parametrize(("text", "error"), [("sanic>=1\n", "line 1"), ("# only\n", "no `name")])
def test_a_lock_without_exact_pins_is_refused(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_lock(text)


def test_aliases_count_once_and_withdrawn_advisories_not_at_all() -> None:
    found = advisories(VULNS)
    assert [a.id for a in found] == ["PYSEC-1", "PYSEC-2"]
    assert found[0].summary == "bad" and found[0].fixed_in == ("2.7",)
    assert found[1].summary == "worse"


def test_the_releases_own_record_decides_when_served() -> None:
    finding = judge(PIN, Answer(200, {"vulnerabilities": VULNS[:1]}), None)
    assert finding.outcome is Outcome.VULNERABLE and finding.source == "the release's record"
    assert judge(PIN, Answer(200, {"vulnerabilities": []}), None).outcome is Outcome.CLEAN


def test_the_project_record_speaks_for_the_latest_release_only() -> None:
    withheld = Answer(404, error="HTTP 404")
    latest = judge(PIN, withheld, project("2.6.1", VULNS))
    assert latest.outcome is Outcome.VULNERABLE
    assert latest.source == "the project's record (the latest release)"
    assert judge(PIN, withheld, project("2.6.1", [])).outcome is Outcome.CLEAN
    older = judge(PIN, withheld, project("3.0", [], "2.6.1"))
    assert older.outcome is Outcome.UNAUDITED
    assert "only for its latest release, 3.0" in older.source


def test_no_answer_or_no_such_release_is_an_error() -> None:
    gone = Answer(None, error="Name or service not known")
    assert judge(PIN, gone, gone).outcome is Outcome.ERROR
    assert "Name or service not known" in judge(PIN, gone, gone).source
    missing = judge(PIN, Answer(404), project("3.0", []))
    assert (missing.outcome, missing.source) == (Outcome.ERROR, "the index has no release 2.6.1")
