"""What a connection needs from the replica that hosts it: a narrow Protocol, not Replica.

`Connection` reaches core, the bus, the hub and the token verifier only through
`ConnectionHost`; the Replica satisfies it structurally. A connection thus
names exactly the calls it makes (and a test can host one without a server
stack), instead of reaching into whatever the replica happens to hold.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol

from libs.auth.claims import Claims
from libs.core_client.client import Caller
from services.ws_edge.config import EdgeConfig
from services.ws_edge.hub import Hub
from services.ws_edge.metrics import EdgeMetrics
from syncbridge.session.v1 import session_pb2


class CoreCalls(Protocol):
    """The session-core calls a connection makes (core_client.CoreClient has them)."""

    async def open_session(
        self,
        caller: Caller,
        device_id: str,
        session_id: str | None = None,
        initial_state: dict[str, Any] | None = None,
    ) -> session_pb2.OpenSessionResponse: ...

    async def get_session(self, caller: Caller, session_id: str) -> session_pb2.Session: ...

    async def apply_update(
        self,
        caller: Caller,
        *,
        session_id: str,
        device_id: str,
        op_id: str,
        base_version: int,
        epoch: int,
        patch: dict[str, Any],
        require_lease: bool = False,
    ) -> session_pb2.ApplyUpdateResponse: ...

    async def handoff(
        self, caller: Caller, *, session_id: str, device_id: str, to_device: str, op_id: str
    ) -> session_pb2.HandoffResponse: ...

    async def changes_since(
        self, caller: Caller, session_id: str, epoch: int, version: int, limit: int = 0
    ) -> session_pb2.ChangesSinceResponse: ...

    async def update_presence(
        self,
        caller: Caller,
        *,
        session_id: str,
        device_id: str,
        edge_id: str,
        action: session_pb2.PresenceAction.ValueType,
    ) -> session_pb2.PresenceResponse: ...

    async def claim_device(
        self,
        caller: Caller,
        *,
        device_id: str,
        edge_id: str,
        action: session_pb2.PresenceAction.ValueType,
    ) -> session_pb2.ClaimDeviceResponse: ...


class UserBus(Protocol):
    """The bus as a connection uses it: its user's events, and presence out."""

    async def subscribe(self, user: str) -> None: ...

    async def unsubscribe(self, user: str) -> None: ...

    async def publish_presence(
        self, user: str, session_id: str, devices: list[dict[str, Any]]
    ) -> None: ...


class TokenVerifier(Protocol):
    def verify(self, token: str | None) -> Claims: ...


class ConnectionHost(Protocol):
    """The replica as its connections see it."""

    @property
    def config(self) -> EdgeConfig: ...

    @property
    def metrics(self) -> EdgeMetrics: ...

    @property
    def edge_id(self) -> str: ...

    @property
    def hub(self) -> Hub: ...

    @property
    def core(self) -> CoreCalls: ...

    @property
    def fanout(self) -> UserBus: ...

    @property
    def verifier(self) -> TokenVerifier: ...

    def background(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Runs `coro` detached but owned (shutdown waits for it; failures are logged)."""
        ...
