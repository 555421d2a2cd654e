"""Serving a registry: as a response body for any framework, or on its own port."""

import threading
from types import TracebackType
from wsgiref.simple_server import WSGIServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import start_http_server as _start_http_server


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """Returns (payload, content type) of a `/metrics` response in the text format."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


class MetricsServer:
    """A running standalone metrics HTTP server; `stop()` (or leaving `with`) ends it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The bound port: the real one when 0 was asked for."""
        return self._server.server_port

    def stop(self, timeout: float = 5.0) -> None:
        """Stops serving, closes the socket and waits for the server thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)

    def __enter__(self) -> "MetricsServer":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serves `registry` at http://host:port/metrics from a daemon thread.

    For a service whose main port is not HTTP (session-core speaks gRPC);
    port 0 picks a free port, see `MetricsServer.port`.
    """
    server, thread = _start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)
