"""The web client and its demo page in a real Chromium, against a real core and edges.

Core runs in this process, the edges are the //services/ws_edge binary serving
the demo page (SYNCBRIDGE_EDGE_DEMO_DIR), and one headless Chromium (Debian's,
driven by playwright-core through browser_bridge.mts) serves every test of
this file. Each page is a browser context of its own: separate tabs, one user.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from libs.testing.ports import free_port
from tests.e2e.e2e_testing import Edge, System, dump_logs, running_system

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio

BRIDGE = Path(os.environ.get("BROWSER_BRIDGE", "clients/web/browser_bridge"))
# One of the demo site's files (its directory is what the edges serve).
DEMO_SITE = Path(
    os.environ.get("DEMO_SITE_FILES", "clients/web/demo_site/index.html").split()[0]
).parent
USER = "alice"


class Bridge:
    """The Chromium of this test file: requests to browser_bridge.mts, one at a time."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [str(BRIDGE.resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PATH": "/usr/bin:/bin"},
        )
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _call(self, op: str, **fields: Any) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        with self._lock:
            request_id = next(self._ids)
            self.process.stdin.write(json.dumps({"id": request_id, "op": op, **fields}) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"browser bridge exited ({self.process.poll()})")
        answer = json.loads(line)
        assert answer["id"] == request_id
        if not answer["ok"]:
            raise AssertionError(f"{op} {fields}: {answer['error']}")
        return answer["value"]

    async def call(self, op: str, **fields: Any) -> Any:
        # Off the event loop: core serves gRPC in this process meanwhile.
        return await asyncio.to_thread(self._call, op, **fields)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def bridge() -> Iterator[Bridge]:
    started = Bridge()
    yield started
    started.close()


class Page:
    """One tab of the demo page."""

    def __init__(self, bridge: Bridge, name: str) -> None:
        self.bridge = bridge
        self.name = name

    async def eval(self, js: str) -> Any:
        return await self.bridge.call("eval", page=self.name, js=js)

    async def wait_for(self, js: str, within: float = 20) -> None:
        await self.bridge.call("waitFor", page=self.name, js=js, timeout=within * 1000)

    async def client(self) -> dict[str, Any]:
        value: dict[str, Any] = await self.eval(
            "(({client: c, applied, events}) => ({session_id: c.sessionId, epoch: c.epoch,"
            " version: c.version, state: c.state, connected: c.connected,"
            " unacknowledged: c.unacknowledged, devices: c.devices, active_device: c.activeDevice,"
            " close_codes: c.stats.closeCodes, connects: c.stats.connects, applied,"
            " events}))(window.syncbridge)"
        )
        return value


@pytest_asyncio.fixture
async def system(
    pg_dsn: str, redis_url: str, amqp_url: str, tmp_path: Path
) -> AsyncIterator[System]:
    async with running_system(pg_dsn, redis_url, amqp_url, tmp_path) as built:
        try:
            yield built
        except BaseException:
            dump_logs(built)
            raise


@pytest_asyncio.fixture
async def pages(bridge: Bridge) -> AsyncIterator[list[Page]]:
    opened: list[Page] = []
    yield opened
    for page in opened:
        await bridge.call("closePage", page=page.name)


async def start_edges(system: System, count: int) -> list[Edge]:
    ports = [free_port() for _ in range(count)]
    return [await start_edge(system, f"edge-{i}", port, ports) for i, port in enumerate(ports)]


async def start_edge(system: System, name: str, port: int, ports: list[int], **env: str) -> Edge:
    origins = ",".join(f"http://127.0.0.1:{p}" for p in ports)
    return await system.start_edge(
        name,
        port=port,
        SYNCBRIDGE_EDGE_DEMO_DIR=str(DEMO_SITE.resolve()),
        SYNCBRIDGE_EDGE_ALLOWED_ORIGINS=origins,
        **env,
    )


async def open_page(
    bridge: Bridge,
    pages: list[Page],
    name: str,
    served_by: str,
    token: str,
    ws_urls: list[str],
    session: str | None = None,
) -> Page:
    fragment = f"token={token}&device={name}&backoff=0.1,0.5&url={','.join(ws_urls)}"
    if session:
        fragment += f"&session={session}"
    page = Page(bridge, name)
    await bridge.call("newPage", page=name, url=f"{served_by}/demo/#{fragment}")
    pages.append(page)
    return page


def demo_url(edge: Edge) -> str:
    return f"http://127.0.0.1:{edge.port}"


async def two_tabs(
    system: System, bridge: Bridge, pages: list[Page], edges: list[Edge]
) -> tuple[Page, Page]:
    token = system.token(USER)
    urls = [edge.url for edge in edges]
    a = await open_page(bridge, pages, "tab-a", demo_url(edges[0]), token, urls)
    await a.wait_for("window.syncbridge.client.connected && window.syncbridge.client.sessionId")
    session = (await a.client())["session_id"]
    b = await open_page(bridge, pages, "tab-b", demo_url(edges[0]), token, urls[::-1], session)
    await b.wait_for(f"window.syncbridge.client.sessionId === '{session}'")
    return a, b


def consecutive(versions: list[int]) -> bool:
    return versions == list(range(versions[0], versions[0] + len(versions))) if versions else True


async def converged(a: Page, b: Page, within: float = 30) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        await a.wait_for("window.syncbridge.client.unacknowledged === 0", within)
        await b.wait_for("window.syncbridge.client.unacknowledged === 0", within)
        target = max((await a.client())["version"], (await b.client())["version"])
        for page in (a, b):
            await page.wait_for(f"window.syncbridge.client.version >= {target}", within)
    except AssertionError as error:
        tails = [await page.eval("window.syncbridge.log.slice(-25).join('\\n')") for page in (a, b)]
        states = [await page.client() for page in (a, b)]
        for state in states:
            state.pop("applied")
        raise AssertionError(
            f"{error}\n{states}\n--- a ---\n{tails[0]}\n--- b ---\n{tails[1]}"
        ) from None
    return await a.client(), await b.client()


async def test_two_tabs_of_one_user_sync_in_order(
    system: System, bridge: Bridge, pages: list[Page]
) -> None:
    edges = await start_edges(system, 1)
    a, b = await two_tabs(system, bridge, pages, edges)
    # Both write at once, without waiting for their acks.
    await a.eval(
        "Promise.all([...Array(15).keys()].map((i) => window.syncbridge.client.update({a: i})))"
    )
    await b.eval(
        "Promise.all([...Array(15).keys()].map((i) => window.syncbridge.client.update({b: i})))"
    )
    got_a, got_b = await converged(a, b)
    assert got_a["state"] == got_b["state"] == {"a": 14, "b": 14}
    assert got_a["version"] == got_b["version"] >= 31
    for got in (got_a, got_b):
        assert consecutive(got["applied"]), got["applied"]  # in order, none twice, no hole
        assert got["applied"][-1] == got["version"]
    # The page shows it: both devices online, the lease, the log.
    await a.wait_for("document.getElementById('devices').textContent.includes('tab-b')")
    await a.eval("document.getElementById('update').click()")
    await b.wait_for("window.syncbridge.client.state.note === 'hello'")
    outputs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
    if outputs:
        await bridge.call("screenshot", page=a.name, path=str(Path(outputs) / "demo_page.png"))


async def test_an_offline_tab_resumes_with_every_missed_change(
    system: System, bridge: Bridge, pages: list[Page]
) -> None:
    edges = await start_edges(system, 1)
    a, b = await two_tabs(system, bridge, pages, edges)
    await bridge.call("offline", page=a.name, value=True)
    await a.eval("window.syncbridge.client.drop()")
    await a.wait_for("!window.syncbridge.client.connected")
    before = (await a.client())["version"]
    await b.eval(
        "(async () => { for (let i = 0; i < 20; i++)"
        " await window.syncbridge.client.update({n: i}); })()"
    )
    await asyncio.sleep(1.0)  # a few reconnects fail while offline
    assert not (await a.client())["connected"]
    await bridge.call("offline", page=a.name, value=False)
    got_a, got_b = await converged(a, b)
    assert got_a["state"] == got_b["state"] == {"n": 19}
    # Every version after the drop arrives once, in order: b's 20 updates, and
    # any change that was still on its way when the connection went.
    final = got_b["version"]
    resumed = [e for e in got_a["events"] if e["kind"] == "resumed"]
    assert resumed and resumed[-1]["changes"] == final - before >= 20, got_a["events"]
    missed = [v for v in got_a["applied"] if v > before]
    assert missed == list(range(before + 1, final + 1))
    assert not [e for e in got_a["events"] if e["kind"] == "unrecovered"]


async def test_a_rolling_edge_restart_under_updates_converges_both_tabs(
    system: System, bridge: Bridge, pages: list[Page]
) -> None:
    edges = await start_edges(system, 2)
    ports = [edge.port for edge in edges]
    a, b = await two_tabs(system, bridge, pages, edges)
    # Like a person typing: an update every 60 ms unless one is still unacknowledged
    # (a shared 2-core machine commits more slowly than that; no backlog builds up).
    writer = (
        "(window.syncbridge.writes = 0, window.syncbridge.writer = setInterval(() =>"
        " window.syncbridge.client.unacknowledged === 0 &&"
        " window.syncbridge.client.update({KEY: ++window.syncbridge.writes}), 60), null)"
    )
    await a.eval(writer.replace("KEY", "a"))
    await b.eval(writer.replace("KEY", "b"))
    for index, old in enumerate(list(edges)):
        await asyncio.sleep(1.0)
        old.terminate()
        assert await old.wait(20) == 0
        edges[index] = await start_edge(system, f"edge-{index}-new", old.port, ports)
    await asyncio.sleep(1.0)
    for page in (a, b):
        await page.eval("clearInterval(window.syncbridge.writer)")
    got_a, got_b = await converged(a, b)
    writes_a = await a.eval("window.syncbridge.writes")
    writes_b = await b.eval("window.syncbridge.writes")
    assert writes_a > 10 and writes_b > 10
    # Every update either side made is in the state both converged to: nothing lost.
    assert got_a["state"] == got_b["state"] == {"a": writes_a, "b": writes_b}
    for got in (got_a, got_b):
        assert consecutive(got["applied"]), got["applied"]
        assert 1001 in got["close_codes"], got["close_codes"]  # drained, then resumed
        assert not [e for e in got["events"] if e["kind"] == "unrecovered"]


def forbidden_upgrades(edge: Edge) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{edge.port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    for line in text.splitlines():
        if line.startswith("syncbridge_edge_errors_total") and 'code="forbidden"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_page_of_another_origin_is_refused_before_the_upgrade(
    system: System, bridge: Bridge, pages: list[Page]
) -> None:
    (edge,) = await start_edges(system, 1)
    # Same server, another origin: http://localhost:<port> is not on the allowed list.
    origin = f"http://localhost:{edge.port}"
    page = Page(bridge, "stranger")
    url = f"{origin}/demo/#token={system.token(USER)}&device=stranger&backoff=0.1,0.2"
    await bridge.call("newPage", page="stranger", url=url)
    pages.append(page)
    await page.wait_for("window.syncbridge.client.stats.closeCodes.length >= 2")
    got = await page.client()
    assert got["connects"] == 0 and not got["connected"]  # no WebSocket ever opened
    assert set(got["close_codes"]) == {1006}
    assert await asyncio.to_thread(forbidden_upgrades, edge) >= 2


async def test_an_expired_token_closes_with_4001(
    system: System, bridge: Bridge, pages: list[Page]
) -> None:
    port = free_port()
    edge = await start_edge(
        system,
        "edge-0",
        port,
        [port],
        SYNCBRIDGE_EDGE_JWT_LEEWAY_SECONDS="0",
        SYNCBRIDGE_EDGE_TOKEN_GRACE_SECONDS="1",  # noqa: S106 (seconds, not a secret)
    )
    token = system.token(USER, lifetime=4)  # a fixed token: the page cannot refresh it
    page = await open_page(bridge, pages, "tab-a", demo_url(edge), token, [edge.url])
    await page.wait_for("window.syncbridge.client.connected")
    await page.wait_for("window.syncbridge.client.stats.closeCodes.includes(4001)", 20)
    got = await page.client()
    assert got["close_codes"][0] == 4001, got["close_codes"]
    await page.wait_for("window.syncbridge.log.some((l) => l.includes('closed 4001'))")
