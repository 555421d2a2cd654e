"""The fake nodes kwok runs pods on: enough zones and hosts for the manifests' spread.

Three zones (every Deployment spreads over topology.kubernetes.io/zone with
maxSkew 1, DoNotSchedule) and two nodes in each, so three replicas land one per
zone and a PodDisruptionBudget of minAvailable 2 leaves room to drain one.
"""

from __future__ import annotations

import json
from typing import Any

ZONES = ("zone-a", "zone-b", "zone-c")
PER_ZONE = 2


def node(zone: str, index: int) -> dict[str, Any]:
    name = f"kwok-{zone}-{index}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            # Only nodes with this annotation are kwok's (--manage-nodes-with-annotation-selector).
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": "local",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
            "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"},
        },
    }


def manifest(zones: tuple[str, ...] = ZONES, per_zone: int = PER_ZONE) -> str:
    """Every node as one kubectl-applicable List (JSON)."""
    items = [node(zone, i) for zone in zones for i in range(per_zone)]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
