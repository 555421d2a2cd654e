"""The connection state machine, sans I/O: which message a connection accepts when.

A connection is greeting (no `hello` yet), ready (a device, no session),
in a session, or closed. `ConnectionState` holds only that, and answers, for
each parsed client message, whether it may run now or which stable error
code refuses it. connection.py does the I/O (socket, core, bus) around it;
every rule here is unit-tested without a server (connection_state_test.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from libs.protocol.codes import ErrorCode
from services.ws_edge import protocol


class Phase(enum.Enum):
    GREETING = "greeting"  # connected, waiting for `hello`
    READY = "ready"  # a device: may open or resume a session
    IN_SESSION = "in_session"  # a session is open: updates and handoffs go to it
    CLOSED = "closed"  # a close code was chosen: nothing more is handled


@dataclass(frozen=True)
class Refusal:
    """A message refused in the current phase: the error the device gets."""

    code: ErrorCode
    message: str


_NEEDS_SESSION = (protocol.Update, protocol.Handoff)
_OPENS_SESSION = (protocol.Open, protocol.Resume)


class ConnectionState:
    """Phase of one connection; transitions are the methods, each checked."""

    def __init__(self, hello_deadline: float = float("inf")) -> None:
        # When `hello` is due (a monotonic time): one deadline for the whole greeting,
        # so frames that are not `hello` (each refused) cannot push it back.
        self.hello_deadline = hello_deadline
        self.device_id = ""
        self.session_id: str | None = None
        self.close_code: int | None = None

    @property
    def phase(self) -> Phase:
        if self.close_code is not None:
            return Phase.CLOSED
        if not self.device_id:
            return Phase.GREETING
        return Phase.IN_SESSION if self.session_id is not None else Phase.READY

    def recv_timeout(self, now: float) -> float | None:
        """How long the next read may wait: until the hello deadline; afterwards, forever
        (a silent peer is found by the WebSocket pings, a live one may just listen)."""
        if self.phase is not Phase.GREETING:
            return None
        return max(0.0, self.hello_deadline - now)

    def hello_overdue(self, now: float) -> bool:
        """Still greeting at or after the deadline: the connection closes 4408."""
        return self.phase is Phase.GREETING and now >= self.hello_deadline

    def refusal(self, message: protocol.ClientMessage) -> Refusal | None:
        """None if `message` may run now; else the error that refuses it."""
        phase = self.phase
        if phase is Phase.GREETING and not isinstance(message, protocol.Hello):
            return Refusal(ErrorCode.HELLO_REQUIRED, "send hello first")
        if phase is not Phase.GREETING and isinstance(message, protocol.Hello):
            return Refusal(ErrorCode.ALREADY_HELLO, "hello was already sent")
        if phase is Phase.IN_SESSION and isinstance(message, _OPENS_SESSION):
            return Refusal(ErrorCode.ALREADY_OPEN, "a session is already open")
        if phase is Phase.READY and isinstance(message, _NEEDS_SESSION):
            return Refusal(ErrorCode.NO_SESSION, "open or resume a session first")
        return None

    def greeted(self, device_id: str) -> None:
        """`hello` accepted: the connection is this device's from now on."""
        if self.phase is not Phase.GREETING:
            raise RuntimeError(f"hello in phase {self.phase.value}")
        if not device_id:
            raise ValueError("a device id is required")
        self.device_id = device_id

    def attach(self, session_id: str) -> None:
        """A session is being opened or resumed (its delivery watches from now)."""
        # Not checked against CLOSED: a close may land while core answers the open,
        # and cleanup then detaches what was attached.
        if not self.device_id or self.session_id is not None:
            raise RuntimeError(f"attach in phase {self.phase.value}")
        self.session_id = session_id

    def detach(self) -> str | None:
        """The session (if any) is left; returns which one."""
        session_id, self.session_id = self.session_id, None
        return session_id

    def close(self, code: int) -> bool:
        """Chooses the close code; False if one was already chosen (the first one wins)."""
        if self.close_code is not None:
            return False
        self.close_code = code
        return True
