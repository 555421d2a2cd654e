"""The monitoring, proven on a live stack.

Real session-core, outbox-relay and ws-edge processes on this test's own
Redis, PostgreSQL and RabbitMQ (throwaway servers: stopping Redis disturbs
nobody); redis_exporter, postgres_exporter, node_exporter and RabbitMQ's own
prometheus plugin beside them; Debian's Prometheus scraping all of it with the
committed rules (`for:` cut to live.FOR_SECONDS, see monitoring/README.md).

In file order: nothing fires while healthy; every metric the rules and
dashboards read exists; faults (bad updates, slow consumers, a poison event,
Redis and PostgreSQL stopped, then RabbitMQ) drive the matching alerts
pending -> firing, and ending them resolves the alerts whose windows allow it
within the test; every dashboard panel's query returns a series.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aio_pika
import pytest
from websockets.asyncio.client import ClientConnection, connect

from libs.auth import testing
from libs.bus import messages
from libs.bus.amqp import declare_exchange
from libs.bus.topology import routing_key
from libs.client.client import SyncClient
from libs.testing.ports import free_port
from monitoring import dashboards, live, promql, rules
from tools.servers import servers as _servers

if TYPE_CHECKING:  # imported at run time by pytest as the plugin below
    from libs.testing.fixtures import ThrowawayServers

pytest_plugins = ("libs.testing.fixtures",)

T = TypeVar("T")
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")  # Debian's rabbitmq-server
EXPORTERS = Path(__file__).parent / "exporters"
USER = "alice"


class Loop:
    """An event loop on its own thread: traffic keeps flowing while a test waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], within: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(within)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_all(), within=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class Live:
    prometheus: live.Prometheus
    processes: live.Processes
    targets: dict[str, str]
    config: _servers.Config
    rabbitmq_port: int
    amqp_url: str
    edge_port: int
    key: testing.PrivateKey
    loop: Loop
    session: dict[str, Any]

    def stop(self, *names: str) -> None:
        _servers.stop(names, config=self.config)

    def start(self, *names: str) -> None:
        _servers.start(names, config=self.config)

    def token(self, user: str = USER) -> str:
        return testing.sign(testing.claims(3600, sub=user), self.key, "ES256")

    @property
    def ws_url(self) -> str:
        return f"ws://{live.HOST}:{self.edge_port}/session/connect"

    def edge_metric(self, name: str) -> float:
        _, body = live.http_get(f"http://{self.targets['ws-edge']}/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name) and not line.startswith("#"):
                head, value = line.rsplit(" ", 1)
                if head == name or head.startswith(name + "{"):
                    total += float(value)
        return total


# --- the stack ---------------------------------------------------------------------


def enable_rabbitmq_prometheus(config: _servers.Config, port: int) -> None:
    """RabbitMQ's built-in exporter on a loopback port of its own, not its default one.
    tools/servers writes the enabled plugins at every start: call again after one."""
    env = {**os.environ, **_servers._RabbitMQ(config).env()}
    node = ["--node", config.rabbitmq_node]
    listener = f'[{{ip, "{live.HOST}"}}, {{port, {port}}}]'
    for argv in (
        [str(RABBITMQ_BIN / "rabbitmqctl"), *node, "eval",
         f"application:set_env(rabbitmq_prometheus, tcp_config, {listener})."],
        [str(RABBITMQ_BIN / "rabbitmq-plugins"), *node, "enable", "--online",
         "rabbitmq_prometheus"],
    ):  # fmt: skip
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr


def core_env(config: _servers.Config, **settings: str) -> dict[str, str]:
    return {
        "SYNCBRIDGE_CORE_PG_DSN": config.postgres_dsn,
        "SYNCBRIDGE_CORE_REDIS_URL": config.redis_url,
        "SYNCBRIDGE_CORE_AMQP_URL": config.amqp_url,
        "SYNCBRIDGE_CORE_RELAY_IN_PROCESS": "false",
        "SYNCBRIDGE_CORE_LOG_LEVEL": "WARNING",
        # A device 100 changes behind gets a snapshot, not a replay (default 1000).
        "SYNCBRIDGE_CORE_MAX_REPLAY": "100",
        **settings,
    }


def start_services(
    processes: live.Processes, config: _servers.Config, key_path: str
) -> dict[str, str]:
    """core, relay and edge as the real binaries; their metrics addresses by job."""
    grpc, core_metrics, relay_metrics = free_port(), free_port(), free_port()
    processes.start(
        "session-core",
        [live.runfile("CORE_BIN")],
        core_env(
            config,
            SYNCBRIDGE_CORE_GRPC_PORT=str(grpc),
            SYNCBRIDGE_CORE_METRICS_PORT=str(core_metrics),
        ),
    )
    live.wait_for(
        "core serving", live.answers(f"http://{live.HOST}:{core_metrics}/metrics"), within=60
    )
    # Both variables: the relay reads its own port from one or the other across releases.
    relay_port = str(relay_metrics)
    processes.start(
        "outbox-relay",
        [live.runfile("RELAY_BIN")],
        core_env(
            config,
            SYNCBRIDGE_CORE_METRICS_PORT=relay_port,
            SYNCBRIDGE_CORE_RELAY_METRICS_PORT=relay_port,
        ),
    )
    port_file = processes.workdir / "edge.port"
    processes.start(
        "ws-edge",
        [live.runfile("EDGE_BIN")],
        {
            "SYNCBRIDGE_EDGE_ID": "edge-live",
            "SYNCBRIDGE_EDGE_PORT": "0",
            "SYNCBRIDGE_EDGE_PORT_FILE": str(port_file),
            "SYNCBRIDGE_EDGE_CORE_TARGET": f"{live.HOST}:{grpc}",
            "SYNCBRIDGE_EDGE_AMQP_URL": config.amqp_url,
            "SYNCBRIDGE_EDGE_JWT_PUBLIC_KEY_PATH": key_path,
            "SYNCBRIDGE_EDGE_JWT_ISSUER": testing.ISSUER,
            "SYNCBRIDGE_EDGE_JWT_AUDIENCE": testing.AUDIENCE,
            "SYNCBRIDGE_EDGE_JWT_ALGORITHMS": "ES256",
            "SYNCBRIDGE_EDGE_LOG_LEVEL": "WARNING",
            # Small queues and a short send timeout find a stalled reader in seconds.
            "SYNCBRIDGE_EDGE_OUTBOUND_QUEUE": "16",
            "SYNCBRIDGE_EDGE_SEND_TIMEOUT_SECONDS": "2",
            "SYNCBRIDGE_EDGE_RATE_PER_SECOND": "1000",
        },
    )
    live.wait_for("edge serving", port_file.exists, within=60)
    edge = f"{live.HOST}:{int(port_file.read_text())}"
    live.wait_for("relay serving", live.answers(f"http://{live.HOST}:{relay_port}/metrics"), 60)
    return {
        "session-core": f"{live.HOST}:{core_metrics}",
        "outbox-relay": f"{live.HOST}:{relay_port}",
        "ws-edge": edge,
    }


def start_exporters(processes: live.Processes, config: _servers.Config) -> dict[str, str]:
    redis, postgres, node = free_port(), free_port(), free_port()
    processes.start(
        "redis-exporter",
        [
            live.REDIS_EXPORTER,
            f"--redis.addr=redis://{live.HOST}:{config.redis_port}",
            f"--web.listen-address={live.HOST}:{redis}",
        ],
    )
    processes.start(
        "postgres-exporter",
        [
            live.POSTGRES_EXPORTER,
            f"--web.listen-address={live.HOST}:{postgres}",
            f"--extend.query-path={live.POSTGRES_QUERIES}",
        ],
        {"DATA_SOURCE_NAME": f"{config.postgres_dsn}?sslmode=disable"},
    )
    processes.start(
        "node-exporter",
        [
            live.NODE_EXPORTER,
            f"--web.listen-address={live.HOST}:{node}",
            "--collector.disable-defaults",
            "--collector.cpu",
            "--collector.meminfo",
            "--collector.filesystem",
            "--collector.loadavg",
        ],
    )
    addresses = {
        "redis": f"{live.HOST}:{redis}",
        "postgresql": f"{live.HOST}:{postgres}",
        "node": f"{live.HOST}:{node}",
    }
    for job, address in addresses.items():
        live.wait_for(f"{job} exporter", live.answers(f"http://{address}/metrics"), 30)
    return addresses


async def open_session(url: str, token: str) -> tuple[SyncClient, dict[str, Any]]:
    writer = SyncClient(url, device_id="phone", token=token)
    session = await writer.open(initial_state={"page": 0})
    return writer, session


async def steady_traffic(writer: SyncClient, url: str, token: str, session_id: str) -> None:
    """Updates from one device, read by another: acks, fan-out, cache reads."""
    reader = SyncClient(url, device_id="laptop", token=token)
    await reader.open(session_id)
    n = 0
    while True:
        n += 1
        with contextlib.suppress(Exception):
            await writer.update({"n": n})
        await asyncio.sleep(0.05)


async def raw(url: str, token: str, device: str) -> ClientConnection:
    ws = await connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}, compression=None, proxy=None
    )
    await ws.send(json.dumps({"type": "hello", "device_id": device}))
    await expect(ws, "welcome")
    return ws


async def expect(ws: ClientConnection, kind: str, within: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


async def resume(url: str, token: str, session: dict[str, Any], version: int, device: str) -> str:
    """A device back from an absence at `version`: "ack" (replayed) or "snapshot"."""
    ws = await raw(url, token, device)
    await ws.send(
        json.dumps({"type": "resume", "session_id": session["session_id"],
                    "epoch": session["epoch"], "version": version, "ref": "r"})
    )  # fmt: skip
    async with asyncio.timeout(10):
        while True:
            kind = str(json.loads(await ws.recv())["type"])
            if kind in ("ack", "snapshot"):
                await ws.close()
                return kind


@pytest.fixture(scope="module")
def stack(
    throwaway_servers: ThrowawayServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    config = throwaway_servers.config()
    _servers.start(config=config)
    rabbitmq_port = free_port()
    enable_rabbitmq_prometheus(config, rabbitmq_port)
    workdir = tmp_path_factory.mktemp("live")
    key = testing.ec_key()
    key_path = testing.write_pem(workdir / "jwt.pem", key)
    loop = Loop()
    with live.started(workdir) as processes:
        try:
            targets = start_services(processes, config, key_path)
            targets |= start_exporters(processes, config)
            targets["rabbitmq"] = f"{live.HOST}:{rabbitmq_port}"
            prometheus = live.Prometheus(processes, targets)
            url = f"ws://{targets['ws-edge']}/session/connect"
            token = testing.sign(testing.claims(3600, sub=USER), key, "ES256")
            writer, session = loop.run(open_session(url, token))
            loop.spawn(steady_traffic(writer, url, token, session["session_id"]))
            # a short absence: replayed (the snapshot alert's ratio has a denominator)
            assert loop.run(resume(url, token, session, session["version"], "tablet")) == "ack"
            yield Live(
                prometheus,
                processes,
                targets,
                config,
                rabbitmq_port,
                config.amqp_url,
                int(targets["ws-edge"].rsplit(":", 1)[1]),
                key,
                loop,
                session,
            )
        except BaseException:
            print(processes.logs())
            raise
        finally:
            loop.close()


# --- nothing fires while healthy ------------------------------------------------


def test_every_target_is_scraped_and_nothing_fires_while_healthy(stack: Live) -> None:
    prometheus = stack.prometheus
    live.wait_for(
        "every target up",
        lambda: prometheus.targets_up() == {job: True for job in stack.targets},
        within=30,
    )
    time.sleep(live.FOR_SECONDS * 2)  # long enough for any wrongly true alert to fire
    assert prometheus.alert_states() == {}
    assert prometheus.query("rate(syncbridge_edge_update_ack_latency_seconds_count[1m]) > 0")


# --- metrics exist ------------------------------------------------------------------


def pinned(name: str) -> set[str]:
    lines = (EXPORTERS / name).read_text().splitlines()
    return {line for line in lines if line and not line.startswith("#")}


def used_names() -> dict[str, set[str]]:
    """metric name -> where it is used (alerts, recording rules, dashboard panels)."""
    used: dict[str, set[str]] = {}
    for entry in rules.rule_entries(rules.load()):
        where = entry.get("alert") or entry["record"]
        for name in promql.metric_names(entry["expr"]):
            used.setdefault(name, set()).add(where)
    for board, title, expr in dashboards.panel_queries():
        for name in promql.metric_names(expr):
            used.setdefault(name, set()).add(f"{board}: {title}")
    return used


def missing(used: dict[str, set[str]], exported: set[str]) -> list[str]:
    return sorted(
        f"{name} (in {', '.join(sorted(used[name]))})" for name in used if name not in exported
    )


def test_every_metric_used_is_exported(stack: Live) -> None:
    live.wait_for(  # labelled series appear with their first event: wait for one of each
        "an error and a replayed resume counted",
        lambda: stack.edge_metric("syncbridge_edge_resumes_total") >= 1,
        within=30,
    )
    scraped: set[str] = set()
    for job, address in stack.targets.items():
        status, body = live.http_get(f"http://{address}/metrics")
        assert status == 200, job
        scraped |= live.metric_names(body.decode())
    recorded = {e["record"] for e in rules.rule_entries(rules.load()) if "record" in e}
    # Not running here; each list names the upstream source and version it comes from.
    documented = set().union(
        *(pinned(f) for f in ("kube-state-metrics.txt", "cadvisor.txt", "kubelet.txt",
                              "cloudnative-pg.txt"))
    )  # fmt: skip
    prometheus_own = {"up"}
    exported = scraped | recorded | documented | prometheus_own
    assert missing(used_names(), exported) == []
    # The services' own metrics must come from the running services, not a list.
    ours = {name for name in used_names() if name.startswith("syncbridge_")}
    assert ours - scraped == set()


def test_a_metric_nobody_exports_is_caught() -> None:
    used = {"syncbridge_edge_errors_total": {"A"}, "syncbridge_edge_made_up_total": {"B"}}
    assert missing(used, {"syncbridge_edge_errors_total"}) == [
        "syncbridge_edge_made_up_total (in B)"
    ]


# --- faults drive the alerts -------------------------------------------------------


async def bad_updates(url: str, token: str, stop: asyncio.Event) -> None:
    """A buggy client: every update's patch is not an object (invalid_field)."""
    ws = await raw(url, token, "buggy")
    await ws.send(json.dumps({"type": "open", "initial_state": {}, "ref": "o"}))
    session = (await expect(ws, "snapshot"))["session"]
    n = 0
    while not stop.is_set():
        n += 1
        await ws.send(
            json.dumps({"type": "update", "epoch": session["epoch"], "ref": f"b{n}", "patch": 42})
        )
        await asyncio.sleep(0.1)
    await ws.close()


async def stalled_device(
    address: tuple[str, int], token: str, session_id: str, n: int
) -> socket.socket:
    """A device that opens the session and then never reads (tiny receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, address)
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(
        sock,
        (
            "GET /session/connect HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode(),
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += await loop.sock_recv(sock, 1)
    assert response.startswith(b"HTTP/1.1 101"), response
    for message in ({"type": "hello", "device_id": f"stalled-{n}"},
                    {"type": "open", "session_id": session_id}):  # fmt: skip
        await loop.sock_sendall(sock, frame(json.dumps(message).encode()))
    return sock


def frame(payload: bytes) -> bytes:
    """A masked client text frame (RFC 6455 5.3), for the raw stalled devices."""
    mask = os.urandom(4)
    length = len(payload)
    head = (
        bytes([0x81, 0x80 | length]) if length < 126 else bytes([0x81, 0xFE]) + length.to_bytes(2)
    )
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def slow_consumers(stack: Live, count: int) -> list[socket.socket]:
    """`count` stalled devices on a session a writer floods with big updates, until
    the edge has closed them all 4008."""
    host, port = stack.targets["ws-edge"].rsplit(":", 1)
    token = stack.token("carol")
    writer = SyncClient(stack.ws_url, device_id="flooder", token=token)
    session = await writer.open()
    socks = [
        await stalled_device((host, int(port)), token, session["session_id"], n)
        for n in range(count)
    ]
    await asyncio.sleep(0.5)
    before = stack.edge_metric("syncbridge_edge_slow_consumer_disconnects_total")
    blob = "x" * 50_000
    for n in range(400):
        await writer.update({"blob": f"{n}{blob}"})
        done = stack.edge_metric("syncbridge_edge_slow_consumer_disconnects_total") - before
        if done >= count:
            break
    else:
        raise AssertionError("the stalled devices were never found slow")
    await writer.close()
    return socks


async def poison(amqp_url: str, user: str) -> None:
    """A change event nobody can decode, on the topic a connected user's edge reads."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await declare_exchange(channel)
        await exchange.publish(
            aio_pika.Message(b"\xff not a change", type=messages.CHANGE_TYPE),
            routing_key=routing_key(user),
        )


def watch(stack: Live, timeline: live.Timeline, until: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while True:
        timeline.record(stack.prometheus.alert_states(), time.monotonic())
        if until():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {within} s; seen: {timeline.seen}")
        time.sleep(0.25)


FIRES = {
    # fault -> alerts that must go pending, then fire
    "bad updates": ["SyncBridgeHighErrorRate", "SyncBridgeWebSocketErrors"],
    "slow consumers": ["SyncBridgeSlowConsumerDisconnects"],
    "resumes from far behind": ["SyncBridgeResumeBySnapshot"],
    "redis stopped": ["SyncBridgeRedisDown"],
    # ... and every update fails `unavailable` meanwhile: the availability SLO burns.
    "postgresql stopped": [
        "SyncBridgePostgresqlDown",
        "SyncBridgeCoreNotReady",
        "SyncBridgeUpdateErrorBudgetBurnFast",
    ],
}
FIRES_AT_ONCE = ["SyncBridgePoisonEvents"]  # no `for:`: straight to firing
# Windows short enough to see them resolve within the test: the exporters' and
# core's gauges, and the error ratio's 2 m. The others (5 m and 10 m windows)
# resolve in their promtool cases; waiting for them here would add ten minutes.
RESOLVES = [
    "SyncBridgeRedisDown",
    "SyncBridgePostgresqlDown",
    "SyncBridgeCoreNotReady",
    "SyncBridgeHighErrorRate",
]


def test_faults_fire_the_matching_alerts_and_resolve(stack: Live) -> None:
    timeline = live.Timeline()
    stop_bad = asyncio.Event()
    bad = stack.loop.spawn(bad_updates(stack.ws_url, stack.token("bob"), stop_bad))
    stalled = stack.loop.run(slow_consumers(stack, 3))
    # Far behind (version 1 of a session thousands of changes on): core answers
    # with a snapshot instead of a replay.
    token = stack.token()
    for device in ("old-tablet", "old-phone"):
        assert stack.loop.run(resume(stack.ws_url, token, stack.session, 1, device)) == "snapshot"
    stack.loop.run(poison(stack.amqp_url, USER))
    stack.stop("redis", "postgres")
    try:
        expected = [name for names in FIRES.values() for name in names] + FIRES_AT_ONCE
        watch(
            stack, timeline, lambda: all(timeline.reached(n, "firing") for n in expected),
            within=120, what="every expected alert firing",
        )  # fmt: skip
    finally:
        stack.loop.loop.call_soon_threadsafe(stop_bad.set)
        stack.start("redis", "postgres")
        for sock in stalled:
            sock.close()
    bad.result(30)
    for name in expected:
        marks = timeline.seen[name]
        if name not in FIRES_AT_ONCE:
            assert marks["pending"] < marks["firing"], (name, marks)
    watch(
        stack, timeline, lambda: all(timeline.reached(n, "resolved") for n in RESOLVES),
        within=240, what="the alerts resolved",
    )  # fmt: skip
    print(json.dumps(timeline.seen, indent=1, sort_keys=True))


def test_rabbitmq_outage_fires_the_outbox_alerts_and_resolves(stack: Live) -> None:
    """RabbitMQ stopped: its scrape fails, and the outbox (updates keep being
    committed) grows past 1000 rows and 60 s; restarted, the relay drains it."""
    timeline = live.Timeline()
    expected = ["SyncBridgeRabbitmqDown", "SyncBridgeOutboxBacklog", "SyncBridgeOutboxLag"]
    stack.stop("rabbitmq")
    try:
        watch(
            stack, timeline, lambda: all(timeline.reached(n, "firing") for n in expected),
            within=180, what="RabbitMQ and outbox alerts firing",
        )  # fmt: skip
    finally:
        stack.start("rabbitmq")
        enable_rabbitmq_prometheus(stack.config, stack.rabbitmq_port)
    for name in expected:
        assert timeline.seen[name]["pending"] < timeline.seen[name]["firing"], name
    watch(
        stack, timeline, lambda: all(timeline.reached(n, "resolved") for n in expected),
        within=120, what="RabbitMQ and outbox alerts resolved",
    )  # fmt: skip
    print(json.dumps(timeline.seen, indent=1, sort_keys=True))


# --- dashboards -----------------------------------------------------------------------


def test_every_dashboard_panel_returns_a_series(stack: Live) -> None:
    prometheus = stack.prometheus
    # Servers a fault test restarted are scraped again before panels are read.
    live.wait_for(
        "every target up",
        lambda: prometheus.targets_up() == {job: True for job in stack.targets},
        within=60,
    )
    time.sleep(3 * live.SCRAPE_SECONDS)
    assert not prometheus.query("syncbridge_edge_made_up_total")  # an empty panel is seen
    empty = [
        f"{board}: {title}: {expr}"
        for board, title, expr in dashboards.panel_queries()
        if not prometheus.query(expr)
    ]
    assert empty == []
