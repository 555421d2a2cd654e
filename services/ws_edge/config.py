"""ws-edge settings, from SYNCBRIDGE_EDGE_* environment variables.

Defaults run against the local servers (tools/servers) and a session-core on
127.0.0.1:50051, with the development JWT key that
`bazel run //libs/client:dev_token -- init` writes; README.md has the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from libs.auth.dev import DEV_AUDIENCE, DEV_ISSUER, DEV_KEY_DIR
from libs.config.settings import ConfigError, setting


@dataclass(frozen=True)
class EdgeConfig:
    """Every knob of ws-edge."""

    host: str = setting("SYNCBRIDGE_EDGE_HOST", "127.0.0.1", help="HTTP/WebSocket bind address")
    port: int = setting("SYNCBRIDGE_EDGE_PORT", 8080, min=0, max=65535, help="0 picks a free port")
    listen_backlog: int = setting(
        "SYNCBRIDGE_EDGE_LISTEN_BACKLOG",
        1024,
        min=1,
        max=65535,
        help="pending TCP connections the kernel queues (capped by net.core.somaxconn)",
    )
    header_timeout_seconds: float = setting(
        "SYNCBRIDGE_EDGE_HEADER_TIMEOUT_SECONDS",
        10.0,
        min=0.05,
        help="a request's headers (the upgrade) must be complete this long after its first byte",
    )
    idle_timeout_seconds: float = setting(
        "SYNCBRIDGE_EDGE_IDLE_TIMEOUT_SECONDS",
        30.0,
        min=0.05,
        help="an HTTP connection with no request in progress is closed after this",
    )
    port_file: str = setting(
        "SYNCBRIDGE_EDGE_PORT_FILE", "", help="write the bound port here once serving"
    )
    edge_id: str = setting(
        "SYNCBRIDGE_EDGE_ID", "", help="replica name (queue, presence); default host-pid"
    )
    core_target: str = setting(
        "SYNCBRIDGE_EDGE_CORE_TARGET", "127.0.0.1:50051", help="session-core's gRPC address"
    )
    core_tls_ca_path: str = setting(
        "SYNCBRIDGE_EDGE_CORE_TLS_CA_PATH",
        "",
        help="PEM CA of core's certificate: with CERT_PATH and KEY_PATH, mTLS to core;"
        " empty: plaintext (inside a mesh that does mTLS)",
    )
    core_tls_cert_path: str = setting(
        "SYNCBRIDGE_EDGE_CORE_TLS_CERT_PATH",
        "",
        help="PEM client certificate the edge presents to core (identity: its SAN)",
    )
    core_tls_key_path: str = setting(
        "SYNCBRIDGE_EDGE_CORE_TLS_KEY_PATH", "", help="PEM private key of CORE_TLS_CERT_PATH"
    )
    core_tls_server_name: str = setting(
        "SYNCBRIDGE_EDGE_CORE_TLS_SERVER_NAME",
        "session-core",
        help="the name core's certificate must carry",
    )
    amqp_url: str = setting(
        "SYNCBRIDGE_EDGE_AMQP_URL",
        "amqp://guest:guest@127.0.0.1:5672/",
        secret=True,
        help="RabbitMQ URL the edge consumes session changes from",
    )
    jwt_public_key_path: str = setting(
        "SYNCBRIDGE_EDGE_JWT_PUBLIC_KEY_PATH",
        f"{DEV_KEY_DIR}/public.pem",
        help="PEM public key; empty when JWKS_PATH is set",
    )
    jwt_jwks_path: str = setting(
        "SYNCBRIDGE_EDGE_JWT_JWKS_PATH",
        "",
        help="JWKS file of trusted keys; empty when PUBLIC_KEY_PATH is set",
    )
    jwt_issuer: str = setting("SYNCBRIDGE_EDGE_JWT_ISSUER", DEV_ISSUER, help="required iss claim")
    jwt_audience: str = setting(
        "SYNCBRIDGE_EDGE_JWT_AUDIENCE", DEV_AUDIENCE, help="required aud claim"
    )
    jwt_algorithms: tuple[str, ...] = setting(
        "SYNCBRIDGE_EDGE_JWT_ALGORITHMS", ("RS256", "ES256"), help="accepted JWT algorithms"
    )
    jwt_leeway_seconds: float = setting(
        "SYNCBRIDGE_EDGE_JWT_LEEWAY_SECONDS",
        30.0,
        min=0,
        max=300,
        help="clock skew allowed on exp/nbf",
    )
    allowed_origins: tuple[str, ...] = setting(
        "SYNCBRIDGE_EDGE_ALLOWED_ORIGINS", (), help="browser Origins allowed to connect"
    )
    allow_missing_origin: bool = setting(
        "SYNCBRIDGE_EDGE_ALLOW_MISSING_ORIGIN", True, help="native clients send no Origin"
    )
    allow_query_token: bool = setting(
        "SYNCBRIDGE_EDGE_ALLOW_QUERY_TOKEN", False, help="accept ?access_token= (leaks to logs)"
    )
    demo_dir: str = setting(
        "SYNCBRIDGE_EDGE_DEMO_DIR",
        "",
        help="dev only: serve the web client's demo page from this directory at /demo/; empty: off",
    )
    ping_interval_seconds: float = setting(
        "SYNCBRIDGE_EDGE_PING_INTERVAL_SECONDS",
        30.0,
        min=0.05,
        help="seconds between WebSocket pings",
    )
    ping_timeout_seconds: float = setting(
        "SYNCBRIDGE_EDGE_PING_TIMEOUT_SECONDS",
        20.0,
        min=0.05,
        help="no pong within this closes the connection",
    )
    hello_timeout_seconds: float = setting(
        "SYNCBRIDGE_EDGE_HELLO_TIMEOUT_SECONDS",
        10.0,
        min=0.05,
        help="seconds a new connection has to send hello",
    )
    max_frame_bytes: int = setting(
        "SYNCBRIDGE_EDGE_MAX_FRAME_BYTES",
        128 * 1024,
        min=1024,
        help="larger frames are closed with 1009",
    )
    rate_per_second: float = setting(
        "SYNCBRIDGE_EDGE_RATE_PER_SECOND",
        50.0,
        min=0.01,
        help="messages per second per connection (token bucket)",
    )
    rate_burst: int = setting("SYNCBRIDGE_EDGE_RATE_BURST", 100, min=1, help="token bucket size")
    rate_max_refused: int = setting(
        "SYNCBRIDGE_EDGE_RATE_MAX_REFUSED", 50, min=0, help="refusals in a row before close 4029"
    )
    max_devices_per_user: int = setting(
        "SYNCBRIDGE_EDGE_MAX_DEVICES_PER_USER",
        10,
        min=1,
        help="devices one user may connect at once",
    )
    outbound_queue: int = setting(
        "SYNCBRIDGE_EDGE_OUTBOUND_QUEUE",
        256,
        min=1,
        help="messages queued per connection before it is dropped",
    )
    outbound_queue_bytes: int = setting(
        "SYNCBRIDGE_EDGE_OUTBOUND_QUEUE_BYTES",
        8 * 1024 * 1024,
        min=1024,
        help="bytes queued per connection before it is dropped (one larger frame goes alone)",
    )
    send_timeout_seconds: float = setting(
        "SYNCBRIDGE_EDGE_SEND_TIMEOUT_SECONDS",
        10.0,
        min=0.01,
        help="a send blocked this long drops the connection",
    )
    token_grace_seconds: float = setting(
        "SYNCBRIDGE_EDGE_TOKEN_GRACE_SECONDS",
        30.0,
        min=0,
        help="an expired token's connection lives this long for a refresh",
    )
    core_deadline_seconds: float = setting(
        "SYNCBRIDGE_EDGE_CORE_DEADLINE_SECONDS",
        5.0,
        min=0.1,
        help="deadline of one gRPC call to core",
    )
    core_attempts: int = setting(
        "SYNCBRIDGE_EDGE_CORE_ATTEMPTS",
        3,
        min=1,
        max=10,
        help="tries of an idempotent call to core",
    )
    presence_interval_seconds: float = setting(
        "SYNCBRIDGE_EDGE_PRESENCE_INTERVAL_SECONDS",
        15.0,
        min=0.05,
        help="seconds between presence heartbeats",
    )
    queue_max_length: int = setting(
        "SYNCBRIDGE_EDGE_QUEUE_MAX_LENGTH", 100_000, min=1, help="replica queue cap (drop-head)"
    )
    grace_seconds: float = setting(
        "SYNCBRIDGE_EDGE_GRACE_SECONDS", 25.0, min=0, help="SIGTERM to exit, at most"
    )
    drain_spread_seconds: float = setting(
        "SYNCBRIDGE_EDGE_DRAIN_SPREAD_SECONDS", 10.0, min=0, help="closing connections takes this"
    )
    drain_batches: int = setting(
        "SYNCBRIDGE_EDGE_DRAIN_BATCHES",
        10,
        min=1,
        help="connections are closed in this many batches on SIGTERM",
    )
    uvloop: bool = setting(
        "SYNCBRIDGE_EDGE_UVLOOP", True, help="libuv event loop (faster) instead of asyncio's"
    )
    log_level: str = setting(
        "SYNCBRIDGE_EDGE_LOG_LEVEL",
        "INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="DEBUG, INFO, WARNING or ERROR",
    )


def check(config: EdgeConfig) -> None:
    """Rules that span settings; ConfigError naming the variables involved."""
    problems = []
    if bool(config.jwt_public_key_path) == bool(config.jwt_jwks_path):
        problems.append(
            "SYNCBRIDGE_EDGE_JWT_PUBLIC_KEY_PATH, SYNCBRIDGE_EDGE_JWT_JWKS_PATH: set exactly one"
        )
    tls = {
        "SYNCBRIDGE_EDGE_CORE_TLS_CA_PATH": config.core_tls_ca_path,
        "SYNCBRIDGE_EDGE_CORE_TLS_CERT_PATH": config.core_tls_cert_path,
        "SYNCBRIDGE_EDGE_CORE_TLS_KEY_PATH": config.core_tls_key_path,
    }
    if any(tls.values()) and not all(tls.values()):
        missing = ", ".join(name for name, value in tls.items() if not value)
        problems.append(f"{missing}: required with the other CORE_TLS settings")
    if config.drain_spread_seconds >= config.grace_seconds > 0:
        problems.append(
            "SYNCBRIDGE_EDGE_DRAIN_SPREAD_SECONDS: must be below SYNCBRIDGE_EDGE_GRACE_SECONDS"
        )
    if config.ping_timeout_seconds > config.ping_interval_seconds * 10:
        problems.append(
            "SYNCBRIDGE_EDGE_PING_TIMEOUT_SECONDS: at most 10 times "
            "SYNCBRIDGE_EDGE_PING_INTERVAL_SECONDS"
        )
    if problems:
        raise ConfigError(problems)
