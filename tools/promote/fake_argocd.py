"""A loopback stand-in for Argo CD's Application API, for the tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


class FakeArgo:
    """Serves /api/v1/applications/<name> from `apps`; records Authorization."""

    def __init__(self) -> None:
        self.apps: dict[str, Any] = {}
        self.auth: list[str | None] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.auth.append(self.headers.get("Authorization"))
                name = self.path.rsplit("/", 1)[-1]
                if name not in fake.apps:
                    self.send_response(404)
                    self.end_headers()
                    return
                body = json.dumps(fake.apps[name]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
