"""The monitoring, proven on a live stack.

Real session-core, outbox-relay and ws-edge processes on this test's own
Redis, PostgreSQL and RabbitMQ (throwaway servers: stopping Redis disturbs
nobody); redis_exporter, postgres_exporter, node_exporter and RabbitMQ's own
prometheus plugin beside them; Debian's Prometheus scraping all of it with the
committed rules, time-compressed by live.COMPRESSION (see monitoring/README.md).
The edge reaches core through a loopback proxy the test can slow or cut.

In file order: nothing fires while healthy; every metric the rules and
dashboards read exists; then phases of faults that do not disturb each other
(RabbitMQ stopped beside a slow link to core, bad updates, resumes from far
behind and Redis stopped, then PostgreSQL stopped; slow consumers and poison
events; edge cut from core) drive each matching alert pending -> firing, and,
once the fault ends, resolved; every dashboard panel's query returns a series.
One file (over 400 lines) because the phases run in order on one live stack
that takes minutes to start; each phase is its own test function.
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
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
from monitoring import dashboards, live, netfault, promql, rules
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
    proxy: netfault.Proxy  # between edge and core: the test slows or cuts it

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
        return edge_metric(self.targets["ws-edge"], name)


ACKS = "syncbridge_edge_update_ack_latency_seconds_count"
WARM_ACKS = 200


def edge_metric(address: str, name: str) -> float:
    """The sum of a metric's samples on the edge's /metrics, right now."""
    _, body = live.http_get(f"http://{address}/metrics")
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
    processes: live.Processes, config: _servers.Config, key_path: str, loop: Loop
) -> tuple[dict[str, str], netfault.Proxy]:
    """core, relay and edge as the real binaries, the edge reaching core through
    a loopback proxy; their metrics addresses by job, and the proxy."""
    grpc, core_metrics, relay_metrics = free_port(), free_port(), free_port()
    proxy = netfault.Proxy((live.HOST, grpc))
    proxy_port = loop.run(proxy.start())
    processes.start(
        "session-core",
        [live.runfile("CORE_BIN")],
        core_env(
            config,
            SYNCBRIDGE_CORE_GRPC_PORT=str(grpc),
            SYNCBRIDGE_CORE_METRICS_PORT=str(core_metrics),
            # Core verifies the tokens the edge forwards: the edge's key.
            SYNCBRIDGE_CORE_JWT_PUBLIC_KEY_PATH=key_path,
            SYNCBRIDGE_CORE_JWT_ISSUER=testing.ISSUER,
            SYNCBRIDGE_CORE_JWT_AUDIENCE=testing.AUDIENCE,
            SYNCBRIDGE_CORE_JWT_ALGORITHMS="ES256",
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
            "SYNCBRIDGE_EDGE_CORE_TARGET": f"{live.HOST}:{proxy_port}",
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
    targets = {
        "session-core": f"{live.HOST}:{core_metrics}",
        "outbox-relay": f"{live.HOST}:{relay_port}",
        "ws-edge": edge,
    }
    return targets, proxy


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
            targets, proxy = start_services(processes, config, key_path, loop)
            targets |= start_exporters(processes, config)
            targets["rabbitmq"] = f"{live.HOST}:{rabbitmq_port}"
            url = f"ws://{targets['ws-edge']}/session/connect"
            token = testing.sign(testing.claims(3600, sub=USER), key, "ES256")
            writer, session = loop.run(open_session(url, token))
            loop.spawn(steady_traffic(writer, url, token, session["session_id"]))
            # a short absence: replayed (the snapshot alert's ratio has a denominator)
            assert loop.run(resume(url, token, session, session["version"], "tablet")) == "ack"
            # Scraping starts once traffic is warm: a fresh process's first acks
            # (connections and caches still cold) would otherwise be much of a
            # history seconds long; in a cluster hours of history dilute them.
            live.wait_for(
                "warm traffic",
                lambda: edge_metric(targets["ws-edge"], ACKS) >= WARM_ACKS,
                within=60,
            )
            prometheus = live.Prometheus(processes, targets)
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
                proxy,
            )
        except BaseException:
            print(processes.logs())
            raise
        finally:
            with contextlib.suppress(Exception):
                loop.run(proxy.close(), within=10)
            loop.close()


# --- nothing fires while healthy ------------------------------------------------

HEALTHY_SECONDS = 10.0


def test_every_target_is_scraped_and_nothing_fires_while_healthy(stack: Live) -> None:
    prometheus = stack.prometheus
    live.wait_for(
        "every target up",
        lambda: prometheus.targets_up() == {job: True for job in stack.targets},
        within=30,
    )
    # Every evaluation for a while: not even pending (an alert pends at once
    # when its expression holds, whatever its `for:`).
    deadline = time.monotonic() + HEALTHY_SECONDS
    while time.monotonic() < deadline:
        assert prometheus.alert_states() == {}
        time.sleep(0.5)
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


async def buggy_client(url: str, token: str) -> tuple[ClientConnection, dict[str, Any]]:
    """A client connected with a session open (connect it while RabbitMQ is up:
    a user's first device binds the edge's queue for them)."""
    ws = await raw(url, token, "buggy")
    await ws.send(json.dumps({"type": "open", "initial_state": {}, "ref": "o"}))
    return ws, (await expect(ws, "snapshot"))["session"]


async def bad_update(ws: ClientConnection, session: dict[str, Any]) -> None:
    """What a buggy client sends: an update whose patch is not an object (invalid_field)."""
    await ws.send(
        json.dumps({"type": "update", "epoch": session["epoch"], "ref": "b", "patch": 42})
    )
    await asyncio.sleep(0.1)


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


async def slow_consumers(
    stack: Live, count: int, writer: SyncClient, session: dict[str, Any], token: str
) -> list[socket.socket]:
    """`count` stalled devices on the session `writer` floods with big updates,
    until the edge has closed them all 4008."""
    host, port = stack.targets["ws-edge"].rsplit(":", 1)
    socks = [
        await stalled_device((host, int(port)), token, session["session_id"], n)
        for n in range(count)
    ]
    await asyncio.sleep(0.5)
    before = stack.edge_metric("syncbridge_edge_slow_consumer_disconnects_total")
    # bigger than a socket's send buffer: each one a stalled reader cannot take
    blob = "x" * 20_000
    for n in range(400):
        await writer.update({"blob": f"{n}{blob}"})
        done = stack.edge_metric("syncbridge_edge_slow_consumer_disconnects_total") - before
        if done >= count:
            break
    else:
        raise AssertionError("the stalled devices were never found slow")
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


# --- faults drive the alerts ------------------------------------------------------
#
# A phase runs faults that do not disturb each other at once. Each fault is
# begun; once all its alerts fire (having been pending first, where they have a
# `for:`), it is ended, and its alerts must then resolve. `also_fire` alerts
# must fire during the phase, but their resolution is promtool's to show: the
# slow burn rates clear only when their 6 h window (12 min compressed) is clean.


@dataclass
class Fault:
    name: str
    alerts: list[str]
    begin: Callable[[], Any]
    end: Callable[[], Any]
    also_fire: tuple[str, ...] = ()
    # begun only once these faults' alerts have all resolved (their effects
    # would hide this one's, or this one theirs) and these others' are firing
    after: tuple[str, ...] = ()
    after_firing: tuple[str, ...] = ()


def has_for() -> set[str]:
    return {name for name, entry in rules.alerts(rules.load()).items() if "for" in entry}


def run_phase(stack: Live, faults: list[Fault], within: float) -> dict[str, dict[str, float]]:
    """Runs `faults` at once; returns each alert's first pending, firing, and
    resolved (absent after its fault ended) times, from Prometheus' API."""
    prometheus = stack.prometheus
    names = {n for f in faults for n in [*f.alerts, *f.also_fire]}
    live.wait_for(  # an earlier phase's alerts are over: these start inactive
        "the phase's alerts inactive",
        lambda: not names & set(prometheus.alert_states()),
        within=90,
    )
    timeline = live.Timeline()
    started = time.monotonic()
    resolved: dict[str, float] = {}
    pool = ThreadPoolExecutor(max_workers=2 * len(faults))
    begun: dict[str, Future[Any]] = {}
    ended: dict[str, Future[Any]] = {}
    by_name = {f.name: f for f in faults}
    deadline = time.monotonic() + within
    try:
        while True:
            now = time.monotonic()
            states = prometheus.alert_states()
            timeline.record(states, now)
            for fault in faults:
                if fault.name not in begun:
                    if all(n in resolved for a in fault.after for n in by_name[a].alerts) and all(
                        timeline.reached(n, "firing")
                        for a in fault.after_firing
                        for n in by_name[a].alerts
                    ):
                        begun[fault.name] = pool.submit(fault.begin)
                    continue
                if not begun[fault.name].done():
                    continue
                begun[fault.name].result()  # a fault that could not begin fails here
                if fault.name not in ended and all(
                    timeline.reached(n, "firing") for n in fault.alerts
                ):
                    ended[fault.name] = pool.submit(fault.end)
                elif fault.name in ended and ended[fault.name].done():
                    ended[fault.name].result()
                    for name in fault.alerts:
                        if name not in states and timeline.reached(name, "firing"):
                            resolved.setdefault(name, now)
            if len(resolved) == sum(len(f.alerts) for f in faults) and all(
                timeline.reached(n, "firing") for f in faults for n in f.also_fire
            ):
                break
            if now > deadline:
                raise AssertionError(
                    f"not within {within} s: ended {sorted(ended)}, resolved {sorted(resolved)};"
                    f" seen: {timeline.seen}"
                )
            time.sleep(0.25)
    finally:
        for fault in faults:
            if fault.name in begun and fault.name not in ended:
                with contextlib.suppress(Exception):
                    fault.end()
        pool.shutdown(wait=True)
    seen = {name: dict(timeline.seen[name]) for name in names}
    for name, at in resolved.items():
        seen[name]["resolved"] = at
    print(f"{[f.name for f in faults]}: {time.monotonic() - started:.0f} s")
    print(json.dumps(seen, indent=1, sort_keys=True))
    for name in names & has_for():
        assert seen[name]["pending"] < seen[name]["firing"], (name, seen[name])
    return seen


class Repeat:
    """A coroutine run over and over on the stack's loop until `stop()`."""

    def __init__(self, stack: Live, step: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        self.stack, self.step, self.done = stack, step, threading.Event()
        self.future: Any = None

    async def _loop(self) -> None:
        while not self.done.is_set():
            await self.step()

    def start(self) -> None:
        self.future = self.stack.loop.spawn(self._loop())

    def stop(self) -> None:
        self.done.set()
        self.future.result(60)


def set_core_link(stack: Live, *, delay: float | None = None, blocked: bool | None = None) -> None:
    proxy = stack.proxy

    def change() -> None:
        if delay is not None:
            proxy.delay = delay
        if blocked is True:
            proxy.block()
        if blocked is False:
            proxy.unblock()

    stack.loop.loop.call_soon_threadsafe(change)


class SlowCore:
    """0.3 s added each way between edge and core: every ack takes over 0.6 s.
    Twenty more writers keep acks coming while each waits (the steady writer
    alone, slowed, would leave the windows mostly fast acks from before)."""

    DELAY = 0.3
    WRITERS = 20

    def __init__(self, stack: Live) -> None:
        self.stack = stack
        self.writers: list[SyncClient] = []
        self.loops: list[Repeat] = []

    def prepare(self) -> None:
        async def open_all() -> list[SyncClient]:
            writers = [
                # a user each: one user may connect only a few devices at once
                SyncClient(self.stack.ws_url, device_id="w", token=self.stack.token(f"slow-{n}"))
                for n in range(self.WRITERS)
            ]
            await asyncio.gather(*(w.open(initial_state={}) for w in writers))
            return writers

        self.writers = self.stack.loop.run(open_all())

    def begin(self) -> None:
        set_core_link(self.stack, delay=self.DELAY)
        for n, writer in enumerate(self.writers):

            async def step(writer: SyncClient = writer, n: int = n) -> None:
                await writer.update({"w": n, "t": time.monotonic()})

            self.loops.append(Repeat(self.stack, step))
            self.loops[-1].start()

    def end(self) -> None:
        set_core_link(self.stack, delay=0.0)
        for loop in self.loops:
            loop.stop()
        for writer in self.writers:
            self.stack.loop.run(writer.close())


def test_rabbitmq_outage_and_faults_beside_it_fire_and_resolve(stack: Live) -> None:
    """RabbitMQ stopped (its scrape fails; the outbox, updates still committing,
    grows past 1000 rows and 60 s, and drains once it is back) and, at the same
    time, faults that need no broker: a slow link to core, a buggy client,
    devices resuming from far behind, Redis stopped; then PostgreSQL stopped."""
    slow = SlowCore(stack)
    slow.prepare()
    buggy, buggy_session = stack.loop.run(buggy_client(stack.ws_url, stack.token("bob")))
    bad = Repeat(stack, lambda: bad_update(buggy, buggy_session))
    token = stack.token()

    async def far_behind() -> None:
        # version 1 of a session thousands of changes on: a snapshot, not a replay
        assert await resume(stack.ws_url, token, stack.session, 1, "old-tablet") == "snapshot"
        await asyncio.sleep(1)

    resumes = Repeat(stack, far_behind)

    def restart_rabbitmq() -> None:
        stack.start("rabbitmq")
        enable_rabbitmq_prometheus(stack.config, stack.rabbitmq_port)

    run_phase(
        stack,
        [
            Fault(
                "rabbitmq stopped",
                ["SyncBridgeRabbitmqDown", "SyncBridgeOutboxBacklog", "SyncBridgeOutboxLag"],
                begin=lambda: stack.stop("rabbitmq"),
                end=restart_rabbitmq,
            ),
            Fault(
                "slow link to core",
                ["SyncBridgeHighLatency", "SyncBridgeUpdateLatencyBudgetBurnFast"],
                begin=slow.begin,
                end=slow.end,
                also_fire=("SyncBridgeUpdateLatencyBudgetBurnSlow",),
            ),
            Fault(
                "bad updates",
                ["SyncBridgeHighErrorRate", "SyncBridgeWebSocketErrors"],
                begin=bad.start,
                end=bad.stop,
            ),
            Fault(
                "resumes from far behind",
                ["SyncBridgeResumeBySnapshot"],
                begin=resumes.start,
                end=resumes.stop,
            ),
            Fault(
                "redis stopped",
                ["SyncBridgeRedisDown"],
                begin=lambda: stack.stop("redis"),
                end=lambda: stack.start("redis"),
            ),
            # While RabbitMQ restarts (a minute of Erlang boots here), once the
            # outbox has filled and the faults that need acks are over: with
            # PostgreSQL down core is not ready and every update fails
            # `unavailable`, so the availability SLO burns.
            Fault(
                "postgresql stopped",
                [
                    "SyncBridgePostgresqlDown",
                    "SyncBridgeCoreNotReady",
                    "SyncBridgeUpdateErrorBudgetBurnFast",
                ],
                begin=lambda: stack.stop("postgres"),
                end=lambda: stack.start("postgres"),
                also_fire=("SyncBridgeUpdateErrorBudgetBurnSlow",),
                after=(
                    "slow link to core",
                    "bad updates",
                    "resumes from far behind",
                    "redis stopped",
                ),
                after_firing=("rabbitmq stopped",),
            ),
        ],
        within=300,
    )
    # resolved with acks flowing again, not for want of traffic
    assert stack.prometheus.query("rate(syncbridge_edge_update_ack_latency_seconds_count[10s]) > 0")


def test_slow_consumers_and_poison_events_fire_and_resolve(stack: Live) -> None:
    """With RabbitMQ back: devices that stop reading while a writer floods their
    session keep being closed 4008; events nobody can decode keep arriving."""

    token = stack.token("carol")
    flooder = SyncClient(stack.ws_url, device_id="flooder", token=token)
    flooded = stack.loop.run(flooder.open())

    async def round_of_slow_consumers() -> None:
        # four at a time: more than two in every 5 minutes (10 s compressed)
        for sock in await slow_consumers(stack, 4, flooder, flooded, token):
            sock.close()

    async def poison_now() -> None:
        await poison(stack.amqp_url, USER)
        await asyncio.sleep(2)

    floods = Repeat(stack, round_of_slow_consumers)
    poisons = Repeat(stack, poison_now)
    run_phase(
        stack,
        [
            Fault(
                "slow consumers",
                ["SyncBridgeSlowConsumerDisconnects"],
                begin=floods.start,
                end=floods.stop,
            ),
            Fault(
                "undecodable events",
                ["SyncBridgePoisonEvents"],
                begin=poisons.start,
                end=poisons.stop,
            ),
        ],
        within=150,
    )
    stack.loop.run(flooder.close())


def test_edge_cut_from_core_fires_core_unreachable_and_resolves(stack: Live) -> None:
    """The link edge -> core cut (core itself healthy): the edge's calls fail
    UNAVAILABLE. Last of the phases: its failed updates burn the error budget,
    and the slow burn stays on for its 2 h window (4 min compressed)."""
    run_phase(
        stack,
        [
            Fault(
                "edge cut from core",
                ["SyncBridgeCoreUnreachable"],
                begin=lambda: set_core_link(stack, blocked=True),
                end=lambda: set_core_link(stack, blocked=False),
            )
        ],
        within=90,
    )


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
