"""Reading and nudging Argo CD through the API server (no argocd-server runs here):
Applications are objects in `argocd`; a sync, a refresh or a status is a field of one."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tools.cluster.kube import Kube

NAMESPACE = "argocd"
APPLICATIONS = "applications.argoproj.io"


@dataclass(frozen=True)
class AppState:
    name: str
    sync: str  # Synced | OutOfSync | Unknown | "" (not reconciled yet)
    health: str
    revision: str
    conditions: tuple[str, ...]  # "<type>: <message>"
    operation: str  # the last operation's phase and message, "" when none ran

    @property
    def ready(self) -> bool:
        return self.sync == "Synced" and self.health == "Healthy"

    def __str__(self) -> str:
        extra = "; ".join(self.conditions)
        return f"{self.name} {self.sync or '?'}/{self.health or '?'} {self.operation} {extra}"


def state_of(app: dict[str, Any]) -> AppState:
    status = app.get("status", {})
    operation = status.get("operationState", {})
    return AppState(
        name=app["metadata"]["name"],
        sync=status.get("sync", {}).get("status", ""),
        health=status.get("health", {}).get("status", ""),
        revision=status.get("sync", {}).get("revision", ""),
        conditions=tuple(
            f"{c.get('type')}: {c.get('message', '')}" for c in status.get("conditions", [])
        ),
        operation=(
            f"[{operation.get('phase')}: {operation.get('message', '')}]" if operation else ""
        ),
    )


def applications(kube: Kube) -> dict[str, AppState]:
    items = kube.json("get", APPLICATIONS, "-n", NAMESPACE)["items"]
    return {a["metadata"]["name"]: state_of(a) for a in items}


def application(kube: Kube, name: str) -> dict[str, Any]:
    found: dict[str, Any] = kube.get(APPLICATIONS, name, NAMESPACE)
    return found


def refresh(kube: Kube, *names: str) -> None:
    """What `argocd app get --hard-refresh` does: the controller re-reads git at once."""
    for name in names:
        kube.run(
            "annotate", APPLICATIONS, name, "-n", NAMESPACE,
            "argocd.argoproj.io/refresh=hard", "--overwrite",
        )  # fmt: skip


def request_sync(kube: Kube, name: str, who: str) -> None:
    """What pressing Sync does (argocd-server writes `operation`; none runs here)."""
    operation = {
        "operation": {
            "initiatedBy": {"username": who},
            "sync": {"syncStrategy": {"hook": {}}},
        }
    }
    kube.run(
        "patch", APPLICATIONS, name, "-n", NAMESPACE, "--type=merge", "-p", json.dumps(operation)
    )


def resource_status(app: dict[str, Any], kind: str, name: str) -> str:
    """The per-object sync status Argo CD lists in the Application's status."""
    for res in app.get("status", {}).get("resources", []):
        if res.get("kind") == kind and res.get("name") == name:
            return str(res.get("status", ""))
    return ""


_CRON = re.compile(r"^(\d+) (\d+) \* \* (\d)-(\d)$")


def in_window(schedule: str, duration: str, now: datetime) -> bool:
    """Whether `now` (UTC) is inside an allow window of the one cron shape the tree
    uses ("M H * * D1-D2", days 0 = Sunday); anything else is refused, not guessed."""
    match = _CRON.match(schedule)
    hours = re.fullmatch(r"(\d+)h", duration)
    if match is None or hours is None:
        raise ValueError(f"unsupported sync window {schedule!r} {duration!r}")
    minute, hour, first, last = (int(g) for g in match.groups())
    for back in range(0, 8):  # a window may have opened on an earlier day
        day = now - timedelta(days=back)
        weekday = (day.weekday() + 1) % 7  # Python: Monday 0; cron: Sunday 0
        if not first <= weekday <= last:
            continue
        opened = day.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if opened <= now < opened + timedelta(hours=int(hours.group(1))):
            return True
    return False
