"""The fault matrix's faults: kill -9 or SIGSTOP (a hang) of one part, and its clearing.

Every part is a process this test started itself: the servers are the
`servers` fixture's throwaway instances (loopback, free ports), core and the
outbox relay run as their own binaries here, the edges as in e2e_testing.
A kill takes the whole process tree (a PostgreSQL backend left alive would
blunt it) and is cleared by starting the part again on the same address; a
hang stops the whole tree and is cleared by SIGCONT to exactly those pids.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from libs.testing.fixtures import ServerControl
from libs.testing.ports import free_port
from services.session_core.harness import jwt_env, wait_serving
from tests.e2e.e2e_testing import Edge, System
from tools.servers.servers import signal_tree

SERVERS = ("redis", "rabbitmq", "postgres")
TARGETS = (*SERVERS, "core", "relay", "edge")
MODES = ("kill", "stop")


def _binary(variable: str) -> str:
    path = os.environ.get(variable)
    if not path:
        raise RuntimeError(f"{variable} is not set: run through `bazel test`")
    return str(Path(path).resolve())


@dataclass
class Service:
    """core or the outbox relay as a process of its own, restartable on the same port."""

    name: str
    binary: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                self.binary,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self.env},
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        if self.name == "core":
            process = self.process
            await wait_serving(self.port, alive=lambda: process.returncode is None)

    @property
    def pid(self) -> int:
        assert self.process is not None and self.process.returncode is None, self.name
        return self.process.pid

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            signal_tree(self.process.pid, signal.SIGKILL)
            await self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.asynccontextmanager
async def core_and_relay(
    pg_dsn: str, redis_url: str, amqp_url: str, workdir: Path
) -> AsyncIterator[tuple[Service, Service]]:
    """core (relay not in process) and the relay, both killed on exit."""
    common = {
        "HOME": str(workdir),
        "SYNCBRIDGE_CORE_PG_DSN": pg_dsn,
        "SYNCBRIDGE_CORE_REDIS_URL": redis_url,
        "SYNCBRIDGE_CORE_AMQP_URL": amqp_url,
        "SYNCBRIDGE_CORE_PG_POOL_SIZE": "8",
        "SYNCBRIDGE_CORE_LOG_LEVEL": "WARNING",
    }
    core = Service("core", _binary("CORE_BIN"), {}, workdir / "core.log")
    core.env = {
        **common,
        "SYNCBRIDGE_CORE_GRPC_PORT": str(core.port),
        "SYNCBRIDGE_CORE_METRICS_PORT": "0",
        "SYNCBRIDGE_CORE_RELAY_IN_PROCESS": "false",
        "SYNCBRIDGE_CORE_GRACE_SECONDS": "2",
        # Core verifies the tokens the edges forward: it trusts the harness's key.
        **jwt_env(),
    }
    relay = Service("relay", _binary("RELAY_BIN"), {}, workdir / "relay.log")
    relay.env = {**common, "SYNCBRIDGE_CORE_RELAY_METRICS_PORT": str(relay.port)}
    try:
        await core.start()
        await relay.start()
        yield core, relay
    finally:
        await relay.kill()
        await core.kill()


async def _gone(pids: list[int], within: float = 10) -> None:
    """Until none of `pids` is a live process (a zombie counts as gone)."""
    async with asyncio.timeout(within):
        while True:
            if not any(_alive(pid) for pid in pids):
                return
            await asyncio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


@dataclass
class Parts:
    """Everything a fault can hit."""

    system: System
    servers: ServerControl
    core: Service
    relay: Service
    edge: Edge  # the replica the edge faults hit


@dataclass(frozen=True)
class Fault:
    target: str
    mode: str

    def __str__(self) -> str:
        return f"{self.target}_{self.mode}"

    async def inject(self, parts: Parts) -> list[int]:
        """Kills or stops the target; returns the pids it stopped (for `clear`)."""
        sig = signal.SIGKILL if self.mode == "kill" else signal.SIGSTOP
        if self.target in SERVERS:
            pids = await asyncio.to_thread(parts.servers.signal, self.target, sig)
            if self.mode == "kill":
                await _gone(pids)
            return pids
        if self.target == "edge":
            pids = signal_tree(parts.edge.process.pid, sig)
            if self.mode == "kill":
                await parts.edge.process.wait()
            return pids
        service = parts.core if self.target == "core" else parts.relay
        if self.mode == "kill":
            pid = service.pid
            await service.kill()
            return [pid]
        return signal_tree(service.pid, sig)

    async def clear(self, parts: Parts, stopped: list[int]) -> None:
        """Starts the killed part again on its address, or lets the stopped one run on."""
        if self.mode == "stop":
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            return
        if self.target in SERVERS:
            await asyncio.to_thread(parts.servers.start, self.target)
        elif self.target == "edge":
            edge = parts.edge
            parts.edge = await parts.system.start_edge(f"{edge.name}-again", port=edge.port)
        else:
            await (parts.core if self.target == "core" else parts.relay).start()


MATRIX = [Fault(target, mode) for target in TARGETS for mode in MODES]
