from __future__ import annotations

import json
from collections import Counter

from tools.cluster import nodes


def test_three_zones_two_nodes_each_all_kwoks() -> None:
    items = json.loads(nodes.manifest())["items"]
    zones = Counter(n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in items)
    assert zones == {"zone-a": 2, "zone-b": 2, "zone-c": 2}
    assert all(n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake" for n in items)
    names = [n["metadata"]["name"] for n in items]
    assert len(set(names)) == len(names)
    assert all(
        n["metadata"]["labels"]["kubernetes.io/hostname"] == n["metadata"]["name"] for n in items
    )
