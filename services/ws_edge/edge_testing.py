"""Test helpers: a real core plus in-process edges, raw sockets, a tiny HTTP client.

What the edge sends is checked against the documented shapes on the way in:
`expect` validates every WebSocket message against libs/protocol's schema of its
type, and `api` every /v1/sessions response against the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from websockets.asyncio.client import ClientConnection, connect

from libs.auth import testing
from libs.config.settings import load_config
from libs.protocol.validation import server_message_errors
from services.session_core.harness import (
    Pki,
    core_config,
    public_key_path,
    running_core,
    signing_key,
)
from services.session_core.harness import Running as Core
from services.ws_edge import app, openapi
from services.ws_edge.config import EdgeConfig


@dataclasses.dataclass
class Stack:
    """A core, the edges started so far, and the key their tokens are signed with."""

    core: Core
    amqp_url: str
    key_path: str
    key: testing.PrivateKey
    edges: list[app.Running]

    def token(self, user: str = "alice", lifetime: float = 300, **claims: Any) -> str:
        return testing.sign(testing.claims(lifetime, sub=user, **claims), self.key, "ES256")

    def url(self, index: int = 0) -> str:
        return f"ws://127.0.0.1:{self.edges[index].port}/session/connect"

    def http(self, index: int = 0) -> tuple[str, int]:
        return "127.0.0.1", self.edges[index].port

    def config(self, **overrides: Any) -> EdgeConfig:
        base = load_config(EdgeConfig, {})
        return dataclasses.replace(
            base,
            port=0,
            core_target=f"127.0.0.1:{self.core.port}",
            amqp_url=self.amqp_url,
            jwt_public_key_path=self.key_path,
            jwt_issuer=testing.ISSUER,
            jwt_audience=testing.AUDIENCE,
            jwt_algorithms=("ES256",),
            jwt_leeway_seconds=0.0,
            drain_spread_seconds=0.5,
            grace_seconds=5.0,
            core_deadline_seconds=3.0,
            **overrides,
        )

    async def add_edge(self, **overrides: Any) -> app.Running:
        edge = await app.start(self.config(**overrides))
        self.edges.append(edge)
        return edge


@contextlib.asynccontextmanager
async def running_stack(
    pg_dsn: str,
    redis_url: str,
    amqp_url: str,
    tmp_path: Path,
    edges: int = 1,
    *,
    mtls: bool = False,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """core + `edges` edges (with `overrides`); every edge is shut down on exit.

    Edges and core trust the same key, as a deployment's share their issuer:
    core verifies the tokens the edges forward. Core's device cap is the
    edges' (deployed, both are set alike). With `mtls`, core requires client
    certificates of a CA made for the test, and the edges present `ws-edge`'s.
    """
    key, key_path = signing_key(), public_key_path()
    core_settings: dict[str, Any] = {}
    if "max_devices_per_user" in overrides:
        core_settings["max_devices_per_user"] = overrides["max_devices_per_user"]
    if mtls:
        pki = Pki.create(tmp_path / "pki")
        core_settings |= pki.core_settings()
        tls_cert, tls_key = pki.client("ws-edge").write(pki.directory, "ws-edge")
        overrides |= {
            "core_tls_ca_path": str(pki.ca_path),
            "core_tls_cert_path": str(tls_cert),
            "core_tls_key_path": str(tls_key),
        }
    config = core_config(pg_dsn, redis_url, amqp_url, **core_settings)
    async with running_core(config) as core:
        stack = Stack(core, amqp_url, key_path, key, [])
        try:
            for _ in range(edges):
                await stack.add_edge(**overrides)
            yield stack
        finally:
            for edge in stack.edges:
                with contextlib.suppress(Exception):
                    await edge.shutdown()


async def raw(stack: Stack, user: str = "alice", index: int = 0, **kwargs: Any) -> ClientConnection:
    """A bare WebSocket (no protocol logic) authenticated as `user`."""
    headers = {"Authorization": f"Bearer {stack.token(user)}"}
    return await connect(
        stack.url(index), additional_headers=headers, compression=None, proxy=None, **kwargs
    )


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def expect(ws: ClientConnection, kind: str, within: float = 5.0) -> dict[str, Any]:
    """The next message of type `kind`, skipping others (presence, changes…)."""
    async with asyncio.timeout(within):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            assert server_message_errors(message) == [], message
            if message["type"] == kind:
                return message


async def hello(ws: ClientConnection, device: str = "phone") -> dict[str, Any]:
    await send(ws, {"type": "hello", "device_id": device})
    return await expect(ws, "welcome")


async def http(
    address: tuple[str, int],
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """(status, parsed JSON or text) of one HTTP/1.1 request."""
    reader, writer = await asyncio.open_connection(*address)
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {address[0]}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is not None:
        lines += [f"Content-Length: {len(payload)}", "Content-Type: application/json"]
    lines += ["", ""]
    writer.write("\r\n".join(lines).encode() + payload)
    await writer.drain()
    raw_response = await reader.read()
    writer.close()
    head, _, content = raw_response.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    text = content.decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


async def metric(address: tuple[str, int], name: str) -> float:
    """The value of an unlabelled metric (or the sum over its labels)."""
    _, text = await http(address, "GET", "/metrics")
    total = 0.0
    for line in str(text).splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head, value = line.rsplit(" ", 1)
            if head == name or head.startswith(name + "{"):
                total += float(value)
    return total


async def wait_until(predicate: Any, within: float = 5.0, step: float = 0.05) -> None:
    """Polls an async predicate until true; AssertionError on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)


OPENAPI_URI = "urn:syncbridge:openapi"


@functools.cache
def _openapi() -> tuple[dict[str, Any], Registry[Any]]:
    document = openapi.document()
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    return document, Registry().with_resource(OPENAPI_URI, resource)


def _pointer(*parts: str) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def openapi_errors(method: str, target: str, status: int, body: Any) -> list[str]:
    """What is wrong with one response, judged by the OpenAPI document; [] if it matches."""
    document, registry = _openapi()
    path = target.partition("?")[0]
    where = f"{method} {path} {status}"
    matching = [
        template
        for template in document["paths"]
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path)
    ]
    if not matching:
        return [f"{where}: path not in the OpenAPI document"]
    template = matching[0]
    operation = document["paths"][template].get(method.lower())
    if operation is None:
        return [f"{where}: method not in the OpenAPI document"]
    if str(status) not in operation["responses"]:
        return [f"{where}: status not documented"]
    media = operation["responses"][str(status)].get("content", {}).get("application/json")
    if media is None:
        return [f"{where}: no JSON body documented"]
    pointer = _pointer("paths", template, method.lower(), "responses", str(status))
    schema = {"$ref": f"{OPENAPI_URI}#{pointer}/content/application~1json/schema"}
    validator = Draft202012Validator(
        schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return [f"{where}: {e.json_path}: {e.message}" for e in validator.iter_errors(body)]


def error_body_errors(body: Any) -> list[str]:
    """What is wrong with an error body, judged by the OpenAPI document's `Error`."""
    _, registry = _openapi()
    validator = Draft202012Validator(
        {"$ref": f"{OPENAPI_URI}#/components/schemas/Error"}, registry=registry
    )
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(body)]


async def api(
    address: tuple[str, int],
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """`http` to the /v1/sessions API; the response must match the OpenAPI document."""
    status, answer = await http(address, method, path, body, headers)
    assert openapi_errors(method, path, status, answer) == [], answer
    return status, answer
