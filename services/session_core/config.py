"""session-core settings, from SYNCBRIDGE_CORE_* environment variables.

Defaults run against the local servers that tools/setup starts, so
`bazel run //services/session_core` needs no configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from libs.auth.dev import DEV_AUDIENCE, DEV_ISSUER, DEV_KEY_DIR
from libs.config.settings import setting


@dataclass(frozen=True)
class CoreConfig:
    """Every knob of session-core; see README.md for the table."""

    grpc_host: str = setting("SYNCBRIDGE_CORE_GRPC_HOST", "127.0.0.1", help="gRPC bind address")
    grpc_port: int = setting(
        "SYNCBRIDGE_CORE_GRPC_PORT", 50051, min=0, max=65535, help="gRPC port; 0 picks a free one"
    )
    metrics_port: int = setting(
        "SYNCBRIDGE_CORE_METRICS_PORT", 9102, min=0, max=65535, help="core's /metrics port"
    )
    tls_cert_path: str = setting(
        "SYNCBRIDGE_CORE_TLS_CERT_PATH",
        "",
        help="PEM server certificate: with KEY_PATH and CLIENT_CA_PATH, gRPC requires"
        " client certificates (mTLS); empty: plaintext (inside a mesh that does mTLS)",
    )
    tls_key_path: str = setting(
        "SYNCBRIDGE_CORE_TLS_KEY_PATH", "", help="PEM private key of TLS_CERT_PATH"
    )
    tls_client_ca_path: str = setting(
        "SYNCBRIDGE_CORE_TLS_CLIENT_CA_PATH", "", help="PEM CA that issues callers' certificates"
    )
    allowed_clients: tuple[str, ...] = setting(
        "SYNCBRIDGE_CORE_ALLOWED_CLIENTS",
        ("ws-edge", "syncbridge-admin"),
        help="with mTLS: client certificate identities (DNS SAN) admitted; others are"
        " PERMISSION_DENIED",
    )
    health_port: int = setting(
        "SYNCBRIDGE_CORE_HEALTH_PORT",
        50052,
        min=0,
        max=65535,
        help="with mTLS: plaintext grpc.health.v1 only, for probes that present no certificate",
    )
    reflection: bool = setting(
        "SYNCBRIDGE_CORE_REFLECTION",
        False,
        help="serve gRPC server reflection (lists every RPC to anyone who asks); dev only",
    )
    jwt_public_key_path: str = setting(
        "SYNCBRIDGE_CORE_JWT_PUBLIC_KEY_PATH",
        f"{DEV_KEY_DIR}/public.pem",
        help="PEM public key of the token issuer (the edge's); empty when JWKS_PATH is set",
    )
    jwt_jwks_path: str = setting(
        "SYNCBRIDGE_CORE_JWT_JWKS_PATH",
        "",
        help="JWKS file of trusted keys (the edge's); empty when PUBLIC_KEY_PATH is set",
    )
    jwt_issuer: str = setting(
        "SYNCBRIDGE_CORE_JWT_ISSUER", DEV_ISSUER, help="required iss claim (the edge's)"
    )
    jwt_audience: str = setting(
        "SYNCBRIDGE_CORE_JWT_AUDIENCE", DEV_AUDIENCE, help="required aud claim (the edge's)"
    )
    jwt_algorithms: tuple[str, ...] = setting(
        "SYNCBRIDGE_CORE_JWT_ALGORITHMS", ("RS256", "ES256"), help="accepted JWT algorithms"
    )
    jwt_leeway_seconds: float = setting(
        "SYNCBRIDGE_CORE_JWT_LEEWAY_SECONDS",
        30.0,
        min=0,
        max=300,
        help="clock skew allowed on exp/nbf",
    )
    max_devices_per_user: int = setting(
        "SYNCBRIDGE_CORE_MAX_DEVICES_PER_USER",
        10,
        min=1,
        help="devices one user may have online across every edge (ClaimDevice JOIN)",
    )
    pg_dsn: str = setting(
        "SYNCBRIDGE_CORE_PG_DSN",
        "postgresql://syncbridge@127.0.0.1:5432/syncbridge",
        secret=True,
        help="PostgreSQL DSN (may hold a password)",
    )
    pg_pool_size: int = setting(
        "SYNCBRIDGE_CORE_PG_POOL_SIZE", 20, min=1, max=500, help="PostgreSQL connections"
    )
    redis_url: str = setting(
        "SYNCBRIDGE_CORE_REDIS_URL",
        "redis://127.0.0.1:6379/0",
        secret=True,
        help="Redis URL (cache, change log, presence)",
    )
    redis_cluster: bool = setting(
        "SYNCBRIDGE_CORE_REDIS_CLUSTER", False, help="REDIS_URL names a Redis Cluster node"
    )
    amqp_url: str = setting(
        "SYNCBRIDGE_CORE_AMQP_URL",
        "amqp://guest:guest@127.0.0.1:5672/",
        secret=True,
        help="RabbitMQ URL the outbox publishes to",
    )
    session_ttl_seconds: float = setting(
        "SYNCBRIDGE_CORE_SESSION_TTL_SECONDS",
        7 * 24 * 3600.0,
        min=1,
        help="an idle session expires after this (7 days)",
    )
    presence_ttl_seconds: float = setting(
        "SYNCBRIDGE_CORE_PRESENCE_TTL_SECONDS",
        45.0,
        min=1,
        help="a device without heartbeat leaves",
    )
    max_state_bytes: int = setting(
        "SYNCBRIDGE_CORE_MAX_STATE_BYTES", 256 * 1024, min=2, help="largest session state"
    )
    max_patch_bytes: int = setting(
        "SYNCBRIDGE_CORE_MAX_PATCH_BYTES", 64 * 1024, min=2, help="largest single update"
    )
    max_session_devices: int = setting(
        "SYNCBRIDGE_CORE_MAX_SESSION_DEVICES",
        64,
        min=1,
        help="distinct devices one session may have attached (more: too_large)",
    )
    write_batch_max: int = setting(
        "SYNCBRIDGE_CORE_WRITE_BATCH_MAX",
        128,
        min=1,
        max=10000,
        help="most updates committed in one transaction (group commit)",
    )
    write_batches_in_flight: int = setting(
        "SYNCBRIDGE_CORE_WRITE_BATCHES_IN_FLIGHT",
        2,
        min=1,
        max=64,
        help="update transactions running at once",
    )
    relay_in_process: bool = setting(
        "SYNCBRIDGE_CORE_RELAY_IN_PROCESS",
        True,
        help="run the outbox relay inside core; false when it runs as its own"
        " process (`python3.11 -m services.session_core.relay_main`)",
    )
    relay_metrics_port: int = setting(
        "SYNCBRIDGE_CORE_RELAY_METRICS_PORT",
        9103,
        min=0,
        max=65535,
        help="/metrics of the relay when it runs as its own process",
    )
    max_replay: int = setting(
        "SYNCBRIDGE_CORE_MAX_REPLAY", 1000, min=1, help="most changes one resume replays"
    )
    change_log_length: int = setting(
        "SYNCBRIDGE_CORE_CHANGE_LOG_LENGTH", 256, min=1, help="recent changes kept in Redis"
    )
    purge_interval_seconds: float = setting(
        "SYNCBRIDGE_CORE_PURGE_INTERVAL_SECONDS",
        300.0,
        min=1,
        help="seconds between purges of expired sessions",
    )
    grace_seconds: float = setting(
        "SYNCBRIDGE_CORE_GRACE_SECONDS", 20.0, min=0, help="SIGTERM: in-flight calls get this"
    )
    migrate_on_start: bool = setting(
        "SYNCBRIDGE_CORE_MIGRATE_ON_START", True, help="apply migrations at start (dev)"
    )
    log_level: str = setting(
        "SYNCBRIDGE_CORE_LOG_LEVEL",
        "INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="DEBUG, INFO, WARNING or ERROR",
    )
