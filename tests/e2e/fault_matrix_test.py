"""The fault matrix under load: kill -9 and SIGSTOP of each part during steady updates.

For each of Redis, RabbitMQ, PostgreSQL, core, the outbox relay and one of
the two edges, killed (then started again) or stopped (then continued) while
six devices on two edges each write a few updates a second:

- every acknowledged update is in the database at the version it was acked at;
- no op_id or version is in the history twice, no device applied a version twice;
- every device converges to the database's state, or was told `recovered: false`;
- once the fault clears, every device has an update acknowledged and has seen
  every version acked before the clearing within RECOVERY_BOUND seconds.

The checker (chaos_history.py) compares the clients' acks with the `changes`
table; each case prints its row of the table (fault, acked, lost, dupes, recovery).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from libs.client.client import SyncClient
from libs.testing.fixtures import ServerControl
from tests.e2e.chaos_faults import MATRIX, Fault, Parts, Service, core_and_relay
from tests.e2e.chaos_history import History, Row, check
from tests.e2e.e2e_testing import System, dump_logs, system_around

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio

USERS = 3  # two devices each, one starting on each edge: six devices
WRITE_INTERVAL = 0.3  # seconds between one device's updates (~20 updates/s in all)
STEADY = 2.0  # seconds of load before the fault and after recovery
FAULT_LENGTH = 6.0  # seconds the part stays dead or stopped
# From restart/SIGCONT until every device is served again. The slowest path is
# a RabbitMQ restart (its boot is ~10 s on a loaded 2-core machine) plus the
# edge's robust AMQP reconnect interval (5 s) plus a device's reconnect backoff
# (cap 1 s) and the edge's core deadline (5 s) for a call sent into the hang:
# ~21 s, so 30 s leaves margin for the shared machine without hiding a stall.
RECOVERY_BOUND = 30.0
NO_ACK_LIMIT = 90.0  # one update unacknowledged this long is a stall: the device failed


class Writer:
    """One device: updates its own key in turn, each once the previous was acknowledged."""

    def __init__(self, client: SyncClient, user: str, session_id: str, history: History) -> None:
        self.client = client
        self.user = user
        self.session_id = session_id
        self.history = history
        self.last = 0
        self.stopping = False
        self.task: asyncio.Task[None] | None = None
        client.on_change(self._applied)

    @property
    def key(self) -> str:
        return self.client.device_id

    def _applied(self, message: dict[str, Any]) -> None:
        if message.get("type") == "change":
            self.history.apply(self.session_id, self.key, self.client.epoch, self.client.version)

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        n = 0
        while not self.stopping:
            n += 1
            future = self.client.update_nowait({self.key: n})
            try:
                ack = await asyncio.wait_for(asyncio.shield(future), NO_ACK_LIMIT)
            except TimeoutError:
                raise AssertionError(
                    f"{self.user}/{self.key}: update {n} unacknowledged for {NO_ACK_LIMIT} s"
                ) from None
            self.history.ack(self.session_id, self.key, ack.op_id, ack.epoch, ack.version)
            self.last = n
            await asyncio.sleep(WRITE_INTERVAL)

    async def stop(self) -> str | None:
        """Lets the update in flight finish; what stopped the device early, if anything."""
        assert self.task is not None
        self.stopping = True
        try:
            await asyncio.wait_for(self.task, NO_ACK_LIMIT + 5)
        except Exception as error:  # reported with the case's row, then asserted on
            return f"{self.user}/{self.key}: {error!r}"
        return None


async def database(pg_dsn: str) -> tuple[dict[str, tuple[int, dict[str, Any]]], list[Row]]:
    """Each session's (version, state) and the whole change history, read from PostgreSQL."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        sessions = {
            str(r["session_id"]): (int(r["version"]), json.loads(r["state"]))
            for r in await conn.fetch("SELECT session_id, version, state FROM sessions")
        }
        rows = [
            Row(str(r["session_id"]), int(r["epoch"]), int(r["version"]), r["op_id"])
            for r in await conn.fetch("SELECT session_id, epoch, version, op_id FROM changes")
        ]
    finally:
        await conn.close()
    return sessions, rows


async def open_devices(system: System, history: History) -> list[Writer]:
    first, second = (edge.url for edge in system.edges)
    writers = []
    for n in range(USERS):
        user = f"user{n}"
        phone = system.client(user, "phone", [first, second])
        laptop = system.client(user, "laptop", [second, first])
        session = await phone.open(initial_state={})
        await laptop.open(session["session_id"])
        for client in (phone, laptop):
            writers.append(Writer(client, user, session["session_id"], history))
    return writers


async def wait_recovered(
    history: History, cleared_at: float, devices: set[tuple[str, str]], writers: list[Writer]
) -> float | None:
    """Seconds until recovery (see History.recovery_seconds); None if it took more than
    twice the bound, or a device stopped (nothing more to wait for)."""
    while (took := history.recovery_seconds(cleared_at, devices)) is None:
        late = time.monotonic() - cleared_at > 2 * RECOVERY_BOUND
        if late or any(w.task is not None and w.task.done() for w in writers):
            return None
        await asyncio.sleep(0.1)
    return took


@pytest.mark.parametrize("fault", MATRIX, ids=str)
async def test_fault_under_load(
    fault: Fault,
    pg_dsn: str,
    redis_url: str,
    amqp_url: str,
    servers: ServerControl,
    tmp_path: Path,
) -> None:
    # `servers` makes every URL point at this test process's own throwaway servers.
    async with (
        core_and_relay(pg_dsn, redis_url, amqp_url, tmp_path) as (core, relay),
        system_around(core, amqp_url, tmp_path) as system,
    ):
        try:
            await run_case(fault, system, servers, core, relay, pg_dsn)
        except BaseException:
            dump_logs(system)
            for service in (core, relay):
                print(f"--- {service.name} ---\n{service.log_tail()}")
            raise


async def run_case(
    fault: Fault,
    system: System,
    servers: ServerControl,
    core: Service,
    relay: Service,
    pg_dsn: str,
) -> None:
    await system.start_edge("edge-a")
    target = await system.start_edge("edge-b")
    history = History()
    writers = await open_devices(system, history)
    parts = Parts(system, servers, core, relay, target)
    for writer in writers:
        writer.start()
    await asyncio.sleep(STEADY)

    injected_at = time.monotonic()
    stopped = await fault.inject(parts)
    try:
        await asyncio.sleep(FAULT_LENGTH)
        cleared_at = time.monotonic()
    finally:
        # Cleared even when the case fails: a stopped server would hang the next one.
        await fault.clear(parts, stopped)
    devices = {(w.session_id, w.key) for w in writers}
    recovery = await wait_recovered(history, cleared_at, devices, writers)
    await asyncio.sleep(STEADY)
    failures = [error for writer in writers if (error := await writer.stop()) is not None]

    sessions, rows = await database(pg_dsn)
    verdict = check(history, rows)
    unconverged = []
    told = 0
    for writer in writers:
        version, state = sessions[writer.session_id]
        if state.get(writer.key) != writer.last:
            failures.append(f"{writer.user}/{writer.key}: last acked {writer.last} not in state")
        client = writer.client
        with contextlib.suppress(TimeoutError):  # judged just below, with its state
            await client.wait_for_version(version, within=30)
        told += client.stats.snapshots_unrecovered
        converged = client.version == version and client.state == state
        if not converged and client.stats.snapshots_unrecovered == 0:
            unconverged.append(f"{writer.user}/{writer.key} at {client.version} of {version}")
    took = "none" if recovery is None else f"{recovery:.1f} s"
    # Availability while the part was down, for the table: acks between injection and clearing.
    during = sum(1 for a in history.acked if injected_at < a.at < cleared_at)
    print(
        f"| {fault} | acked {verdict.acked} ({during} during the fault) | lost {len(verdict.lost)} "
        f"| dupes {verdict.dupes} | recovery {took} | recovered:false {told} "
        f"| device failures {len(failures)} |"
    )
    for writer in writers:
        await writer.client.close()
    assert verdict.acked > 0
    assert not failures, failures
    assert not verdict.lost, f"acknowledged but not in the database: {verdict.lost[:5]}"
    assert verdict.dupes == 0, verdict
    assert not unconverged, f"neither converged nor told recovered:false: {unconverged}"
    assert recovery is not None, f"{fault}: not every device was served again"
    assert recovery <= RECOVERY_BOUND, f"{fault}: service resumed after {recovery:.1f} s"
