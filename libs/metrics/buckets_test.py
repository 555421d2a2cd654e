"""The shared buckets span 0.5 ms to 10 s and include the alert threshold."""

from libs.metrics.buckets import LATENCY_BUCKETS


def test_span_and_order() -> None:
    assert LATENCY_BUCKETS[0] == 0.0005
    assert LATENCY_BUCKETS[-1] == 10.0
    assert list(LATENCY_BUCKETS) == sorted(set(LATENCY_BUCKETS))


def test_p95_alert_threshold_is_a_boundary() -> None:
    assert 0.5 in LATENCY_BUCKETS
