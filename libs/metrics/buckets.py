"""Histogram buckets shared by every latency metric, so dashboards can compare them."""

# Seconds, 0.5 ms to 10 s: an in-memory RPC or a WebSocket message lands in
# the low buckets, a PostgreSQL commit in the middle, a timeout at the top.
# The seed's alert threshold (P95 > 500 ms) falls on a bucket boundary.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
