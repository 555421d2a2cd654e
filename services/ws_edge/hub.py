"""The replica's index of its connections: by user (device cap, bindings) and by session
(fan-out). Events from the bus are handed to the deliveries of the sessions they name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from services.ws_edge.delivery import Delivery
from syncbridge.session.v1 import session_pb2


class Member(Protocol):
    """What the hub needs of a connection."""

    @property
    def user_id(self) -> str: ...

    @property
    def device_id(self) -> str: ...

    def send_presence(self, session_id: str, devices: list[dict[str, Any]]) -> None: ...

    async def replace(self) -> None:
        """A newer connection of the same device took over: close this one (4010)."""


class Hub:
    """Connections and session deliveries of this replica; all methods are synchronous."""

    def __init__(self) -> None:
        self._by_user: dict[str, set[Member]] = {}
        self._by_session: dict[str, dict[Member, Delivery]] = {}

    # -- users --------------------------------------------------------------

    def devices_of(self, user: str) -> set[str]:
        return {member.device_id for member in self._by_user.get(user, ())}

    def admit(self, member: Member, max_devices: int) -> tuple[bool, list[Member]]:
        """Registers `member` unless its user already has `max_devices` other devices here.

        Returns (admitted, replaced): the older connections of the same device, which
        are no longer registered here and which the caller closes (4010).
        """
        members = self._by_user.get(member.user_id, set())
        replaced = [m for m in members if m.device_id == member.device_id and m is not member]
        if not replaced and len(self.devices_of(member.user_id)) >= max_devices:
            return False, []
        for old in replaced:
            members.discard(old)
        self._by_user.setdefault(member.user_id, members).add(member)
        return True, replaced

    def remove(self, member: Member) -> None:
        members = self._by_user.get(member.user_id)
        if members is not None:
            members.discard(member)
            if not members:
                del self._by_user[member.user_id]

    def members(self) -> Iterator[Member]:
        for members in list(self._by_user.values()):
            yield from list(members)

    @property
    def connection_count(self) -> int:
        return sum(len(members) for members in self._by_user.values())

    # -- sessions -----------------------------------------------------------

    def watch(self, member: Member, delivery: Delivery) -> None:
        self._by_session.setdefault(delivery.session_id, {})[member] = delivery

    def unwatch(self, member: Member, session_id: str) -> None:
        watchers = self._by_session.get(session_id)
        if watchers is not None:
            watchers.pop(member, None)
            if not watchers:
                del self._by_session[session_id]

    @property
    def session_count(self) -> int:
        return len(self._by_session)

    def dispatch_change(self, change: session_pb2.Change) -> int:
        """Offers a bus change to every delivery of its session; returns how many."""
        watchers = self._by_session.get(change.session_id)
        if not watchers:
            return 0
        for member, delivery in list(watchers.items()):
            # Sessions are per user, but a mis-routed event must never cross users.
            if member.user_id == change.user_id:
                delivery.offer(change)
        return len(watchers)

    def dispatch_presence(self, user: str, session_id: str, devices: list[dict[str, Any]]) -> None:
        for member in list(self._by_session.get(session_id, {})):
            if member.user_id == user:
                member.send_presence(session_id, devices)

    def resync_all(self) -> None:
        """After the bus reconnected: every delivery checks core for what it missed."""
        for watchers in list(self._by_session.values()):
            for delivery in list(watchers.values()):
                delivery.resync()

    def resync_user(self, user: str | None) -> None:
        """An event for `user` (None: unknown) was lost here: their deliveries check core."""
        if user is None:
            self.resync_all()
            return
        for watchers in list(self._by_session.values()):
            for member, delivery in list(watchers.items()):
                if member.user_id == user:
                    delivery.resync()
