"""A whole SyncBridge on loopback: core in this process, ws-edge replicas as processes.

The edges are the real `//services/ws_edge` binary (WS_EDGE_BIN, from the
test's runfiles), configured through SYNCBRIDGE_EDGE_* like in production,
so SIGTERM, draining and exiting are the real thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from libs.auth import testing
from libs.backoff.backoff import Backoff
from libs.client.client import SyncClient
from services.session_core.harness import (
    as_user,
    core_config,
    public_key_path,
    running_core,
    signing_key,
    stub_for,
)
from syncbridge.session.v1 import session_pb2


class CoreAddress(Protocol):
    """Where the edges reach core: an in-process core (`Running`) or a core process."""

    @property
    def port(self) -> int: ...


def edge_binary() -> str:
    path = os.environ.get("WS_EDGE_BIN")
    if not path:
        raise RuntimeError("WS_EDGE_BIN is not set: run through `bazel test`")
    return str(Path(path).resolve())


@dataclass
class Edge:
    """One ws-edge process."""

    name: str
    port: int
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/session/connect"

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    async def wait(self, within: float) -> int:
        """The exit status; TimeoutError if the process is still running after `within`."""
        try:
            return await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            raise TimeoutError(f"{self.name} still running after {within} s") from None

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class System:
    core: CoreAddress
    amqp_url: str
    key: testing.PrivateKey
    key_path: str
    workdir: Path
    edges: list[Edge] = field(default_factory=list)

    def token(self, user: str, lifetime: float = 600) -> str:
        return testing.sign(testing.claims(lifetime, sub=user), self.key, "ES256")

    async def start_edge(self, name: str, port: int = 0, **settings: str) -> Edge:
        """Starts a replica; returns once it serves (its port file appeared)."""
        port_file = self.workdir / f"{name}.port"
        port_file.unlink(missing_ok=True)
        log_path = self.workdir / f"{name}.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "SYNCBRIDGE_EDGE_ID": name,
            "SYNCBRIDGE_EDGE_PORT": str(port),
            "SYNCBRIDGE_EDGE_PORT_FILE": str(port_file),
            "SYNCBRIDGE_EDGE_CORE_TARGET": f"127.0.0.1:{self.core.port}",
            "SYNCBRIDGE_EDGE_AMQP_URL": self.amqp_url,
            "SYNCBRIDGE_EDGE_JWT_PUBLIC_KEY_PATH": self.key_path,
            "SYNCBRIDGE_EDGE_JWT_ISSUER": testing.ISSUER,
            "SYNCBRIDGE_EDGE_JWT_AUDIENCE": testing.AUDIENCE,
            "SYNCBRIDGE_EDGE_JWT_ALGORITHMS": "ES256",
            "SYNCBRIDGE_EDGE_DRAIN_SPREAD_SECONDS": "1.5",
            "SYNCBRIDGE_EDGE_DRAIN_BATCHES": "4",
            "SYNCBRIDGE_EDGE_GRACE_SECONDS": "8",
            "SYNCBRIDGE_EDGE_LOG_LEVEL": "WARNING",
            **settings,
        }
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                edge_binary(), env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if process.returncode is not None or time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                raise RuntimeError(f"{name} did not start:\n{log_path.read_text()[-3000:]}")
            await asyncio.sleep(0.05)
        edge = Edge(name, int(port_file.read_text()), process, log_path)
        self.edges.append(edge)
        return edge

    def client(
        self, user: str, device: str, urls: list[str], backoff: Backoff | None = None
    ) -> SyncClient:
        return SyncClient(
            urls,
            device_id=device,
            token=self.token(user),
            backoff=backoff or Backoff(base=0.1, cap=1.0),
            request_timeout=20,
        )

    async def read_session(
        self, user: str, session_id: str, token: str | None = None
    ) -> session_pb2.Session:
        """The session as core reads it for `user` (with `token`, else one signed here:
        a caller whose `sub` only fits the token limit unescaped brings its own)."""
        async with stub_for(self.core.port) as stub:
            session: session_pb2.Session = await stub.GetSession(
                session_pb2.GetSessionRequest(session_id=session_id),
                metadata=as_user(user, token),
            )
            return session

    async def op_ids(self, user: str, session_id: str) -> set[str]:
        """Every op_id in the session's change history, as core reads it back."""
        async with stub_for(self.core.port) as stub:
            answer = await stub.ChangesSince(
                session_pb2.ChangesSinceRequest(session_id=session_id, epoch=1, version=0),
                metadata=as_user(user),
            )
            assert answer.recovered, "history of a young session must be replayable"
            return {change.op_id for change in answer.changes if change.op_id}


@contextlib.asynccontextmanager
async def running_system(
    pg_dsn: str, redis_url: str, amqp_url: str, workdir: Path
) -> AsyncIterator[System]:
    async with (
        running_core(core_config(pg_dsn, redis_url, amqp_url)) as core,
        system_around(core, amqp_url, workdir) as system,
    ):
        yield system


@contextlib.asynccontextmanager
async def system_around(core: CoreAddress, amqp_url: str, workdir: Path) -> AsyncIterator[System]:
    """Edges (started later with `start_edge`) for a core that runs elsewhere; every
    edge still running is killed on exit."""
    # Core verifies the tokens the edge forwards: both trust the harness's key.
    key, key_path = signing_key(), public_key_path()
    system = System(core, amqp_url, key, key_path, workdir)
    try:
        yield system
    finally:
        for edge in system.edges:
            if edge.process.returncode is None:
                edge.process.kill()
                await edge.process.wait()


def dump_logs(system: System) -> None:
    """On failure: what the edges said (pytest shows stderr of failing tests)."""
    for edge in system.edges:
        print(f"--- {edge.name} ---\n{edge.log_tail()}", file=sys.stderr)


def states_equal(*states: Any) -> bool:
    first = json.dumps(states[0], sort_keys=True)
    return all(json.dumps(s, sort_keys=True) == first for s in states[1:])
