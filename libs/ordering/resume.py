"""Version and epoch rules for resuming a session: replay what was missed, or resync.

A session's changes carry (epoch, version): versions are gap-free within an
epoch, and the epoch changes only when the change history is reset. A device
that knows (epoch, version) either gets every change after it, in order, or
a full snapshot flagged `recovered: false`: never a silent gap. Two halves:

- `plan_resume` (core's side, for ChangesSince / a device's resume) chooses
  between a replay and a snapshot;
- `Sequencer` (the edge's side, for each session it fans out) puts an
  unordered, duplicating stream of changes back in order and says when to
  backfill.

Both services apply the same rule, so it lives here rather than in either.

Pure: no I/O; callers fetch and send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

SnapshotReason: TypeAlias = Literal[
    "epoch_changed", "history_trimmed", "too_far_behind", "client_ahead"
]


@dataclass(frozen=True, slots=True)
class Replay:
    """Send the changes with versions in (from_version_exclusive, to_version_inclusive]."""

    from_version_exclusive: int
    to_version_inclusive: int

    @property
    def count(self) -> int:
        """How many changes to send; 0 when the client is current."""
        return self.to_version_inclusive - self.from_version_exclusive


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Send the full state with `recovered: false`, and why (for logs and metrics)."""

    reason: SnapshotReason


ResumePlan: TypeAlias = Replay | Snapshot


def next_expected(version: int) -> int:
    """The version that must follow `version`: versions are gap-free within an epoch."""
    return version + 1


def plan_resume(
    client_epoch: int,
    client_version: int,
    current_epoch: int,
    current_version: int,
    oldest_replayable_version: int | None,
    max_replay: int,
) -> ResumePlan:
    """Replay or snapshot for a client at (client_epoch, client_version).

    Checked in this order, the first that holds decides:
    1. another epoch: Snapshot("epoch_changed"); its versions mean nothing here;
    2. client_version > current_version: Snapshot("client_ahead"); a client
       claiming a future version gets the truth, never a silent gap;
    3. client_version == current_version: the empty Replay;
    4. the change right after the client's version is no longer in the log
       (client_version < oldest_replayable_version - 1, or the log holds
       nothing: `oldest_replayable_version` is None): Snapshot("history_trimmed");
    5. more than `max_replay` changes missing: Snapshot("too_far_behind"),
       since one snapshot is cheaper than a long replay;
    6. otherwise Replay(client_version, current_version).
    """
    if min(client_version, current_version, max_replay) < 0:
        raise ValueError(
            "versions and max_replay are never negative: "
            f"client_version={client_version}, current_version={current_version}, "
            f"max_replay={max_replay}"
        )
    if client_epoch != current_epoch:
        return Snapshot("epoch_changed")
    if client_version > current_version:
        return Snapshot("client_ahead")
    if client_version == current_version:
        return Replay(client_version, current_version)
    if oldest_replayable_version is None or client_version < oldest_replayable_version - 1:
        return Snapshot("history_trimmed")
    if current_version - client_version > max_replay:
        return Snapshot("too_far_behind")
    return Replay(client_version, current_version)


@dataclass(frozen=True, slots=True)
class Deliver:
    """The next change in order: deliver it (the sequencer has advanced past it)."""

    version: int


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Already delivered, or from an epoch that has been superseded: drop it."""

    version: int


@dataclass(frozen=True, slots=True)
class Gap:
    """Versions missing_from..missing_to (inclusive) must be backfilled first.

    The offered change was not accepted: backfill from `missing_from - 1`
    (ChangesSince returns the offered change too), or feed the missing
    changes and then offer it again.
    """

    missing_from: int
    missing_to: int


@dataclass(frozen=True, slots=True)
class Resync:
    """A change of a newer epoch: versions cannot bridge epochs, take a snapshot.

    After applying the snapshot, call `Sequencer.reset` with its position.
    """

    epoch: int


Verdict: TypeAlias = Deliver | Duplicate | Gap | Resync


class Sequencer:
    """Puts one session's changes in order for a consumer, by (epoch, version).

    Changes arrive from the message bus at least once and in no guaranteed
    order; a device must see each exactly once, in version order. The
    sequencer holds only its position (the last version delivered), not the
    changes: what is missing is fetched again, so memory stays constant no
    matter how far the stream runs ahead.
    """

    def __init__(self, epoch: int, version: int) -> None:
        """Starts at a snapshot's position: `version` is already delivered."""
        self._epoch = epoch
        self._version = version

    @property
    def epoch(self) -> int:
        """The epoch of the position."""
        return self._epoch

    @property
    def version(self) -> int:
        """The last version delivered (or covered by the snapshot)."""
        return self._version

    def offer(self, epoch: int, version: int) -> Verdict:
        """What to do with an incoming change at (epoch, version).

        Only `Deliver` moves the position; every other verdict leaves it, so
        offering the same change again after a backfill is always safe.
        """
        if epoch < self._epoch:
            return Duplicate(version)
        if epoch > self._epoch:
            return Resync(epoch)
        if version <= self._version:
            return Duplicate(version)
        expected = next_expected(self._version)
        if version > expected:
            return Gap(expected, version - 1)
        self._version = version
        return Deliver(version)

    def reset(self, epoch: int, version: int) -> None:
        """Moves to a snapshot's position after a resync (or any fresh snapshot)."""
        self._epoch = epoch
        self._version = version
