"""The Sanic application: WebSocket at /session/connect, HTTP API, health and metrics.

`start(config)` runs one edge inside the current event loop (Sanic's
low-level server API, so tests can run several replicas in one process and
the process owns its signal handling); `Running.shutdown()` drains it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse, raw
from sanic.response import json as json_response
from sanic.server.async_server import AsyncioServer

from libs.metrics.exposition import render
from libs.protocol.codes import CloseCode, ErrorCode
from libs.protocol.subprotocol import APP_SUBPROTOCOL
from services.ws_edge import demo, http_api, openapi
from services.ws_edge.config import EdgeConfig
from services.ws_edge.connection import Connection
from services.ws_edge.http_errors import EdgeErrorHandler, error_response
from services.ws_edge.replica import Replica
from services.ws_edge.socket_protocol import HEADER_TIMEOUT_KEY, EdgeWebSocketProtocol
from services.ws_edge.upgrade import Accepted, Refusal, authorize

log = logging.getLogger(__name__)

CONNECT_PATH = "/session/connect"
_touched_up = False


def refusal_response(replica: Replica, refusal: Refusal) -> HTTPResponse:
    return error_response(replica.metrics, refusal.code, refusal.message, status=refusal.status)


def build_app(replica: Replica) -> Sanic[Any, Any]:
    """A Sanic app serving `replica`; the name is unique so replicas can share a process."""
    config = replica.config
    app = Sanic(
        f"ws_edge_{uuid.uuid4().hex[:12]}",
        configure_logging=False,
        # Sanic's own errors (404, 405, 413, malformed requests) and anything
        # uncaught answer in the API's error shape, counted like the rest.
        error_handler=EdgeErrorHandler(replica.metrics, http_api.allowed_methods),
    )
    app.config.MOTD = False
    app.config.ACCESS_LOG = False
    app.config.update(
        {
            "WEBSOCKET_MAX_SIZE": config.max_frame_bytes,
            "WEBSOCKET_PING_INTERVAL": config.ping_interval_seconds,
            "WEBSOCKET_PING_TIMEOUT": config.ping_timeout_seconds,
            "REQUEST_MAX_SIZE": config.max_frame_bytes * 4,
            # The longest token libs/auth reads (8192 characters) plus the upgrade's
            # other headers: Sanic's 8 KiB default would refuse it before we see it.
            "REQUEST_MAX_HEADER_SIZE": 16_384,
            "GRACEFUL_SHUTDOWN_TIMEOUT": 1.0,
            # A request's head: a total deadline (socket_protocol.py); Sanic's own
            # timeout, restarted by every byte, is the same figure and never the tighter.
            HEADER_TIMEOUT_KEY: config.header_timeout_seconds,
            "REQUEST_TIMEOUT": config.header_timeout_seconds,
            # No request in progress (before the first, between keep-alive requests).
            "KEEP_ALIVE_TIMEOUT": config.idle_timeout_seconds,
        }
    )

    @app.on_request
    async def before_upgrade(request: Request) -> HTTPResponse | None:
        # Sanic routes /session/connect/ (and //session/connect) to the same handler:
        # every spelling of the path goes through the checks.
        if not is_connect_path(request.path):
            return None
        if replica.draining:
            return refusal_response(
                replica, Refusal(503, ErrorCode.DRAINING, "replica draining: reconnect elsewhere")
            )
        decision = authorize(
            {name.lower(): value for name, value in _joined_headers(request).items()},
            request.args.get("access_token"),
            replica.verifier,
            allowed_origins=config.allowed_origins,
            allow_missing_origin=config.allow_missing_origin,
            allow_query_token=config.allow_query_token,
        )
        if isinstance(decision, Refusal):
            return refusal_response(replica, decision)
        request.ctx.accepted = decision
        return None

    async def connect(request: Request, ws: Any) -> None:
        accepted = getattr(request.ctx, "accepted", None)
        if not isinstance(accepted, Accepted):
            # Never reached through before_upgrade's checks: refuse, whatever the path.
            log.error("WebSocket upgrade not authorized", extra={"path": request.path})
            replica.metrics.errors.labels(code=ErrorCode.UNAUTHORIZED.value).inc()
            await ws.close(CloseCode.UNAUTHORIZED, "upgrade not authorized")
            return
        connection = Connection(replica, ws, accepted.claims, accepted.token)
        replica.connections.add(connection)
        try:
            await connection.serve()
        finally:
            replica.connections.discard(connection)

    app.add_websocket_route(connect, CONNECT_PATH, subprotocols=[APP_SUBPROTOCOL])

    @app.get("/health/live")
    async def live(request: Request) -> HTTPResponse:
        return json_response(replica.health.liveness())

    @app.get("/health/ready")
    async def ready(request: Request) -> HTTPResponse:
        status, body = await replica.health.readiness()
        return json_response(body, status=status)

    @app.get("/metrics")
    async def metrics(request: Request) -> HTTPResponse:
        payload, content_type = render(replica.registry)
        return raw(payload, content_type=content_type)

    @app.get("/v1/openapi.json")
    async def openapi_document(request: Request) -> HTTPResponse:
        return json_response(openapi.document())

    http_api.register(app, replica)
    if config.demo_dir:
        demo.register(app, config.demo_dir)
    return app


def is_connect_path(path: str) -> bool:
    """True for /session/connect however many slashes surround or repeat in it."""
    return "/" + "/".join(part for part in path.split("/") if part) == CONNECT_PATH


def _joined_headers(request: Request) -> dict[str, str]:
    """Header values, repeated lines joined with ", " (Sec-WebSocket-Protocol may repeat)."""
    return {name: ", ".join(request.headers.getall(name)) for name in request.headers}


@dataclass
class Running:
    """A serving edge: its port, shared state, and how to stop it."""

    port: int
    replica: Replica
    app: Sanic[Any, Any]
    server: AsyncioServer

    async def shutdown(self) -> None:
        """Drain (1001 to every device), stop accepting, close bus and core channels."""
        loop = asyncio.get_running_loop()
        ends = loop.time() + self.replica.config.grace_seconds
        await self.replica.drain()
        self.server.close()  # type: ignore[no-untyped-call]
        await self.server.wait_closed()  # type: ignore[no-untyped-call]
        await self.replica.close(within=max(0.1, min(5.0, ends - loop.time() - 0.2)))
        Sanic.unregister_app(self.app)


async def start(config: EdgeConfig) -> Running:
    """Starts one edge on (host, port) in the running loop; port 0 picks a free one."""
    replica = Replica(config)
    await replica.start()
    app = build_app(replica)
    # proto=IPPROTO_TCP matters: asyncio turns Nagle off (TCP_NODELAY) only on sockets
    # that say they are TCP, and accepted sockets inherit it. With Nagle on, an ack
    # queued behind an unacknowledged change waits for the peer's delayed ACK (40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((config.host, config.port))
    sock.listen(config.listen_backlog)
    sock.setblocking(False)
    # `backlog` too: the event loop calls listen() again when it starts serving, with
    # create_server's backlog (Sanic's default: 100), whatever the socket had.
    server = await app.create_server(
        sock=sock,
        protocol=EdgeWebSocketProtocol,
        backlog=config.listen_backlog,
        return_asyncio_server=True,
        access_log=False,
    )
    if server is None:
        raise RuntimeError("Sanic returned no server")
    # TouchUp rewrites Sanic's own protocol classes (dropping signal dispatches nobody
    # listens to, on every frame sent). The rewrite is process-wide and fails when
    # repeated, so only the first app of a process (tests run several) does it.
    global _touched_up
    app.config.TOUCHUP = not _touched_up
    _touched_up = True
    # Sanic's low-level server API is untyped.
    await server.startup()  # type: ignore[no-untyped-call]
    await server.before_start()  # type: ignore[no-untyped-call]
    await server.after_start()  # type: ignore[no-untyped-call]
    await server.start_serving()  # type: ignore[no-untyped-call]
    port = int(sock.getsockname()[1])
    log.info("ws-edge serving", extra={"port": port, "edge_id": replica.edge_id})
    return Running(port, replica, app, server)
