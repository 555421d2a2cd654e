"""The outbox relay as a process of its own: `python3.11 -m services.session_core.relay_main`.

Core runs the relay in-process by default (one process serves a laptop).
Under load it is better apart: publishing is most of a write's CPU after the
commit, and in its own process it no longer shares core's event loop with
gRPC. Core then runs with SYNCBRIDGE_CORE_RELAY_IN_PROCESS=false. It reads the
same SYNCBRIDGE_CORE_* settings; several may run, one leads (advisory lock).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from prometheus_client import Counter

from libs.config.reference import usage, wants_help
from libs.config.settings import ConfigError, load_config
from libs.log.configure import configure_logging
from libs.metrics.exposition import serve
from libs.metrics.registry import new_registry
from services.session_core.config import CoreConfig
from services.session_core.relay import OutboxRelay

log = logging.getLogger("outbox_relay")


async def run(config: CoreConfig, published: Counter, dead_lettered: Counter) -> None:
    """Relays until SIGTERM or SIGINT; a batch in flight finishes first."""
    relay = OutboxRelay(
        config.pg_dsn,
        config.amqp_url,
        on_published=published.inc,
        on_dead_lettered=dead_lettered.inc,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await relay.run(stop)


SUMMARY = (
    "The outbox relay as its own process: publishes committed session changes to"
    " RabbitMQ (run core with SYNCBRIDGE_CORE_RELAY_IN_PROCESS=false). It reads"
    " session-core's settings; it uses the PG_DSN, AMQP_URL, GRPC_HOST (bind"
    " address), RELAY_METRICS_PORT and LOG_LEVEL ones."
)


def main(argv: list[str] | None = None) -> int:
    if wants_help(sys.argv[1:] if argv is None else argv):
        print(usage(CoreConfig, "outbox_relay", SUMMARY), end="")
        return 0
    try:
        config = load_config(CoreConfig, os.environ, prefix="SYNCBRIDGE_CORE_")
    except ConfigError as error:
        print(f"outbox-relay: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging("outbox-relay", config.log_level)
    registry = new_registry()
    published = Counter(
        "syncbridge_core_outbox_published_total", "Events confirmed by RabbitMQ.", registry=registry
    )
    dead_lettered = Counter(
        "syncbridge_core_outbox_dead_lettered_total",
        "Outbox rows set aside in outbox_dead after repeated refusals by RabbitMQ.",
        registry=registry,
    )
    try:
        # Its own port, not core's: deployed apart, each is scraped on its own port,
        # and beside a core (one host, run-local) core's port is taken.
        metrics = serve(registry, config.grpc_host, config.relay_metrics_port)
    except OSError as error:
        print(
            f"outbox-relay: SYNCBRIDGE_CORE_RELAY_METRICS_PORT: cannot listen: {error}",
            file=sys.stderr,
        )
        return 2
    log.info("outbox-relay metrics", extra={"port": metrics.port})
    try:
        asyncio.run(run(config, published, dead_lettered))
    finally:
        metrics.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
