"""The client's copy of its session, moved only by the server's ordered stream: pure.

`StateMirror` applies snapshots, changes, handoffs and presence as they arrive
and says what each was: applied, stale (a duplicate, another session, an
epoch a snapshot replaced) or a gap (the client must resume). It does no I/O,
so the ordering rules are tested frame by frame without a server
(mirror_test.py); client.py feeds it and acts on the verdicts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from libs.merge_patch.merge_patch import apply_merge_patch


class Verdict(enum.Enum):
    APPLIED = "applied"
    STALE = "stale"  # a duplicate, another session's, or from a replaced epoch: dropped
    GAP = "gap"  # a version is missing before it: resume to get it


def merge(state: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Applies a change's merge patch; the state stays a JSON object (core refuses others)."""
    merged = apply_merge_patch(state, patch)
    return merged if isinstance(merged, dict) else {}


@dataclass
class StateMirror:
    """One session as the stream has shown it so far."""

    session_id: str | None = None
    epoch: int = 0
    version: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    active_device: str = ""
    devices: list[dict[str, Any]] = field(default_factory=list)
    ended: bool = False

    def apply_snapshot(self, session: dict[str, Any]) -> None:
        """A snapshot replaces everything (a new session, or history that was lost)."""
        self.session_id = session["session_id"]
        self.epoch = int(session["epoch"])
        self.version = int(session["version"])
        self.state = dict(session.get("state", {}))
        self.active_device = session.get("active_device", "")
        self.devices = list(session.get("devices", []))
        self.ended = False

    def apply_change(self, message: dict[str, Any]) -> Verdict:
        """A `change` or `handoff`: applied only if it is the next version of this epoch."""
        if message.get("session_id") != self.session_id:
            return Verdict.STALE
        epoch, version = int(message["epoch"]), int(message["version"])
        if epoch != self.epoch or version <= self.version:
            return Verdict.STALE
        if version != self.version + 1:
            return Verdict.GAP
        self.version = version
        if message["type"] == "handoff":
            self.active_device = message.get("active_device", self.active_device)
        elif message.get("kind") == "ended":
            self.ended = True
        elif "patch" in message:
            self.state = merge(self.state, message["patch"])
        return Verdict.APPLIED

    def apply_presence(self, message: dict[str, Any]) -> bool:
        """Who is online in this session; False for another session's presence."""
        if message.get("session_id") != self.session_id:
            return False
        self.devices = list(message.get("devices", []))
        return True

    def apply_own(
        self, sent: dict[str, Any], *, epoch: int, version: int, outcome: str, device_id: str
    ) -> dict[str, Any] | None:
        """Our own acknowledged op, applied at once when it directly follows what we have.

        Its `change` is on its way through the bus, but a device that updates the
        same field twice in a row must not wait for it: the next update's
        base_version would be stale and overlap, a conflict with itself. Only an
        op applied as sent (not rebased) is known exactly; the change arriving
        later is then a duplicate and dropped. Returns the message it stands for.
        """
        if epoch != self.epoch or version != self.version + 1:
            return None
        common = {
            "session_id": self.session_id,
            "epoch": epoch,
            "version": version,
            "device_id": device_id,
            "op_id": sent["op_id"],
        }
        if sent["type"] == "update" and outcome == "applied":
            self.version = version
            self.state = merge(self.state, sent["patch"])
            return {"type": "change", **common, "kind": "update", "patch": sent["patch"]}
        if sent["type"] == "handoff":
            self.version = version
            self.active_device = sent["to_device"]
            return {"type": "handoff", **common, "active_device": sent["to_device"]}
        return None
