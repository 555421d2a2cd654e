"""Benchmark: ApplyUpdate throughput and latency vs pgbench on the same PostgreSQL.

`bazel run //services/session_core:bench` (servers from tools/setup running).
Starts the real core binary and the outbox relay as processes of their own
(`--relay in-process` keeps the relay inside core), drives core over gRPC with
1, 16 and 64 concurrent writers (each a different user's device on its own
session), then runs pgbench at the same concurrency against the same server.

pgbench runs three workloads, one transaction per update, each a single-row
UPDATE of a session:
  txn    the transaction an update needs on its own: lock the row, look up the
         op_id, write session + change log + outbox (+ wake the relay), commit.
         This is the comparable workload: the same rows, the same checks.
  writes the same three writes in one statement, without the lock and op_id
         checks a correct update needs (a looser ceiling).
  bare   a bare single-row UPDATE of one small table (no log, no outbox).
The target (>= 50 % of pgbench at 64 writers) is judged against `txn`; the
ratios to the other two are printed beside it.
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
from prometheus_client import CollectorRegistry

from libs.core_client.client import Caller, CoreClient
from libs.metrics.rpc import rpc_metrics
from services.session_core.harness import as_user, jwt_env, token_for, wait_serving
from syncbridge.session.v1 import session_pb2, session_pb2_grpc
from tools.servers import servers

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"

# pgbench scripts; {sid} is the client's own session row.
_SID = "('00000000-0000-0000-0000-' || lpad(:client_id::text, 12, '0'))::uuid"
_STATE = '\'{"cursor": {"track": 7, "position": 12345}, "mode": "play"}\''
_CHANGE = (
    "INSERT INTO changes (session_id, epoch, version, event_id, kind, patch, paths, op_id,"
    " device_id, active_device, lease_fence, outcome, committed_at)"
)
_OUTBOX = (
    "INSERT INTO outbox (event_id, routing_key, payload)"
    " VALUES (gen_random_uuid(), 'user.' || :client_id, decode(repeat('ab', 160), 'hex'))"
)
# Built from the constants above only (no input reaches them): noqa S608.
WORKLOADS = {
    "txn": f"""BEGIN;
SELECT s.session_id, s.user_id, s.state, s.version, s.epoch, s.active_device, s.lease_fence,
 s.devices, s.created_at, s.updated_at, s.expires_at, now() FROM sessions s
 WHERE s.session_id = {_SID} AND s.user_id = 'pgbench' AND s.expires_at > now()
 FOR UPDATE \\gset cur_
SELECT * FROM changes WHERE session_id = {_SID} AND op_id = 'op' || (:cur_version + 1);
WITH s AS (UPDATE sessions SET state = {_STATE}::jsonb, version = :cur_version + 1,
 active_device = 'd', lease_fence = 1, devices = '{{d}}', updated_at = now(),
 expires_at = now() + interval '7 days' WHERE session_id = {_SID}),
c AS ({_CHANGE} VALUES ({_SID}, 1, :cur_version + 1, gen_random_uuid(), 1, {_STATE},
 '{{"[\\"cursor\\"]","[\\"mode\\"]"}}', 'op' || (:cur_version + 1), 'd', 'd', 1, 1, now())),
o AS ({_OUTBOX})
SELECT pg_notify('syncbridge_outbox', '');
COMMIT;
""",  # noqa: S608
    "writes": f"""WITH s AS (UPDATE sessions SET state = {_STATE}::jsonb, version = version + 1,
 updated_at = now(), expires_at = now() + interval '7 days' WHERE session_id = {_SID}
 RETURNING session_id, version),
c AS ({_CHANGE} SELECT session_id, 1, version, gen_random_uuid(), 1, {_STATE},
 '{{"[\\"cursor\\"]","[\\"mode\\"]"}}', 'op' || version, 'd', 'd', 1, 1, now() FROM s),
o AS ({_OUTBOX})
SELECT 1;
""",  # noqa: S608
    "bare": "UPDATE bench_rows SET v = v + 1, state = '{}' WHERE id = :client_id;\n",
}
BENCH_DB = "syncbridge_bench"
BENCH_REDIS_DB = 1023  # the fixtures allocate upward from 1; the bench uses the top one


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
    core_cpu: float = 0.0  # CPU seconds core (and the relay process) used during the run
    backlog: int = 0  # outbox rows still unpublished when the writers stopped
    drain_seconds: float = 0.0  # until the relay had published them all

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
    admin = await asyncpg.connect(servers.default_config().postgres_dsn)
    await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {BENCH_DB}")
    await admin.close()
    return servers.default_config().postgres_dsn.rsplit("/", 1)[0] + "/" + BENCH_DB


def _binary(name: str) -> Path:
    binary = Path(os.environ.get("RUNFILES_DIR", ".")) / "harmonyflow_syncbridge" / name
    return binary if binary.exists() else Path(name)


def _start(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(_binary(f"services/session_core/{name}"))], env=env)


def _env(dsn: str, port: int, relay_in_process: bool) -> dict[str, str]:
    redis_base = servers.default_config().redis_url.rsplit("/", 1)[0]
    return {
        **os.environ,
        "SYNCBRIDGE_CORE_PG_DSN": dsn,
        "SYNCBRIDGE_CORE_REDIS_URL": f"{redis_base}/{BENCH_REDIS_DB}",
        "SYNCBRIDGE_CORE_GRPC_PORT": str(port),
        "SYNCBRIDGE_CORE_METRICS_PORT": "0",
        "SYNCBRIDGE_CORE_RELAY_METRICS_PORT": "0",
        "SYNCBRIDGE_CORE_LOG_LEVEL": "WARNING",
        "SYNCBRIDGE_CORE_RELAY_IN_PROCESS": "true" if relay_in_process else "false",
        **jwt_env(),
    }


async def _drive(
    stub: session_pb2_grpc.SessionServiceAsyncStub,
    client: CoreClient | None,
    concurrency: int,
    seconds: float,
) -> Result:
    """Writers as devices: each its own user and session, one update at a time.

    With `client` (the edge's CoreClient), updates go to core as the edge
    sends them: the updates waiting at once share an ApplyUpdates call.
    Without, each is a unary ApplyUpdate.
    """
    users = [f"bench-{concurrency}-{n}" for n in range(concurrency)]
    # Core verifies every update's token, as it does the edge's: one per device.
    tokens = {user: token_for(user, lifetime=3600) for user in users}
    sessions = [
        (
            await stub.OpenSession(
                session_pb2.OpenSessionRequest(device_id="d"),
                metadata=as_user(user, tokens[user]),
            )
        ).session
        for user in users
    ]
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    patch = {"cursor": {"track": 7, "position": 12345}, "mode": "play"}
    payload = json.dumps(patch)

    async def apply(user: str, session: session_pb2.Session, n: int, version: int) -> int:
        if client is not None:
            answer = await client.apply_update(
                Caller(user, tokens[user]),
                session_id=session.session_id,
                device_id="d",
                op_id=f"{n}",
                base_version=version,
                epoch=session.epoch,
                patch=patch,
            )
            return int(answer.change.version)
        reply = await stub.ApplyUpdate(
            session_pb2.ApplyUpdateRequest(
                session_id=session.session_id,
                device_id="d",
                op_id=f"{n}",
                base_version=version,
                epoch=session.epoch,
                patch_json=payload,
            ),
            metadata=as_user(user, tokens[user]),
            timeout=10,
        )
        return int(reply.change.version)

    async def writer(user: str, session: session_pb2.Session) -> None:
        version = session.version
        n = 0
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            version = await apply(user, session, n, version)
            latencies.append(time.perf_counter() - started)
            n += 1

    started = time.perf_counter()
    await asyncio.gather(*(writer(u, s) for u, s in zip(users, sessions, strict=True)))
    return Result(concurrency, len(latencies), time.perf_counter() - started, latencies)


async def _drain(dsn: str, result: Result) -> None:
    """Waits for the relay to publish what the run left in the outbox."""
    conn = await asyncpg.connect(dsn)
    started = time.perf_counter()
    result.backlog = await conn.fetchval("SELECT count(*) FROM outbox")
    for _ in range(1200):  # at most a minute
        if not await conn.fetchval("SELECT count(*) FROM outbox"):
            break
        await asyncio.sleep(0.05)
    result.drain_seconds = time.perf_counter() - started
    await conn.close()


async def _prepare_pgbench(dsn: str, clients: int) -> None:
    """Rows for pgbench: one session per client (ids the scripts compute), bench_rows."""
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "INSERT INTO sessions (session_id, user_id, state, version, active_device, devices,"
        " expires_at) SELECT ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid,"
        " 'pgbench', '{}', 0, 'd', '{d}', now() + interval '7 days'"
        " FROM generate_series(0, $1) g",
        clients,
    )
    await conn.execute(
        "CREATE TABLE bench_rows (id int PRIMARY KEY, v bigint NOT NULL, state jsonb)"
    )
    await conn.execute(
        "INSERT INTO bench_rows SELECT g, 0, '{}' FROM generate_series(0, $1) g", clients
    )
    await conn.close()


def _pgbench(dsn: str, workload: str, concurrency: int, seconds: float) -> float:
    """pgbench TPS for one of WORKLOADS, `concurrency` clients, one row each."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(WORKLOADS[workload])
    try:
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
    finally:
        os.unlink(script.name)
    match = re.search(r"tps = ([0-9.]+)", out)
    if match is None:
        raise RuntimeError(f"pgbench printed no tps:\n{out}")
    return float(match.group(1))


async def main_async(seconds: float, levels: list[int], relay_in_process: bool, unary: bool) -> int:
    servers.start(servers.NAMES)
    servers.redis_command("FLUSHDB", db=BENCH_REDIS_DB)
    dsn = await _reset_database()
    port = _free_port()
    env = _env(dsn, port, relay_in_process)
    processes = [_start("session_core", env)]
    results: list[Result] = []
    try:
        await wait_serving(port, within=60, alive=lambda: processes[0].poll() is None)
        if not relay_in_process:
            processes.append(_start("outbox_relay", env))
        client = (
            None
            if unary
            else CoreClient(
                f"127.0.0.1:{port}",
                deadline=10,
                attempts=1,
                metrics=rpc_metrics(CollectorRegistry(), "bench_core"),
            )
        )
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = session_pb2_grpc.SessionServiceStub(channel)
            for level in levels:
                before = sum(cpu_seconds(p.pid) for p in processes)
                result = await _drive(stub, client, level, seconds)
                await _drain(dsn, result)
                result.core_cpu = sum(cpu_seconds(p.pid) for p in processes) - before
                results.append(result)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
    await _prepare_pgbench(dsn, max(levels))
    relay = "in core" if relay_in_process else "own process"
    calls = "unary ApplyUpdate" if unary else "the edge's CoreClient (ApplyUpdates)"
    print(f"\ncalls: {calls}; relay: {relay}; CPU/op counts core and relay;")
    print("backlog: outbox rows left when the writers stopped, drained: until published")
    header = ("clients", "core ups/s", "p50 ms", "p99 ms", "CPU/op", "backlog", "drained")
    print("{:>7} {:>10} {:>7} {:>7} {:>8} {:>7} {:>8}".format(*header), end="")
    print("".join(f" {'pgbench ' + w:>15} {'ratio':>6}" for w in WORKLOADS))
    verdict = "not measured (add 64 to --levels)"
    for result in results:
        print(
            f"{result.concurrency:>7} {result.rate:>10.0f} {result.pct(0.50):>7.1f}"
            f" {result.pct(0.99):>7.1f} {result.core_cpu / result.ops * 1000:>6.2f}ms"
            f" {result.backlog:>7} {result.drain_seconds:>7.1f}s",
            end="",
        )
        for workload in WORKLOADS:
            ceiling = _pgbench(dsn, workload, result.concurrency, seconds)
            ratio = result.rate / ceiling
            print(f" {ceiling:>15.0f} {ratio:>6.0%}", end="")
            if result.concurrency == 64 and workload == "txn":
                verdict = f"{'met' if ratio >= 0.5 else 'NOT met'} ({ratio:.0%})"
        print()
    print(
        f"\nmedian latency over all levels: {statistics.median(r.pct(0.5) for r in results):.2f} ms"
    )
    print("target (>= 50 % of pgbench's comparable txn workload at 64 clients):", verdict)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="per concurrency level")
    parser.add_argument("--levels", default="1,16,64")
    parser.add_argument(
        "--relay",
        choices=("process", "in-process"),
        default="process",
        help="run the outbox relay as its own process (as deployed) or inside core",
    )
    parser.add_argument(
        "--calls",
        choices=("edge", "unary"),
        default="edge",
        help="send updates as the edge does (coalesced ApplyUpdates) or one unary call each",
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    return asyncio.run(
        main_async(args.seconds, levels, args.relay == "in-process", args.calls == "unary")
    )


if __name__ == "__main__":
    sys.exit(main())
