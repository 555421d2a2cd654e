"""Starts and reaches a real session-core: for tests, the benchmark and the edge's tests.

The one door other packages' tests use into core (testonly, so no image can
ship it): they import `Running` and the helpers from here, never core's modules.

Core verifies every caller's token: the cores started here trust one key made
per test process (`signing_key()`), which `token_for`/`as_user` sign with and
which the edge's tests give their edges, as the edge and core of a deployment
share their issuer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.auth import testing
from libs.config.settings import load_config
from libs.identity import identity
from libs.tls.pki import CertificateAuthority, Issued
from services.session_core import server
from services.session_core.config import CoreConfig
from services.session_core.server import Running as Running
from syncbridge.session.v1 import session_pb2_grpc


@functools.cache
def signing_key() -> testing.PrivateKey:
    """The key the cores started here trust; made once per process, never stored."""
    return testing.ec_key()


@functools.cache
def public_key_path() -> str:
    """A PEM file of `signing_key()`'s public half (in the test's temporary directory)."""
    directory = tempfile.mkdtemp(prefix="core-jwt-")
    return testing.write_pem(Path(directory) / "public.pem", signing_key())


def token_for(user: str, lifetime: float = 300, **claims: Any) -> str:
    """A bearer token for `user` that the harness's cores accept."""
    return testing.sign(testing.claims(lifetime, sub=user, **claims), signing_key(), "ES256")


SERVER_NAME = "session-core"  # the name core's test certificate carries


@dataclasses.dataclass
class Pki:
    """A private CA for one test: core's server certificate, clients on demand."""

    directory: Path
    ca: CertificateAuthority
    ca_path: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def create(cls, directory: Path) -> Pki:
        ca = CertificateAuthority()
        ca_path = directory / "ca.crt"
        directory.mkdir(parents=True, exist_ok=True)
        ca_path.write_bytes(ca.cert_pem)
        cert, key = ca.issue(SERVER_NAME, server=True).write(directory, "core")
        return cls(directory, ca, ca_path, cert, key)

    def client(self, identity: str) -> Issued:
        """A client certificate of this CA naming `identity`."""
        return self.ca.issue(identity)

    def core_settings(self) -> dict[str, Any]:
        """core_config overrides for mTLS with this CA (and a free health port)."""
        return {
            "tls_cert_path": str(self.server_cert),
            "tls_key_path": str(self.server_key),
            "tls_client_ca_path": str(self.ca_path),
            "health_port": 0,
        }


@contextlib.asynccontextmanager
async def tls_stub_for(port: int, pki: Pki, client: Issued | None) -> AsyncIterator[Any]:
    """A SessionService stub over TLS to 127.0.0.1:port, presenting `client` (or no
    certificate), trusting `pki`'s CA for core's."""
    credentials = grpc.ssl_channel_credentials(
        pki.ca.cert_pem,
        client.key_pem if client else None,
        client.cert_pem if client else None,
    )
    options = [("grpc.ssl_target_name_override", SERVER_NAME)]
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials, options) as channel:
        yield session_pb2_grpc.SessionServiceStub(channel)


def jwt_env() -> dict[str, str]:
    """The SYNCBRIDGE_CORE_JWT_* variables of a core process that trusts `signing_key()`."""
    return {
        "SYNCBRIDGE_CORE_JWT_PUBLIC_KEY_PATH": public_key_path(),
        "SYNCBRIDGE_CORE_JWT_ISSUER": testing.ISSUER,
        "SYNCBRIDGE_CORE_JWT_AUDIENCE": testing.AUDIENCE,
        "SYNCBRIDGE_CORE_JWT_ALGORITHMS": "ES256",
    }


def core_config(pg_dsn: str, redis_url: str, amqp_url: str, **overrides: Any) -> CoreConfig:
    """Defaults plus the given backends, on ephemeral loopback ports, trusting `signing_key()`."""
    config = load_config(CoreConfig, {})
    settings: dict[str, Any] = {
        "grpc_port": 0,
        "metrics_port": 0,
        "pg_dsn": pg_dsn,
        "redis_url": redis_url,
        "amqp_url": amqp_url,
        "pg_pool_size": 8,
        "grace_seconds": 2.0,
        "jwt_public_key_path": public_key_path(),
        "jwt_jwks_path": "",
        "jwt_issuer": testing.ISSUER,
        "jwt_audience": testing.AUDIENCE,
        "jwt_algorithms": ("ES256",),
        "jwt_leeway_seconds": 0.0,
    }
    return dataclasses.replace(config, **(settings | overrides))


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port where nothing answers while the block runs: this process holds it
    bound without listening, so connections are refused and no other process can take it.
    (A fixed "unused" port such as 9 or 1 is only unused until something listens there.)"""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def running_core(config: CoreConfig) -> AsyncIterator[Running]:
    """A started core; shut down (gracefully) on exit."""
    running = await server.start(config)
    try:
        yield running
    finally:
        await running.shutdown()


@contextlib.asynccontextmanager
async def stub_for(port: int) -> AsyncIterator[session_pb2_grpc.SessionServiceAsyncStub]:
    """A SessionService stub on a fresh channel to 127.0.0.1:port."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield session_pb2_grpc.SessionServiceStub(channel)


def as_user(user: str, token: str | None = None) -> tuple[tuple[str, str | bytes], ...]:
    """Call metadata for `user`, as the edge sends it: a token core accepts (`token`, or
    one signed here), and the user as binary metadata (any id fits, libs/identity)."""
    return (
        ("authorization", f"Bearer {token or token_for(user)}"),
        (identity.METADATA_KEY, identity.to_metadata(user)),
    )


async def wait_serving(
    port: int,
    *,
    within: float = 30.0,
    service: str = "",
    alive: Callable[[], bool] = lambda: True,
) -> None:
    """Polls grpc.health.v1 on 127.0.0.1:port until SERVING, while `alive()` holds."""
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
        asyncio.timeout(within),
    ):
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            assert alive(), "core exited during start-up"
            try:
                answer = await health.Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=1
                )
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass  # not listening yet
            await asyncio.sleep(0.1)
