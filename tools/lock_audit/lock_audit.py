"""Audit requirements_lock.txt against the package index's advisory records.

    bazel run //tools/lock_audit -- [--strict] [--lock FILE] [--api URL]

Exit codes (stable): 0 no known vulnerability; 1 a pin is vulnerable; 2 usage
or an unreadable lock; 3 (--strict only) a pin could not be audited; 4 the
index gave no answer for a pin. See README.md for what it cannot see.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tools.lock_audit.audit import Answer, Finding, Outcome, Pin, judge, parse_lock

OK, VULNERABLE, USAGE, UNAUDITED, NO_ANSWER = 0, 1, 2, 3, 4
PYTHON = "/usr/bin/python3.11"  # Debian's, with the pip the lock is resolved by
TIMEOUT = 30.0
DESCRIPTION = "Audit a requirements lock against the package index's advisory records."


def default_api() -> str:
    """The JSON API of the index pip installs from, as pip itself names it.

    Asked of Debian's pip (what `bazel run //:requirements.update` resolves
    with) rather than written here: the audit reads the index the lock came from.
    """
    code = "from pip._internal.models.index import PyPI; print(PyPI.pypi_url)"
    result = subprocess.run(
        [PYTHON, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise SystemExit(f"lock_audit: cannot ask pip for its index: {result.stderr.strip()}")
    return result.stdout.strip()


def fetch(url: str) -> Answer:
    # main() admits only http(s) API roots, so no file: or custom scheme gets here.
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            return Answer(response.status, json.load(response))
    except urllib.error.HTTPError as error:
        return Answer(error.code, error=f"HTTP {error.code}")
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as error:
        return Answer(None, error=str(getattr(error, "reason", error)))


def audit_pin(api: str, pin: Pin) -> Finding:
    release = fetch(f"{api}/{pin.name}/{pin.version}/json")
    if release.status == 200:
        return judge(pin, release, None)
    return judge(pin, release, fetch(f"{api}/{pin.name}/json"))


def report(findings: Sequence[Finding], strict: bool) -> tuple[str, int]:
    """The printed report and the exit code."""
    lines = []
    for finding in findings:
        pin = f"{finding.pin.name}=={finding.pin.version}"
        if finding.outcome is Outcome.VULNERABLE:
            for adv in finding.advisories:
                also = f" ({', '.join(adv.aliases)})" if adv.aliases else ""
                fix = ", ".join(adv.fixed_in) or "no fixed release"
                lines.append(f"VULNERABLE  {pin}  {adv.id}{also}  fix: {fix}  {adv.summary}")
        elif finding.outcome is not Outcome.CLEAN:
            lines.append(f"{finding.outcome.value.upper():<11} {pin}  {finding.source}")
    count = {o: sum(f.outcome is o for f in findings) for o in Outcome}
    sources: dict[str, int] = {}
    for finding in findings:
        if finding.outcome in (Outcome.CLEAN, Outcome.VULNERABLE):
            sources[finding.source] = sources.get(finding.source, 0) + 1
    audited = count[Outcome.CLEAN] + count[Outcome.VULNERABLE]
    by = ", ".join(f"{n} from {s}" for s, n in sorted(sources.items()))
    lines.append(
        f"{len(findings)} pins: {audited} audited ({by or 'none'}), "
        f"{count[Outcome.VULNERABLE]} vulnerable, {count[Outcome.UNAUDITED]} not audited, "
        f"{count[Outcome.ERROR]} without an answer"
    )
    if count[Outcome.ERROR]:
        return "\n".join(lines), NO_ANSWER
    if count[Outcome.VULNERABLE]:
        return "\n".join(lines), VULNERABLE
    if strict and count[Outcome.UNAUDITED]:
        return "\n".join(lines), UNAUDITED
    return "\n".join(lines), OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lock_audit", description=DESCRIPTION)
    parser.add_argument("--lock", help="default: the workspace's requirements_lock.txt")
    parser.add_argument("--api", help="the index's JSON API root (default: pip's own)")
    parser.add_argument("--strict", action="store_true", help="a pin not audited fails (exit 3)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return USAGE if stop.code else OK
    if args.lock is None:
        lock = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", ".")) / "requirements_lock.txt"
    else:
        lock = Path(os.environ.get("BUILD_WORKING_DIRECTORY", ".")) / args.lock
    try:
        pins = parse_lock(lock.read_text())
    except (OSError, ValueError) as error:
        print(f"lock_audit: {lock}: {error}", file=sys.stderr)
        return USAGE
    api = (args.api or default_api()).rstrip("/")
    if not api.startswith(("https://", "http://")):
        print(f"lock_audit: --api {api}: want an http(s) URL", file=sys.stderr)
        return USAGE
    print(f"lock_audit: {len(pins)} pins of {lock.name} against {api}")
    with ThreadPoolExecutor(max_workers=8) as pool:
        findings = list(pool.map(lambda pin: audit_pin(api, pin), pins))
    text, code = report(findings, args.strict)
    print(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
