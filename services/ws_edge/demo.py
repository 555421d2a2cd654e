"""The web client's demo page at /demo/ (dev only: SYNCBRIDGE_EDGE_DEMO_DIR, empty by default).

Serves the flat directory `bazel build //clients/web:demo_site` makes (the
page and the client's modules). Only names that are files directly in that
directory are served, so no request path can reach anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse, raw

DEMO_PATH = "/demo/"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


def resolve(directory: Path, name: str) -> Path | None:
    """The file `name` names in `directory`, or None (absent, nested, or another type)."""
    name = name or "index.html"
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    if Path(name).suffix not in CONTENT_TYPES:
        return None
    path = directory / name
    return path if path.is_file() else None


def register(app: Sanic[Any, Any], directory: str) -> None:
    root = Path(directory)
    if not (root / "index.html").is_file():
        raise ValueError(f"SYNCBRIDGE_EDGE_DEMO_DIR: {directory} has no index.html")

    @app.get(DEMO_PATH)
    async def demo_index(request: Request) -> HTTPResponse:
        return serve(root, "")

    @app.get(DEMO_PATH + "<name:str>")
    async def demo_file(request: Request, name: str) -> HTTPResponse:
        return serve(root, name)


def serve(root: Path, name: str) -> HTTPResponse:
    path = resolve(root, name)
    if path is None:
        return raw(b"not found", status=404, content_type="text/plain")
    return raw(
        path.read_bytes(),
        content_type=CONTENT_TYPES[path.suffix],
        headers={"Cache-Control": "no-store"},
    )
