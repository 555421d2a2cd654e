"""ws-edge's process: `bazel run //services/ws_edge` (see README.md for the dev JWT key).

SIGTERM or SIGINT: readiness fails, new upgrades get 503, open connections
are closed with 1001 in jittered batches, and the process exits within
SYNCBRIDGE_EDGE_GRACE_SECONDS whatever happens.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import uvloop

from libs.config.reference import usage, wants_help
from libs.config.settings import ConfigError, describe, load_config
from libs.log.configure import configure_logging
from services.ws_edge import app
from services.ws_edge.config import EdgeConfig, check

log = logging.getLogger("ws_edge")


def _write_port_file(path: str, port: int) -> None:
    staged = Path(path + ".tmp")
    staged.write_text(str(port))
    staged.replace(path)  # atomic: readers never see a partial file


async def _run(config: EdgeConfig) -> int:
    running = await app.start(config)
    if config.port_file:
        _write_port_file(config.port_file, running.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("draining", extra={"grace_seconds": config.grace_seconds})
    try:
        async with asyncio.timeout(config.grace_seconds):
            await running.shutdown()
    except TimeoutError:
        log.warning("grace period over: exiting with connections still open")
        return 1
    log.info("stopped")
    return 0


SUMMARY = (
    "ws-edge: the WebSocket edge and HTTP API devices connect to; calls"
    " session-core over gRPC. One port serves WebSocket, HTTP, /health/* and"
    " /metrics; SIGTERM drains connections."
)


def main(argv: list[str] | None = None) -> int:
    if wants_help(sys.argv[1:] if argv is None else argv):
        print(usage(EdgeConfig, "ws_edge", SUMMARY), end="")
        return 0
    try:
        config = load_config(EdgeConfig, os.environ, prefix="SYNCBRIDGE_EDGE_")
        check(config)
    except ConfigError as error:
        print(f"ws-edge: configuration error: {error}", file=sys.stderr)
        return 2
    key = config.jwt_public_key_path or config.jwt_jwks_path
    if not Path(key).is_file():
        print(
            f"ws-edge: JWT key {key} does not exist. For local development create one with\n"
            "  bazel run //libs/client:dev_token -- init",
            file=sys.stderr,
        )
        return 2
    configure_logging("ws-edge", config.log_level)
    log.info("starting", extra={"config": describe(config)})
    try:
        if config.uvloop:
            return uvloop.run(_run(config))
        return asyncio.run(_run(config))
    except (OSError, ValueError) as error:
        # Typically: the port is taken, the JWT key file is missing, a backend is down.
        log.error("cannot start", extra={"error": repr(error)})
        return 1


if __name__ == "__main__":
    sys.exit(main())
