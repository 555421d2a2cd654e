"""The Grafana dashboards of gitops/components/alerts/dashboards, panel by panel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from monitoring.rules import REPO

DASHBOARDS = REPO / "gitops/components/alerts/dashboards"


def load_all() -> dict[str, dict[str, Any]]:
    """File stem -> dashboard model."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panel_queries() -> Iterator[tuple[str, str, str]]:
    """(dashboard title, panel title, PromQL) of every target of every panel."""
    for board in load_all().values():
        for panel in board["panels"]:
            for target in panel["targets"]:
                yield board["title"], panel["title"], target["expr"]
