"""Which users this replica's RabbitMQ queue must be bound for: pure reference counts.

The queue is bound for a user when the first of their devices connects here
and unbound when the last leaves, so the replica receives exactly the change
events of the users it serves.
"""

from __future__ import annotations

from enum import Enum


class Action(Enum):
    BIND = "bind"
    UNBIND = "unbind"
    NONE = "none"


class BindingCounts:
    """Devices per user; `acquire`/`release` say when the binding must change."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def acquire(self, user: str) -> Action:
        """One more device of `user`: BIND if it is the first."""
        count = self._counts.get(user, 0) + 1
        self._counts[user] = count
        return Action.BIND if count == 1 else Action.NONE

    def release(self, user: str) -> Action:
        """One device of `user` fewer: UNBIND if it was the last; ValueError if none was held."""
        count = self._counts.get(user, 0)
        if count <= 0:
            raise ValueError("release without acquire")
        if count == 1:
            del self._counts[user]
            return Action.UNBIND
        self._counts[user] = count - 1
        return Action.NONE

    def count(self, user: str) -> int:
        """Devices of `user` currently counted."""
        return self._counts.get(user, 0)

    def users(self) -> list[str]:
        """Every user with at least one device: what must be bound right now."""
        return list(self._counts)
