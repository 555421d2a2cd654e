"""render() and serve() expose what the registry holds, in the text format."""

import http.client

import pytest
from prometheus_client import Counter

from libs.metrics.exposition import render, serve
from libs.metrics.registry import new_registry


def test_render_gives_payload_and_content_type() -> None:
    registry = new_registry(runtime=False)
    Counter("syncbridge_edge_upgrades", "Upgrades.", ["result"], registry=registry).labels(
        result="ok"
    ).inc(3)
    payload, content_type = render(registry)
    assert content_type.startswith("text/plain; version=")
    assert b'syncbridge_edge_upgrades_total{result="ok"} 3.0\n' in payload
    assert b"# TYPE syncbridge_edge_upgrades_total counter\n" in payload


def _get(port: int, path: str) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def test_serve_scrapes_and_stops() -> None:
    registry = new_registry()
    Counter("syncbridge_core_outbox_published", "Published.", registry=registry).inc()
    with serve(registry, "127.0.0.1", 0) as server:
        status, content_type, body = _get(server.port, "/metrics")
        port = server.port
    assert status == 200
    assert content_type.startswith("text/plain")
    assert b"\nsyncbridge_core_outbox_published_total 1.0\n" in body
    assert b"\nprocess_cpu_seconds_total " in body
    with pytest.raises(ConnectionError):
        _get(port, "/metrics")
