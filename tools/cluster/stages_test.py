from __future__ import annotations

from tools.cluster.cluster import STAGES, stages_for


def test_only_stages_of_served_kinds_are_kept() -> None:
    text = STAGES.read_text()
    everything = stages_for(text, None)
    assert everything.count("kind: Stage") == text.count("kind: Stage") >= 9
    some = stages_for(text, {("cert-manager.io", "Certificate")})
    assert "kind: Certificate" in some and "kind: ClusterIssuer" not in some
    assert "kind: Ingress" in some  # built in: always served
    assert some.count("kind: Stage") == 2
