"""The client's outbox: its ops awaiting an ack, in order, one in flight: pure.

Every update or handoff the app makes waits here until the server answers it.
Exactly one is on the wire at a time, oldest first, and an update takes its
base_version when it is first sent, once the stream has reached the device's
own previous op, so a device writing one field twice never conflicts with
itself. After a reconnect the op in flight is sent again unchanged (same
op_id, same base_version): core answers a replay, never a second apply.

No I/O: client.py asks `next_to_send` what to put on the wire and reports
acks, errors and snapshots back; outbox_test.py drives these rules directly.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from libs.protocol.codes import ErrorCode

# Worth retrying later with the same op_id: nothing is known to have happened.
TRANSIENT_ERRORS = frozenset({ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL, ErrorCode.RATE_LIMITED})
# The server's pause before a transient error's retry when it names none.
DEFAULT_RETRY_AFTER = 0.5


@dataclass(frozen=True)
class Ack:
    """A committed update or handoff."""

    op_id: str
    version: int
    epoch: int
    outcome: str = "applied"
    replayed: bool = False


@dataclass
class Entry:
    """One op the app made, and the future its caller waits on."""

    message: dict[str, Any]
    future: asyncio.Future[Ack]
    sends: int = 0


@dataclass(frozen=True)
class Send:
    """The op to put on the wire now; `resend` when an earlier connection carried it."""

    message: dict[str, Any]
    resend: bool


@dataclass(frozen=True)
class Acked:
    """The outcome of an ack for one of our ops: it left the outbox."""

    entry: Entry
    ack: Ack


@dataclass(frozen=True)
class Retry:
    """A transient refusal: send `op_id` again (same op_id) after `delay` seconds."""

    op_id: str
    delay: float


@dataclass(frozen=True)
class Refused:
    """A refusal for good: the op left the outbox; its caller gets the error."""

    entry: Entry


class Outbox:
    """The unacknowledged ops of one client, in the order the app made them."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self.in_flight: str | None = None
        # The version of our own last acknowledged op: the next op is made against
        # a state that includes it, so it waits until the stream got that far.
        self.own_floor = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, message: dict[str, Any], future: asyncio.Future[Ack]) -> None:
        """Queues an op (its `op_id` is its key) behind every earlier one."""
        self._entries[message["op_id"]] = Entry(message, future)

    def next_to_send(self, *, epoch: int, version: int) -> Send | None:
        """The oldest op, now in flight; None while one is in flight or it must wait.

        `epoch`/`version` are the client's view of the session: a first send of an
        update is made against them, and waits while they are behind our last op.
        """
        if self.in_flight is not None or not self._entries:
            return None
        entry = next(iter(self._entries.values()))
        message = entry.message
        if message["type"] == "update" and "base_version" not in message:
            if version < self.own_floor:
                return None  # wants_send turns true when the stream reaches our last op
            message["base_version"] = version
            message["epoch"] = epoch
        entry.sends += 1
        self.in_flight = message["op_id"]
        return Send(message, resend=entry.sends > 1)

    def wants_send(self, version: int) -> bool:
        """Whether `next_to_send` would give an op, now that the stream is at `version`."""
        return bool(self._entries) and self.in_flight is None and version >= self.own_floor

    def reconnected(self) -> None:
        """A new connection is ready: what was in flight on the old one goes again."""
        self.in_flight = None

    def snapshot(self, version: int) -> None:
        """A snapshot replaced the session: our last op may be beyond what it shows."""
        self.own_floor = min(self.own_floor, version)

    def release(self, op_id: str) -> bool:
        """After a retry's pause: True if `op_id` is still the one in flight (send it again)."""
        if self.in_flight != op_id:
            return False
        self.in_flight = None
        return True

    def acked(self, message: dict[str, Any], *, epoch: int) -> Acked | None:
        """An `ack` arrived: the op it names leaves the outbox (None: not one of ours)."""
        op_id = message.get("op_id")
        if not isinstance(op_id, str) or op_id not in self._entries:
            return None
        entry = self._settle(op_id)
        ack = Ack(
            op_id=op_id,
            version=int(message["version"]),
            epoch=int(message["epoch"]),
            outcome=str(message.get("outcome", "applied")),
            replayed=bool(message.get("replayed", False)),
        )
        if ack.epoch == epoch:
            self.own_floor = max(self.own_floor, ack.version)
        return Acked(entry, ack)

    def refused(self, code: str, details: dict[str, Any]) -> Retry | Refused | None:
        """An `error` arrived: retry its op later, give it up, or None (names no op of ours)."""
        op_id = details.get("op_id")
        if code == ErrorCode.RATE_LIMITED and not isinstance(op_id, str):
            # Refused before it was read, so it names no op: retry the one in flight.
            op_id = self.in_flight
        if not isinstance(op_id, str) or op_id not in self._entries:
            return None
        if code in TRANSIENT_ERRORS:
            return Retry(op_id, float(details.get("retry_after", DEFAULT_RETRY_AFTER)))
        return Refused(self._settle(op_id))

    def fail_all(self, error: BaseException) -> None:
        """The client is done: every waiting caller gets `error`; the outbox empties."""
        for entry in self._entries.values():
            if not entry.future.done():
                entry.future.set_exception(error)
        self._entries.clear()
        self.in_flight = None

    def _settle(self, op_id: str) -> Entry:
        entry = self._entries.pop(op_id)
        if self.in_flight == op_id:
            self.in_flight = None
        return entry
