"""ws-edge's Prometheus metrics (names are what dashboards, alerts and the HPA read)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from libs.metrics.buckets import LATENCY_BUCKETS
from libs.metrics.rpc import RpcMetrics, rpc_metrics
from libs.protocol.codes import ErrorCode

# What a connection runs (task names of its OwnedTasks, and "encode" for its replies).
CONNECTION_TASKS = (
    "read",
    "writer",
    "token-expiry",
    "device-heartbeat",
    "presence-heartbeat",
    "backfill",
    "encode",
)


class EdgeMetrics:
    """Every metric of one edge process, registered in `registry`."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        open_connections: Callable[[], float],
        active_sessions: Callable[[], float],
    ) -> None:
        self.registry = registry
        self.open_connections = Gauge(
            "syncbridge_edge_open_connections",
            "WebSocket connections open on this replica.",
            registry=registry,
        )
        self.open_connections.set_function(open_connections)
        # The HPA's custom metric (target 500 per pod).
        self.active_sessions = Gauge(
            "syncbridge_edge_active_sessions",
            "Distinct sessions with at least one device connected to this replica.",
            registry=registry,
        )
        self.active_sessions.set_function(active_sessions)
        self.messages = Counter(
            "syncbridge_edge_messages_total",
            "Protocol messages by type and direction (in: from devices, out: to devices).",
            labelnames=("type", "direction"),
            registry=registry,
        )
        self.update_ack_latency = Histogram(
            "syncbridge_edge_update_ack_latency_seconds",
            "From an update arriving to its ack being queued (core commit included).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.fanout_latency = Histogram(
            "syncbridge_edge_fanout_latency_seconds",
            "From a change's commit in core to its frame being written to a device.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "syncbridge_edge_errors_total",
            "Error messages and refused upgrades/HTTP calls, by stable code.",
            labelnames=("code",),
            registry=registry,
        )
        self.http_errors = Counter(
            "syncbridge_edge_http_errors_total",
            "Every non-2xx HTTP answer (API, refused upgrades, the framework's own), by status"
            " and stable code.",
            labelnames=("status", "code"),
            registry=registry,
        )
        self.slow_consumers = Counter(
            "syncbridge_edge_slow_consumer_disconnects_total",
            "Connections closed with 4008 because the device did not read fast enough.",
            registry=registry,
        )
        self.resumes = Counter(
            "syncbridge_edge_resumes_total",
            "Resumes by outcome: replayed (missed changes sent) or snapshot (recovered:false).",
            labelnames=("outcome",),
            registry=registry,
        )
        self.closes = Counter(
            "syncbridge_edge_closes_total",
            "Connections closed by the server, by close code.",
            labelnames=("code",),
            registry=registry,
        )
        self.connection_failures = Counter(
            "syncbridge_edge_connection_failures_total",
            "Failures inside a connection (a task of it raised, a reply could not be encoded):"
            " each is logged and closes the connection with 1011.",
            labelnames=("task",),
            registry=registry,
        )
        self.undeliverable = Counter(
            "syncbridge_edge_undeliverable_events_total",
            "Events from RabbitMQ that could not be decoded or handed on (poison): set aside"
            " on the syncbridge.dead exchange, acked, and their user's devices resynced from core.",
            registry=registry,
        )
        self.duplicates = Counter(
            "syncbridge_edge_duplicate_changes_total",
            "Change events dropped because the device already had them.",
            registry=registry,
        )
        self.backfills = Counter(
            "syncbridge_edge_backfills_total",
            "Snapshots sent to live devices because a hole could not be replayed.",
            labelnames=("reason",),
            registry=registry,
        )
        # Every label value the alerts divide by exists from the start at 0: a
        # series born at 1 hides its first event from rate() and increase().
        for code in ErrorCode:
            self.errors.labels(code=code.value)
        for outcome in ("replayed", "snapshot"):
            self.resumes.labels(outcome=outcome)
        for task in CONNECTION_TASKS:
            self.connection_failures.labels(task=task)
        self.core: RpcMetrics = rpc_metrics(registry, "syncbridge_edge_core_rpc")
        self.http: RpcMetrics = rpc_metrics(registry, "syncbridge_edge_http")
