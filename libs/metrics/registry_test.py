"""Registries are independent, and carry runtime metrics unless asked not to."""

from prometheus_client import Counter

from libs.metrics.exposition import render
from libs.metrics.registry import new_registry


def test_registries_are_independent() -> None:
    first, second = new_registry(runtime=False), new_registry(runtime=False)
    Counter("syncbridge_test_events", "Test events.", registry=first).inc()
    assert first.get_sample_value("syncbridge_test_events_total") == 1.0
    assert second.get_sample_value("syncbridge_test_events_total") is None


def test_runtime_metrics_are_exposed() -> None:
    text = render(new_registry())[0].decode()
    assert "\npython_info{" in text
    assert "\nprocess_resident_memory_bytes " in text
    assert "\npython_gc_objects_collected_total{" in text


def test_empty_without_runtime() -> None:
    assert render(new_registry(runtime=False))[0] == b""
