"""Two devices of one user on two edge replicas; a device dropped for a while."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from libs.backoff.backoff import Backoff
from tests.e2e.e2e_testing import System, dump_logs, running_system

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def system(
    pg_dsn: str, redis_url: str, amqp_url: str, tmp_path: Path
) -> AsyncIterator[System]:
    async with running_system(pg_dsn, redis_url, amqp_url, tmp_path) as built:
        await built.start_edge("edge-a")
        await built.start_edge("edge-b")
        try:
            yield built
        except BaseException:
            dump_logs(built)
            raise


def recorder(into: list[tuple[str, int]]) -> Any:
    def record(message: dict[str, Any]) -> None:
        if message["type"] in ("change", "handoff"):
            into.append((message["type"], message["version"]))

    return record


async def test_devices_on_different_replicas_see_each_other_in_order(system: System) -> None:
    edge_a, edge_b = system.edges
    phone = system.client("alice", "phone", [edge_a.url])
    laptop = system.client("alice", "laptop", [edge_b.url])
    session = await phone.open(initial_state={"track": "intro", "position": 0})
    await laptop.open(session["session_id"])
    start = max(phone.version, laptop.version)
    await phone.wait_for_version(start)
    phone_saw: list[tuple[str, int]] = []
    laptop_saw: list[tuple[str, int]] = []
    phone.on_change(recorder(phone_saw))
    laptop.on_change(recorder(laptop_saw))

    # Both write, alternately, on different fields: every write is applied.
    for n in range(1, 16):
        await phone.update({"position": n})
        await laptop.update({f"note{n}": n})
    moved = await phone.handoff("laptop")
    for client in (phone, laptop):
        await client.wait_for_version(moved.version)
    expected = list(range(start + 1, moved.version + 1))
    for saw in (phone_saw, laptop_saw):
        assert [version for _, version in saw] == expected  # in order, none missing or twice
        assert saw[-1] == ("handoff", moved.version)
    assert phone.state == laptop.state
    assert phone.state["position"] == 15 and laptop.state["note15"] == 15
    assert phone.active_device == laptop.active_device == "laptop"
    truth = await system.read_session("alice", session["session_id"])
    assert truth.version == moved.version and truth.active_device == "laptop"
    await phone.close()
    await laptop.close()


async def test_a_device_dropped_for_a_while_resumes_with_nothing_missing(system: System) -> None:
    edge_a, edge_b = system.edges
    writer = system.client("bob", "desktop", [edge_a.url])
    # The reader stays away for 1.5 s after losing its connection.
    reader = system.client(
        "bob", "tablet", [edge_b.url], backoff=Backoff(base=1.5, cap=1.5, rand=lambda: 1.0)
    )
    session = await writer.open(initial_state={"items": {}})
    await reader.open(session["session_id"])
    await reader.wait_for_version(writer.version)
    seen: list[tuple[str, int]] = []
    reader.on_change(recorder(seen))
    before = reader.version

    await reader.drop()
    acks = [await writer.update({"items": {f"i{n}": n}}) for n in range(40)]
    assert not reader.connected
    await reader.wait_for_version(acks[-1].version, within=15)

    assert [version for _, version in seen] == list(range(before + 1, acks[-1].version + 1))
    assert reader.state == writer.state
    assert reader.state["items"] == {f"i{n}": n for n in range(40)}
    assert reader.stats.connects == 2 and reader.stats.snapshots_unrecovered == 0
    await writer.close()
    await reader.close()
