"""The Redis layout on a real Redis Cluster: 3 masters + 3 replicas, as staging runs.

One session's keys share a hash tag, so its pipelines and Lua script stay in
one slot; a cross-slot layout would fail here with CROSSSLOT errors.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio.cluster import RedisCluster

from services.session_core.cache import key
from services.session_core.harness import as_user, core_config, running_core, stub_for
from services.session_core.server import Running
from syncbridge.session.v1 import session_pb2

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_ports(count: int) -> list[int]:
    """`count` consecutive ports whose cluster-bus twins (+10000) are free too."""
    for _ in range(50):
        base = random.randrange(20000, 30000)  # noqa: S311 - a port, not a secret
        ports = list(range(base, base + count))
        if all(_free(p) and _free(p + 10000) for p in ports):
            return ports
    raise RuntimeError("no free port range for a Redis Cluster")


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[list[int]]:
    ports = _cluster_ports(6)
    procs = []
    for port in ports:
        workdir = tmp_path / str(port)
        workdir.mkdir()
        procs.append(
            subprocess.Popen(
                [
                    "/usr/bin/redis-server",
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--dir",
                    str(workdir),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--maxmemory-policy",
                    "volatile-lru",
                ],
                stdout=subprocess.DEVNULL,
            )
        )
    try:
        deadline = time.monotonic() + 10
        while not all(not _free(p) for p in ports):
            assert time.monotonic() < deadline, "redis cluster nodes did not start"
            time.sleep(0.05)
        subprocess.run(
            [
                "/usr/bin/redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 20
        while True:
            info = subprocess.run(
                ["/usr/bin/redis-cli", "-p", str(ports[0]), "cluster", "info"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            if "cluster_state:ok" in info:
                break
            assert time.monotonic() < deadline, info
            time.sleep(0.2)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


@pytest_asyncio.fixture
async def core_on_cluster(
    pg_dsn: str, amqp_url: str, redis_cluster: list[int]
) -> AsyncIterator[Running]:
    config = core_config(
        pg_dsn, f"redis://127.0.0.1:{redis_cluster[0]}/0", amqp_url, redis_cluster=True
    )
    async with running_core(config) as core:
        yield core


async def test_session_keys_share_a_slot_and_serve_from_cluster(
    core_on_cluster: Running, redis_cluster: list[int]
) -> None:
    async with stub_for(core_on_cluster.port) as stub:
        opened = await stub.OpenSession(
            session_pb2.OpenSessionRequest(device_id="phone"), metadata=as_user("alice")
        )
        session = opened.session
        for n in range(5):
            await stub.ApplyUpdate(
                session_pb2.ApplyUpdateRequest(
                    session_id=session.session_id,
                    device_id="phone",
                    op_id=f"op-{n}",
                    base_version=1 + n,
                    epoch=1,
                    patch_json=json.dumps({"n": n}),
                ),
                metadata=as_user("alice"),
            )
        await stub.UpdatePresence(
            session_pb2.UpdatePresenceRequest(
                session_id=session.session_id,
                device_id="phone",
                edge_id="edge-a",
                action=session_pb2.PRESENCE_ACTION_JOIN,
            ),
            metadata=as_user("alice"),
        )
        replay = await stub.ChangesSince(
            session_pb2.ChangesSinceRequest(session_id=session.session_id, epoch=1, version=1),
            metadata=as_user("alice"),
        )
        assert replay.recovered and [c.version for c in replay.changes] == [2, 3, 4, 5, 6]

    client = RedisCluster(host="127.0.0.1", port=redis_cluster[0])
    try:
        names = ["snap", "log", "presence", "op:op-0"]
        slots = {await client.cluster_keyslot(key(session.session_id, n)) for n in names}
        assert len(slots) == 1
        for name in names:
            assert await client.exists(key(session.session_id, name)) == 1, name
        payload = await client.hget(key(session.session_id, "snap"), "p")
        assert isinstance(payload, bytes)
        cached = session_pb2.Session.FromString(payload)
        assert cached.version == 6
    finally:
        await client.aclose()
    # The cache, not PostgreSQL, answered the replay.
    hits = core_on_cluster.registry.get_sample_value(
        "syncbridge_core_cache_requests_total", {"kind": "change_log", "result": "hit"}
    )
    assert hits is not None and hits >= 1
