"""An HTTPS proxy on loopback that serves one git host from local bare repositories.

Argo CD's repo-server reaches the committed repoURL (https://GIT_HOST/...) with
HTTPS_PROXY pointing here: a CONNECT to GIT_HOST is answered by this process,
which terminates TLS with a certificate of the cluster's CA (ARGOCD_TLS_DATA_PATH
trusts it) and hands each request to `git http-backend` (read-only: fetches,
never pushes). A CONNECT to any other host (a chart repository, GitHub) is
refused with 403; every CONNECT is logged as one JSON line, so a test can prove
which fetches were refused.

    python3.11 -m tools.cluster.gitproxy --port P --host H --cert C --key K --git-root D --log F
"""

from __future__ import annotations

import argparse
import json
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
LISTEN = "127.0.0.1"
READ_ONLY_SERVICE = "git-upload-pack"


def connect_target(request_line: str) -> tuple[str, int] | None:
    """(host, port) of a `CONNECT host:port HTTP/1.1` line; None for anything else."""
    parts = request_line.split()
    if len(parts) != 3 or parts[0] != "CONNECT":
        return None
    host, _, port = parts[1].rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]").lower(), int(port)


def allowed_path(path: str, query: str) -> bool:
    """Only the smart-HTTP fetch protocol: refs advertisement and upload-pack."""
    if path.endswith("/info/refs"):
        return query == f"service={READ_ONLY_SERVICE}"
    return path.endswith(f"/{READ_ONLY_SERVICE}")


def parse_cgi(output: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of a CGI response."""
    head, sep, body = output.partition(b"\r\n\r\n")
    if not sep:
        head, _, body = output.partition(b"\n\n")
    status = 200
    headers = []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.split()[0])
        elif name:
            headers.append((name.strip(), value.strip()))
    return status, headers, body


class _GitHandler(BaseHTTPRequestHandler):
    """Requests inside one CONNECT tunnel, after TLS."""

    protocol_version = "HTTP/1.1"
    git_root: Path

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self._body() if method == "POST" else b""
        if not allowed_path(url.path, url.query):
            self._send(403, [("Content-Type", "text/plain")], b"read-only: fetches only\n")
            return
        env = {
            "PATH": "/usr/bin:/bin",
            "GIT_PROJECT_ROOT": str(self.git_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": method,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        done = subprocess.run(
            [HTTP_BACKEND], input=body, capture_output=True, env=env, check=False, timeout=120
        )
        status, headers, payload = parse_cgi(done.stdout)
        if done.returncode != 0 and not done.stdout:
            status, headers, payload = 500, [], done.stderr
        self._send(status, headers, payload)

    def _send(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, *_args: Any) -> None:
        return


class Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, host: str, tls: ssl.SSLContext, git_root: Path, log: Path):
        self.served_host = host.lower()
        self.tls = tls
        self.git_root = git_root
        self.log_path = log
        self.log_lock = threading.Lock()
        super().__init__((LISTEN, port), _TunnelHandler)

    def record(self, host: str, port: int, served: bool) -> None:
        line = json.dumps({"time": time.time(), "host": host, "port": port, "served": served})
        with self.log_lock, self.log_path.open("a") as log:
            log.write(line + "\n")


class _TunnelHandler(socketserver.StreamRequestHandler):
    server: Proxy

    def handle(self) -> None:
        request_line = self.rfile.readline(8192).decode("latin-1").strip()
        while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
            pass  # the CONNECT request's headers: nothing in them matters here
        target = connect_target(request_line)
        served = target is not None and target[0] == self.server.served_host and target[1] == 443
        if target is None:  # not a CONNECT (a plain-http proxy request): refused, logged
            target = ((request_line.split(" ")[1:2] or ["?"])[0], 0)
        self.server.record(target[0], target[1], served)
        if not served:
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        self.wfile.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        self.wfile.flush()
        try:
            tls = self.server.tls.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            return
        handler = type("Handler", (_GitHandler,), {"git_root": self.server.git_root})
        try:
            handler(tls, self.client_address, self.server)
        except (ssl.SSLError, ConnectionError):
            return


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", required=True, help="the one git host served")
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--git-root", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    proxy = Proxy(args.port, args.host, tls_context(args.cert, args.key), args.git_root, args.log)
    print(f"gitproxy: serving {args.host} from {args.git_root} on {LISTEN}:{args.port}", flush=True)
    proxy.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
