"""Is the source environment healthy, running the digests about to be promoted?

Two sources, and the verdict says which one decided:

- **Argo CD**, when `--argocd URL` (that environment's Argo CD: one per
  cluster) is given and answers: for each service the Application named
  after it, `ws-edge` / `session-core` (GET /api/v1/applications/<name>, bearer
  token from $ARGOCD_AUTH_TOKEN when set) must be Synced and Healthy, and its
  `status.summary.images` must list `<image>@<digest>`.
- **The status file** `gitops/status/<env>.json`, written and committed by
  `promote record-status` after the smoke test (what CI does), used when no
  Argo CD URL is given or it cannot be reached:

      {"environment": "staging", "smoke": "passed",
       "checked_at": "2026-12-02T18:00:00Z", "commit": "<sha>",
       "images": {"registry.harmonyflow.io/syncbridge/ws-edge": "sha256:…"},
       "details": "<CI run URL or note>"}

  Healthy means `smoke` is "passed" and `images` names exactly the digests
  being promoted: a smoke test of an older digest vouches for nothing newer.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

STATUS_DIR = "gitops/status"
SMOKE_PASSED = "passed"
TOKEN_ENV = "ARGOCD_AUTH_TOKEN"  # noqa: S105 - the variable's name, not a token


@dataclass
class Verdict:
    """Healthy or not, which source said so, and every reason it is not."""

    source: str
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.reasons


def status_path(env: str) -> str:
    return f"{STATUS_DIR}/{env}.json"


def status_record(
    env: str, smoke: str, images: Mapping[str, str], commit: str, details: str, now: datetime
) -> str:
    """The status file's text for `env` (stable key order, one trailing newline)."""
    record = {
        "environment": env,
        "smoke": smoke,
        "checked_at": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit,
        "images": dict(sorted(images.items())),
        "details": details,
    }
    return json.dumps(record, indent=2) + "\n"


def from_status_file(
    env: str,
    text: str | None,
    want: Mapping[str, str],
    max_age: timedelta | None = None,
    now: datetime | None = None,
) -> Verdict:
    """Verdict of the status file's `text` (None: there is none) for images `want`."""
    verdict = Verdict(source=f"status file {status_path(env)}")
    if text is None:
        verdict.reasons.append(
            f"no status file for {env}: run the smoke test (tools/smoke) and "
            f"`promote record-status --env {env}` first"
        )
        return verdict
    try:
        record: Any = json.loads(text)
    except json.JSONDecodeError as err:
        verdict.reasons.append(f"status file is not JSON: {err}")
        return verdict
    if not isinstance(record, dict):
        verdict.reasons.append("status file must hold a JSON object")
        return verdict
    if record.get("environment") != env:
        verdict.reasons.append(f"status file is for {record.get('environment')!r}, not {env!r}")
    if record.get("smoke") != SMOKE_PASSED:
        details = record.get("details") or "no details"
        verdict.reasons.append(
            f"last smoke test in {env} did not pass (smoke={record.get('smoke')!r}: {details})"
        )
    images = record.get("images")
    images = images if isinstance(images, dict) else {}
    for image, digest in sorted(want.items()):
        seen = images.get(image)
        if seen != digest:
            verdict.reasons.append(
                f"{image}: smoke test covered {seen or 'nothing'}, not {digest} "
                f"(the digest {env} now pins)"
            )
    if max_age is not None:
        checked = _parse_time(record.get("checked_at"))
        current = now or datetime.now(UTC)
        if checked is None:
            verdict.reasons.append("status file has no valid checked_at")
        elif current - checked > max_age:
            verdict.reasons.append(f"status is from {record['checked_at']}, older than {max_age}")
    return verdict


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC)


class Unreachable(Exception):
    """Argo CD did not answer at all (connection refused, DNS, timeout)."""


def _get_json(url: str, token: str | None, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.load(response)
    except urllib.error.HTTPError:
        raise  # it answered: a refusal, not an outage
    except (urllib.error.URLError, OSError) as err:
        raise Unreachable(str(getattr(err, "reason", err))) from err


def from_argocd(
    base_url: str,
    env: str,
    want: Mapping[str, tuple[str, str]],
    app_pattern: str = "{service}",
    timeout: float = 10.0,
) -> Verdict:
    """Verdict of Argo CD's Applications; `want` maps service -> (image, digest).

    Raises Unreachable when the server does not answer, so the caller can
    fall back to the status file and say so.
    """
    verdict = Verdict(source=f"Argo CD {base_url}")
    token = os.environ.get(TOKEN_ENV) or None
    for service, (image, digest) in sorted(want.items()):
        app = app_pattern.format(service=service, env=env)
        url = f"{base_url.rstrip('/')}/api/v1/applications/{app}"
        try:
            body = _get_json(url, token, timeout)
        except urllib.error.HTTPError as err:
            verdict.reasons.append(f"Application {app}: Argo CD answered HTTP {err.code}")
            continue
        status = body.get("status", {}) if isinstance(body, dict) else {}
        sync = status.get("sync", {}).get("status")
        health = status.get("health", {}).get("status")
        if sync != "Synced":
            verdict.reasons.append(f"Application {app} is {sync or 'unknown'}, not Synced")
        if health != "Healthy":
            verdict.reasons.append(f"Application {app} is {health or 'unknown'}, not Healthy")
        running = status.get("summary", {}).get("images", []) or []
        if f"{image}@{digest}" not in running:
            verdict.reasons.append(f"Application {app} does not run {image}@{digest}")
    return verdict
