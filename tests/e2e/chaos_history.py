"""The history of a fault run and its checker, Jepsen style.

Clients record what they saw (each acknowledged update with its op_id and
version, each change their mirror applied); after the run the checker reads
the database's change history and compares: an acked op missing from the
database (or at another version) is lost, an op_id or a version that occurs
twice is a duplicate. Pure: the test feeds it the rows, so it is tested alone.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Acked:
    """An update a client was told is committed."""

    session_id: str
    device: str
    op_id: str
    epoch: int
    version: int
    at: float


@dataclass(frozen=True)
class Applied:
    """A change a client's mirror applied (`on_change` of a change message)."""

    session_id: str
    device: str
    epoch: int
    version: int
    at: float


@dataclass(frozen=True)
class Row:
    """One row of the database's `changes` table."""

    session_id: str
    epoch: int
    version: int
    op_id: str | None


@dataclass
class History:
    acked: list[Acked] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)

    def ack(self, session_id: str, device: str, op_id: str, epoch: int, version: int) -> None:
        self.acked.append(Acked(session_id, device, op_id, epoch, version, time.monotonic()))

    def apply(self, session_id: str, device: str, epoch: int, version: int) -> None:
        self.applied.append(Applied(session_id, device, epoch, version, time.monotonic()))

    def devices(self) -> set[tuple[str, str]]:
        return {(a.session_id, a.device) for a in self.acked}

    def recovery_seconds(self, cleared_at: float, devices: set[tuple[str, str]]) -> float | None:
        """Time from `cleared_at` until every device had an update acknowledged and had seen,
        through its stream or its own acks, every version acked anywhere in its session
        before `cleared_at`; None while some device has not."""
        worst = 0.0
        for session_id, device in devices:
            target = max(
                (
                    a.version
                    for a in self.acked
                    if a.session_id == session_id and a.at <= cleared_at
                ),
                default=0,
            )
            own = [a for a in self.acked if (a.session_id, a.device) == (session_id, device)]
            first_ack = min((a.at for a in own if a.at > cleared_at), default=None)
            reached = [
                e.at
                for e in self.applied
                if (e.session_id, e.device) == (session_id, device) and e.version >= target
            ]
            caught_up = min(reached, default=None)
            if first_ack is None or caught_up is None:
                return None
            worst = max(worst, first_ack - cleared_at, caught_up - cleared_at)
        return worst


@dataclass(frozen=True)
class Verdict:
    acked: int
    lost: list[Acked]
    duplicate_ops: list[str]
    duplicate_versions: list[tuple[str, int, int]]
    applied_twice: list[Applied]

    @property
    def dupes(self) -> int:
        return len(self.duplicate_ops) + len(self.duplicate_versions) + len(self.applied_twice)


def check(history: History, rows: list[Row]) -> Verdict:
    """Compares what clients were told with what the database holds."""
    by_op = {(r.session_id, r.op_id): r for r in rows if r.op_id}
    lost = [
        a
        for a in history.acked
        if (row := by_op.get((a.session_id, a.op_id))) is None
        or (row.epoch, row.version) != (a.epoch, a.version)
    ]
    op_counts = Counter((r.session_id, r.op_id) for r in rows if r.op_id)
    version_counts = Counter((r.session_id, r.epoch, r.version) for r in rows)
    applied_counts = Counter((e.session_id, e.device, e.epoch, e.version) for e in history.applied)
    seen: set[tuple[str, str, int, int]] = set()
    applied_twice = []
    for event in history.applied:
        key = (event.session_id, event.device, event.epoch, event.version)
        if applied_counts[key] > 1 and key in seen:
            applied_twice.append(event)
        seen.add(key)
    return Verdict(
        acked=len(history.acked),
        lost=lost,
        duplicate_ops=[f"{s}/{op}" for (s, op), n in op_counts.items() if n > 1],
        duplicate_versions=[key for key, n in version_counts.items() if n > 1],
        applied_twice=applied_twice,
    )
