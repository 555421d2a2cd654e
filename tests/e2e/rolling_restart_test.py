"""A rolling restart of both edge replicas under steady updates.

Like a Kubernetes rollout: SIGTERM one replica (it drains: readiness 503,
closes its devices with 1001 in batches, exits within its grace period),
start its replacement on the same address, then do the same to the other.
Afterwards every acknowledged update is in core's history, every device has
converged to the same version and state, and no device saw an abnormal close.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from libs.client.client import SyncClient
from tests.e2e.e2e_testing import System, dump_logs, running_system, states_equal

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio

USERS = 6


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


class Writer:
    """Updates its session every 40 ms; remembers every op_id that was acknowledged."""

    def __init__(self, client: SyncClient) -> None:
        self.client = client
        self.acked: list[str] = []
        self.stopping = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        n = 0
        while not self.stopping:
            n += 1
            ack = await self.client.update({"counter": n, f"k{n % 7}": n})
            self.acked.append(ack.op_id)
            await asyncio.sleep(0.04)

    async def stop(self) -> None:
        """Lets the update in flight finish: every op sent is then acknowledged."""
        assert self.task is not None
        assert not self.task.done(), self.task  # no update ever failed
        self.stopping = True
        await asyncio.wait_for(self.task, 30)


async def test_rolling_restart_loses_nothing_and_clients_see_1001(system: System) -> None:
    first = await system.start_edge("edge-a")
    second = await system.start_edge("edge-b")
    addresses = [first.url, second.url]
    writers: list[Writer] = []
    readers: list[SyncClient] = []
    sessions: list[str] = []
    for n in range(USERS):
        user = f"user{n}"
        # Each device starts on one replica and fails over to the other.
        urls = addresses if n % 2 == 0 else addresses[::-1]
        phone = system.client(user, "phone", urls)
        reader = system.client(user, "laptop", urls[::-1])
        session = await phone.open(initial_state={"counter": 0})
        await reader.open(session["session_id"])
        writers.append(Writer(phone))
        readers.append(reader)
        sessions.append(session["session_id"])
    for writer in writers:
        writer.start()
    await asyncio.sleep(1.0)

    for old in (first, second):
        old.terminate()
        status = await old.wait(within=10)  # the grace period is 8 s
        assert status == 0, old.log_tail()
        await system.start_edge(old.name + "-new", port=old.port)
        await asyncio.sleep(1.5)  # steady traffic on the new replica before the next

    for writer in writers:
        await writer.stop()
    for n, (writer, reader, session_id) in enumerate(zip(writers, readers, sessions, strict=True)):
        user = f"user{n}"
        truth = await system.read_session(user, session_id)
        for client in (writer.client, reader):
            await client.wait_for_version(truth.version, within=15)
        assert writer.client.version == reader.version == truth.version
        assert states_equal(writer.client.state, reader.state)
        assert writer.client.state["counter"] == len(writer.acked)
        history = await system.op_ids(user, session_id)
        assert set(writer.acked) <= history, "an acknowledged update is missing"
    everyone = [w.client for w in writers] + readers
    codes = [code for client in everyone for code in client.stats.close_codes]
    assert 1006 not in codes, codes
    assert codes.count(1001) >= USERS, codes  # every device was moved at least once
    assert set(codes) <= {1001}, codes
    for client in everyone:
        await client.close()
