"""Each dashboard the report names exists, is well-formed for Grafana's sidecar,
and every panel queries Prometheus through the datasource variable."""

from __future__ import annotations

from monitoring import dashboards


def test_the_reports_dashboards_exist() -> None:
    assert set(dashboards.load_all()) == {
        "syncbridge-service",
        "syncbridge-infrastructure",
        "syncbridge-redis",
        "syncbridge-postgresql",
        "syncbridge-rabbitmq",
    }


def test_service_dashboard_covers_what_the_issue_lists() -> None:
    titles = " | ".join(p["title"] for p in dashboards.load_all()["syncbridge-service"]["panels"])
    for topic in (
        "latency",
        "Errors",
        "Throughput",
        "connections",
        "sessions",
        "Fan-out",
        "Resume",
    ):
        assert topic in titles, topic


def test_every_panel_is_wired() -> None:
    for stem, board in dashboards.load_all().items():
        assert board["uid"] == stem
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), stem
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["expr"].strip(), panel["title"]
