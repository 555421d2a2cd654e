"""Benchmark: one ws-edge process holding 1,000 connections, against a bare relay.

    bazel run //services/ws_edge:bench -- [--users 500] [--seconds 10] [--rates 500,250]

Needs the local servers (tools/servers). Starts a session-core and one ws-edge
as processes (fresh database, Redis db and RabbitMQ vhost), connects `users`
users with two devices each through SyncClient (libs/client/loadgen.py), and
measures on the edge process:

1. memory per idle connection: the edge's RSS growth / connections (KiB);
2. sustained updates/s with fan-out: every phone updates back to back;
3. p50/p99 update → other-device latency at fixed rates (500 updates/s, and
   lower ones to show where this machine's capacity ends).

Then the same three on `broadcast_baseline` (bare `websockets`, relay only)
with raw connections, and the ratios. Everything shares this machine's cores:
the client side runs in this process, PostgreSQL, RabbitMQ and core next to it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from libs.auth import testing
from libs.client import loadgen
from tools.servers import servers

RUNFILES = Path.cwd()


def binary(path: str) -> str:
    return str((RUNFILES / path).resolve())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def settled_rss(pid: int, seconds: float = 2.0) -> int:
    await asyncio.sleep(seconds)
    return rss_kib(pid)


@dataclass
class Result:
    name: str
    idle_kib_per_connection: float
    updates_per_second: float
    deliveries_per_second: float
    latencies: dict[float, list[float]] = field(default_factory=dict)

    def row(self, rate: float) -> str:
        p50 = loadgen.percentile(self.latencies[rate], 50) * 1000
        p99 = loadgen.percentile(self.latencies[rate], 99) * 1000
        return (
            f"{self.name:<22} {self.idle_kib_per_connection:>10.1f} "
            f"{self.updates_per_second:>12.0f} {self.deliveries_per_second:>12.0f} "
            f"{p50:>9.1f} {p99:>9.1f}"
        )


# -- backends and processes ---------------------------------------------------


@contextlib.asynccontextmanager
async def backends() -> AsyncIterator[tuple[str, str, str]]:
    """A fresh PostgreSQL database, Redis db and RabbitMQ vhost on the local servers."""
    tag = secrets.token_hex(4)
    database, vhost, redis_db = f"bench_{tag}", f"bench_{tag}", 1000
    servers.psql(f'CREATE DATABASE "{database}"')
    servers.management_request("PUT", f"vhosts/{vhost}")
    servers.management_request(
        "PUT",
        f"permissions/{vhost}/{servers.RABBITMQ_USER}",
        {"configure": ".*", "write": ".*", "read": ".*"},
    )
    servers.redis_command("FLUSHDB", db=redis_db)
    host, shared = servers.HOST, servers.default_config()
    try:
        yield (
            f"postgresql://{servers.POSTGRES_USER}@{host}:{shared.postgres_port}/{database}",
            f"redis://{host}:{shared.redis_port}/{redis_db}",
            f"amqp://{servers.RABBITMQ_USER}:{servers.RABBITMQ_PASSWORD}@{host}:"
            f"{shared.amqp_port}/{vhost}",
        )
    finally:
        servers.redis_command("FLUSHDB", db=redis_db)
        servers.management_request("DELETE", f"vhosts/{vhost}")
        servers.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def process(
    argv: list[str], env: dict[str, str], ready: Callable[[], bool], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    # Not this binary's runfiles variables: each binary finds its own.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("RUNFILES", "PYTHON"))}
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *argv, env={**inherited, **env}, stdout=out, stderr=asyncio.subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while not ready():
            if proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]} did not start:\n{_tail(log)}")
            await asyncio.sleep(0.1)
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def port_open(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    return check


# -- ws-edge --------------------------------------------------------------------


async def bench_edge(args: argparse.Namespace, workdir: Path) -> Result:
    key = testing.ec_key()
    key_path = testing.write_pem(workdir / "jwt.pem", key)
    core_port, port_file = free_port(), workdir / "edge.port"
    async with backends() as (pg_dsn, redis_url, amqp_url):
        core_env = {
            "SYNCBRIDGE_CORE_GRPC_PORT": str(core_port),
            "SYNCBRIDGE_CORE_METRICS_PORT": str(free_port()),
            "SYNCBRIDGE_CORE_PG_DSN": pg_dsn,
            "SYNCBRIDGE_CORE_REDIS_URL": redis_url,
            "SYNCBRIDGE_CORE_AMQP_URL": amqp_url,
            "SYNCBRIDGE_CORE_LOG_LEVEL": "WARNING",
            # Core verifies the tokens the edge forwards: the edge's key.
            "SYNCBRIDGE_CORE_JWT_PUBLIC_KEY_PATH": key_path,
            "SYNCBRIDGE_CORE_JWT_ISSUER": testing.ISSUER,
            "SYNCBRIDGE_CORE_JWT_AUDIENCE": testing.AUDIENCE,
            "SYNCBRIDGE_CORE_JWT_ALGORITHMS": "ES256",
        }
        edge_env = {
            "SYNCBRIDGE_EDGE_PORT": "0",
            "SYNCBRIDGE_EDGE_PORT_FILE": str(port_file),
            "SYNCBRIDGE_EDGE_CORE_TARGET": f"127.0.0.1:{core_port}",
            "SYNCBRIDGE_EDGE_AMQP_URL": amqp_url,
            "SYNCBRIDGE_EDGE_JWT_PUBLIC_KEY_PATH": key_path,
            "SYNCBRIDGE_EDGE_JWT_ISSUER": testing.ISSUER,
            "SYNCBRIDGE_EDGE_JWT_AUDIENCE": testing.AUDIENCE,
            "SYNCBRIDGE_EDGE_JWT_ALGORITHMS": "ES256",
            "SYNCBRIDGE_EDGE_LOG_LEVEL": "WARNING",
            "SYNCBRIDGE_EDGE_RATE_PER_SECOND": "1000",
            "SYNCBRIDGE_EDGE_RATE_BURST": "1000",
        }
        core_bin = binary("services/session_core/session_core")
        edge_bin = binary("services/ws_edge/ws_edge")
        async with (
            process([core_bin], core_env, port_open(core_port), workdir / "core.log") as core,
            process([edge_bin], edge_env, port_file.exists, workdir / "edge.log") as edge,
        ):
            url = f"ws://127.0.0.1:{int(port_file.read_text())}/session/connect"
            before = await settled_rss(edge.pid, 1.0)
            started = time.perf_counter()
            pairs = await loadgen.connect_pairs(
                [url],
                args.users,
                lambda user: testing.sign(testing.claims(3600, sub=user), key, "ES256"),
            )
            print(
                f"  ws-edge: {2 * args.users} connections in {time.perf_counter() - started:.1f} s"
            )
            after = await settled_rss(edge.pid)
            per_connection = (after - before) / (2 * args.users)
            cpu = (cpu_seconds(edge.pid), cpu_seconds(core.pid), time.process_time())
            updates, deliveries = await loadgen.sustained(pairs, args.seconds)
            print(f"  ws-edge: sustained {updates:.0f} updates/s, {deliveries:.0f} deliveries/s")
            used = (
                cpu_seconds(edge.pid) - cpu[0],
                cpu_seconds(core.pid) - cpu[1],
                time.process_time() - cpu[2],
            )
            count = updates * args.seconds
            print(
                "  CPU per update: "
                + ", ".join(
                    f"{name} {seconds / count * 1000:.2f} ms "
                    f"({seconds / args.seconds:.0%} of a core)"
                    for name, seconds in zip(("edge", "core", "clients"), used, strict=True)
                )
            )
            latencies = {}
            for rate in args.rates:
                latencies[rate] = await loadgen.fixed_rate(pairs, rate, args.seconds)
                print(f"  ws-edge: at {rate:.0f}/s {loadgen.summary_ms(latencies[rate])}")
            await loadgen.close_pairs(pairs)
    return Result("ws-edge (Sanic)", per_connection, updates, deliveries, latencies)


# -- bare websockets -------------------------------------------------------------


@dataclass
class RawPair:
    phone: ClientConnection
    laptop: ClientConnection
    acks: asyncio.Queue[None] = field(default_factory=asyncio.Queue)
    latencies: list[float] = field(default_factory=list)
    delivered: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self._read_acks()),
            asyncio.create_task(self._read_changes()),
        ]

    async def _read_acks(self) -> None:
        async for _ in self.phone:
            self.acks.put_nowait(None)

    async def _read_changes(self) -> None:
        async for message in self.laptop:
            self.delivered += 1
            sent = json.loads(message)["t"]
            self.latencies.append(time.perf_counter() - sent)

    async def update(self, n: int) -> None:
        await self.phone.send(json.dumps({"n": n, "t": time.perf_counter()}))


async def bench_baseline(args: argparse.Namespace, workdir: Path) -> Result:
    port_file = workdir / "baseline.port"
    argv = [binary("services/ws_edge/broadcast_baseline"), str(port_file)]
    async with process(argv, {}, port_file.exists, workdir / "baseline.log") as server:
        url = f"ws://127.0.0.1:{int(port_file.read_text())}/"
        before = await settled_rss(server.pid, 1.0)
        gate = asyncio.Semaphore(50)

        async def pair(n: int) -> RawPair:
            async with gate:
                phone = await connect(url, compression=None, proxy=None)
                laptop = await connect(url, compression=None, proxy=None)
                await phone.send(f"join load-{n}")
                await laptop.send(f"join load-{n}")
            made = RawPair(phone, laptop)
            made.start()
            return made

        pairs = list(await asyncio.gather(*(pair(n) for n in range(args.users))))
        after = await settled_rss(server.pid)
        per_connection = (after - before) / (2 * args.users)

        stop = asyncio.Event()
        acked = 0

        async def drive(p: RawPair) -> None:
            nonlocal acked
            n = 0
            while not stop.is_set():
                n += 1
                await p.update(n)
                await p.acks.get()
                acked += 1

        delivered_before = sum(p.delivered for p in pairs)
        tasks = [asyncio.create_task(drive(p)) for p in pairs]
        started = time.perf_counter()
        await asyncio.sleep(args.seconds)
        stop.set()
        elapsed = time.perf_counter() - started
        updates = acked / elapsed
        await asyncio.gather(*tasks)
        deliveries = (sum(p.delivered for p in pairs) - delivered_before) / elapsed
        print(f"  baseline: sustained {updates:.0f} messages/s, {deliveries:.0f} deliveries/s")

        latencies = {}
        for rate in args.rates:
            for p in pairs:
                p.latencies.clear()
            loop = asyncio.get_running_loop()
            start, interval = loop.time(), 1.0 / rate
            for n in range(int(rate * args.seconds)):
                await pairs[n % len(pairs)].update(n)
                delay = start + (n + 1) * interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.sleep(1.0)
            latencies[rate] = [latency for p in pairs for latency in p.latencies]
            print(f"  baseline: at {rate:.0f}/s {loadgen.summary_ms(latencies[rate])}")
        for p in pairs:
            for task in p.tasks:
                task.cancel()
            await p.phone.close()
            await p.laptop.close()
    return Result("bare websockets relay", per_connection, updates, deliveries, latencies)


# -- report -----------------------------------------------------------------------


def report(edge: Result, base: Result, args: argparse.Namespace) -> None:
    print()
    print(
        f"{2 * args.users} connections ({args.users} users x 2 devices), "
        f"{args.seconds:.0f} s phases, {os.cpu_count()} CPUs shared by everything"
    )

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "n/a"

    for rate in args.rates:
        print(f"\nlatency at a fixed {rate:.0f} updates/s:")
        print(
            f"{'':<22} {'KiB/idle':>10} {'updates/s':>12} {'deliveries/s':>12} "
            f"{'p50 ms':>9} {'p99 ms':>9}"
        )
        print(edge.row(rate))
        print(base.row(rate))
        p50 = [loadgen.percentile(r.latencies[rate], 50) for r in (edge, base)]
        p99 = [loadgen.percentile(r.latencies[rate], 99) for r in (edge, base)]
        print(
            f"{'ws-edge / baseline':<22} "
            f"{ratio(edge.idle_kib_per_connection, base.idle_kib_per_connection):>10} "
            f"{ratio(edge.updates_per_second, base.updates_per_second):>12} "
            f"{ratio(edge.deliveries_per_second, base.deliveries_per_second):>12} "
            f"{ratio(*p50):>9} {ratio(*p99):>9}"
        )


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="syncbridge-bench-") as tmp:
        workdir = Path(tmp)
        print("ws-edge + session-core:")
        edge = await bench_edge(args, workdir)
        gc.collect()
        print("bare websockets relay:")
        base = await bench_baseline(args, workdir)
        report(edge, base, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--rates",
        type=lambda text: [float(rate) for rate in text.split(",")],
        default=[500.0, 250.0],
        help="fixed update rates for the latency phase, comma-separated",
    )
    args = parser.parse_args(argv)
    missing = [name for name in servers.NAMES if not servers.is_running(name)]
    if missing:
        print(f"start the servers first: python3 tools/servers/servers.py start ({missing})")
        return 2
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
