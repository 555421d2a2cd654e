"""The connection state machine: every message in every phase, no server."""

from __future__ import annotations

import pytest

from libs.protocol.codes import CloseCode, ErrorCode
from services.ws_edge import protocol
from services.ws_edge.connection_state import ConnectionState, Phase

HELLO = protocol.Hello(device_id="phone")
OPEN = protocol.Open(session_id=None, initial_state=None)
RESUME = protocol.Resume(session_id="s", epoch=0, version=3)
UPDATE = protocol.Update(op_id="o", base_version=1, epoch=0, patch={}, require_lease=False)
HANDOFF = protocol.Handoff(op_id="o", to_device="laptop")
REFRESH = protocol.Refresh(token="t")  # noqa: S106
LEAVE = protocol.Leave()
ALL = [HELLO, OPEN, RESUME, UPDATE, HANDOFF, REFRESH, LEAVE]


def _in(phase: Phase) -> ConnectionState:
    state = ConnectionState()
    if phase is not Phase.GREETING:
        state.greeted("phone")
    if phase is Phase.IN_SESSION:
        state.attach("s")
    assert state.phase is phase
    return state


# What each phase refuses; anything not listed runs.
EXPECTED: dict[Phase, dict[type, ErrorCode]] = {
    Phase.GREETING: {
        type(m): ErrorCode.HELLO_REQUIRED for m in ALL if not isinstance(m, protocol.Hello)
    },
    Phase.READY: {
        protocol.Hello: ErrorCode.ALREADY_HELLO,
        protocol.Update: ErrorCode.NO_SESSION,
        protocol.Handoff: ErrorCode.NO_SESSION,
    },
    Phase.IN_SESSION: {
        protocol.Hello: ErrorCode.ALREADY_HELLO,
        protocol.Open: ErrorCode.ALREADY_OPEN,
        protocol.Resume: ErrorCode.ALREADY_OPEN,
    },
}


@pytest.mark.parametrize("phase", list(EXPECTED))
@pytest.mark.parametrize("message", ALL, ids=lambda m: type(m).__name__)
def test_each_message_in_each_phase(phase: Phase, message: protocol.ClientMessage) -> None:
    refusal = _in(phase).refusal(message)
    expected = EXPECTED[phase].get(type(message))
    assert (refusal.code if refusal else None) == expected


def test_a_connection_walks_through_its_phases() -> None:
    state = ConnectionState()
    seen = [state.phase]
    state.greeted("phone")
    seen.append(state.phase)
    state.attach("s1")
    seen.append(state.phase)
    assert state.detach() == "s1"
    seen.append(state.phase)
    assert state.detach() is None
    state.attach("s2")
    assert state.close(CloseCode.NORMAL)
    seen.append(state.phase)
    assert seen == [Phase.GREETING, Phase.READY, Phase.IN_SESSION, Phase.READY, Phase.CLOSED]
    assert state.device_id == "phone"


def test_the_first_close_code_wins() -> None:
    state = _in(Phase.READY)
    assert state.close(CloseCode.SLOW_CONSUMER)
    assert not state.close(CloseCode.GOING_AWAY)
    assert state.close_code == CloseCode.SLOW_CONSUMER


def test_hello_is_due_in_time_only_while_greeting() -> None:
    assert ConnectionState(hello_deadline=105.0).recv_timeout(100.0) == 5.0
    assert _in(Phase.READY).recv_timeout(100.0) is None
    assert _in(Phase.IN_SESSION).recv_timeout(100.0) is None
    assert not _in(Phase.READY).hello_overdue(1e12)


def test_other_frames_do_not_push_the_hello_deadline_back() -> None:
    state = ConnectionState(hello_deadline=10.0)
    for now in (1.0, 4.0, 9.5):
        assert state.refusal(OPEN) is not None  # refused, and the clock runs on
        assert state.recv_timeout(now) == 10.0 - now
        assert not state.hello_overdue(now)
    assert state.recv_timeout(12.0) == 0.0
    assert state.hello_overdue(10.0)


def test_transitions_out_of_order_are_bugs() -> None:
    closing = _in(Phase.READY)
    closing.close(CloseCode.GOING_AWAY)
    closing.attach("s")  # a close during the open: cleanup detaches it
    assert closing.detach() == "s"
    with pytest.raises(RuntimeError, match="hello in phase ready"):
        _in(Phase.READY).greeted("laptop")
    with pytest.raises(RuntimeError, match="attach in phase greeting"):
        ConnectionState().attach("s")
    with pytest.raises(RuntimeError, match="attach in phase in_session"):
        _in(Phase.IN_SESSION).attach("s2")
    with pytest.raises(ValueError, match="device id"):
        ConnectionState().greeted("")
