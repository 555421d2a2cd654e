"""Benchmark: ApplyUpdate throughput and latency vs pgbench on the same PostgreSQL.

`bazel run //services/session_core:bench` (servers from tools/setup running).
Starts the real core binary as its own process, drives it over gRPC with
1, 16 and 64 concurrent writers (each on its own session, as devices are),
then runs pgbench's single-row UPDATE at the same concurrency against the same
server: the practical ceiling. Prints both and the ratio (target: >= 50 % at 64).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc

from services.session_core.harness import wait_serving
from syncbridge.session.v1 import session_pb2, session_pb2_grpc
from tools.servers import servers

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
BENCH_DB = "syncbridge_bench"
BENCH_REDIS_DB = 1023  # the fixtures allocate upward from 1; the bench uses the top one
USER = (("x-syncbridge-user", "bench"),)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    concurrency: int
    ops: int
    seconds: float
    latencies: list[float]
    core_cpu: float = 0.0  # CPU seconds the core process used during the run

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _reset_database() -> str:
    admin = await asyncpg.connect(servers.POSTGRES_DSN)
    await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {BENCH_DB}")
    await admin.close()
    return str(servers.POSTGRES_DSN).rsplit("/", 1)[0] + "/" + BENCH_DB


def _start_core(dsn: str, port: int) -> subprocess.Popen[bytes]:
    binary = (
        Path(os.environ.get("RUNFILES_DIR", "."))
        / "harmonyflow_syncbridge/services/session_core/session_core"
    )
    if not binary.exists():
        binary = Path("services/session_core/session_core")
    env = {
        **os.environ,
        "SYNCBRIDGE_CORE_PG_DSN": dsn,
        "SYNCBRIDGE_CORE_REDIS_URL": f"{servers.REDIS_URL.rsplit('/', 1)[0]}/{BENCH_REDIS_DB}",
        "SYNCBRIDGE_CORE_GRPC_PORT": str(port),
        "SYNCBRIDGE_CORE_METRICS_PORT": "0",
        "SYNCBRIDGE_CORE_PG_POOL_SIZE": "70",
        "SYNCBRIDGE_CORE_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([str(binary)], env=env)


async def _drive(
    stub: session_pb2_grpc.SessionServiceStub, concurrency: int, seconds: float
) -> Result:
    sessions = [
        (
            await stub.OpenSession(session_pb2.OpenSessionRequest(device_id="d"), metadata=USER)
        ).session
        for _ in range(concurrency)
    ]
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    payload = json.dumps({"cursor": {"track": 7, "position": 12345}, "mode": "play"})

    async def writer(session: session_pb2.Session) -> None:
        version = session.version
        n = 0
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            reply = await stub.ApplyUpdate(
                session_pb2.ApplyUpdateRequest(
                    session_id=session.session_id,
                    device_id="d",
                    op_id=f"{n}",
                    base_version=version,
                    epoch=session.epoch,
                    patch_json=payload,
                ),
                metadata=USER,
                timeout=10,
            )
            latencies.append(time.perf_counter() - started)
            version = reply.change.version
            n += 1

    started = time.perf_counter()
    await asyncio.gather(*(writer(s) for s in sessions))
    return Result(concurrency, len(latencies), time.perf_counter() - started, latencies)


def _pgbench(dsn: str, concurrency: int, seconds: float) -> float:
    """pgbench TPS for a single-row UPDATE per transaction, one row per client."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(
            'UPDATE bench_rows SET v = v + 1, state = \'{"mode": "play"}\' WHERE id = :client_id;\n'
        )
    out = subprocess.run(
        [
            PGBENCH,
            "-n",
            "-c",
            str(concurrency),
            "-j",
            "2",
            "-T",
            str(int(seconds)),
            "-f",
            script.name,
            dsn,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    os.unlink(script.name)
    match = re.search(r"tps = ([0-9.]+)", out)
    if match is None:
        raise RuntimeError(f"pgbench printed no tps:\n{out}")
    return float(match.group(1))


async def main_async(seconds: float, levels: list[int]) -> int:
    servers.start(servers.NAMES)
    servers.redis_command("FLUSHDB", db=BENCH_REDIS_DB)
    dsn = await _reset_database()
    port = _free_port()
    core = _start_core(dsn, port)
    results: list[Result] = []
    try:
        await wait_serving(port, within=60, alive=lambda: core.poll() is None)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = session_pb2_grpc.SessionServiceStub(channel)  # type: ignore[no-untyped-call]
            for level in levels:
                before = cpu_seconds(core.pid)
                result = await _drive(stub, level, seconds)
                result.core_cpu = cpu_seconds(core.pid) - before
                results.append(result)
    finally:
        core.terminate()
        core.wait(timeout=30)
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "CREATE TABLE bench_rows (id int PRIMARY KEY, v bigint NOT NULL, state jsonb)"
    )
    await conn.execute(
        "INSERT INTO bench_rows SELECT g, 0, '{}' FROM generate_series(0, $1) g", max(levels)
    )
    await conn.close()
    header = ("clients", "core ups/s", "p50 ms", "p99 ms", "core CPU/op", "pgbench tps", "ratio")
    print("\n{:>7} {:>11} {:>8} {:>8} {:>11} {:>12} {:>6}".format(*header))
    verdict = "not measured (add 64 to --levels)"
    for result in results:
        ceiling = _pgbench(dsn, result.concurrency, seconds)
        ratio = result.rate / ceiling
        print(
            f"{result.concurrency:>7} {result.rate:>11.0f} {result.pct(0.50):>8.2f} "
            f"{result.pct(0.99):>8.2f} {result.core_cpu / result.ops * 1000:>9.2f}ms "
            f"{ceiling:>12.0f} {ratio:>6.0%}"
        )
        if result.concurrency == 64:
            verdict = "met" if ratio >= 0.5 else "NOT met"
    print(
        f"\nmedian latency over all levels: {statistics.median(r.pct(0.5) for r in results):.2f} ms"
    )
    print("target (>= 50 % of pgbench at 64 clients):", verdict)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="per concurrency level")
    parser.add_argument("--levels", default="1,16,64")
    args = parser.parse_args()
    return asyncio.run(main_async(args.seconds, [int(x) for x in args.levels.split(",")]))


if __name__ == "__main__":
    sys.exit(main())
