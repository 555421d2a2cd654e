"""The client protocol, pure: parse client frames into typed messages, build server ones.

One JSON object per text frame, each with a `type`. Parsing never raises
anything but `ProtocolError`, whose `code` is the stable code the client
gets in an `error` message. Every request may carry a client-chosen `ref`,
echoed in the answer to it (snapshot, ack or error). Unknown extra fields are
ignored so that older edges accept newer clients. The JSON Schemas in
`libs/protocol/schema/` describe the same messages; schema_test.py checks both agree.

Only what can be sent back is let in: a frame whose JSON holds `NaN` or
`Infinity` (Python's parser accepts them, JSON has no such numbers), a
number beyond a double, an unpaired surrogate escape (text no UTF-8 encoder
can write, nor PostgreSQL store) or nesting deeper than MAX_DEPTH is
`malformed_json`, and a `ref` is echoed only when it is a valid ref, so no
answer the edge builds from client input fails to encode.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, TypeAlias

from libs.protocol.codes import ErrorCode

MAX_ID_LENGTH = 128
MAX_REF_LENGTH = 64
MAX_TOKEN_LENGTH = 8192
# Containers (objects, arrays) nested in one frame: core takes patches 32 deep, and the
# patch sits two levels down; deeper only strains recursive encoders on the way back.
MAX_DEPTH = 64


class ProtocolError(Exception):
    """A client frame that is not a valid message; `ref` is echoed when it could be read."""

    def __init__(
        self, code: ErrorCode, message: str, *, field: str | None = None, ref: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.ref = ref


@dataclass(frozen=True, slots=True)
class Hello:
    """First message: names the device this connection speaks for."""

    device_id: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Open:
    """Create a session (no session_id) or attach to one; answered by a snapshot."""

    session_id: str | None
    initial_state: dict[str, Any] | None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Resume:
    """Reattach at (epoch, version): the missed changes then an ack, or a snapshot."""

    session_id: str
    epoch: int
    version: int
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Update:
    """An RFC 7396 merge patch against base_version; op_id makes re-sending safe."""

    op_id: str
    base_version: int
    epoch: int
    patch: dict[str, Any]
    require_lease: bool = False
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Handoff:
    """Move the active-device lease to `to_device`."""

    op_id: str
    to_device: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Refresh:
    """A new token for the same user, before the current one expires."""

    token: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Leave:
    """The device leaves: presence LEAVE, then the server closes with 1000."""

    ref: str | None = None


ClientMessage: TypeAlias = Hello | Open | Resume | Update | Handoff | Refresh | Leave

CLIENT_TYPES = ("hello", "open", "resume", "update", "handoff", "refresh", "leave")
SERVER_TYPES = ("welcome", "snapshot", "change", "ack", "presence", "handoff", "error")


class NotText(ProtocolError):
    """A text frame that was not UTF-8 on the wire: not answered, the connection closes
    1007 (RFC 6455 §8.1). The edge's socket layer decodes text with `surrogateescape`, so
    such bytes arrive as lone surrogates, which valid UTF-8 never decodes to."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.MALFORMED_JSON, "text frame is not UTF-8")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is beyond a double")
    return value


# A JSON escape of a surrogate code point (maybe paired, which is fine: checked after).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _frame_problem(frame: str, data: Any) -> str | None:
    """Why a parsed frame cannot be taken (or echoed), or None. Walks the value only
    when a cheap scan of the text says it might be too deep or hold a lone surrogate."""
    deep = frame.count("[") + frame.count("{") > MAX_DEPTH
    suspicious = _SURROGATE_ESCAPE.search(frame) is not None
    if not deep and not suspicious:
        return None
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if suspicious and not _encodable(value):
                return "frame holds an unpaired surrogate escape (not Unicode text)"
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                return f"frame is nested deeper than {MAX_DEPTH} levels"
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    stack.append((key, depth))
                stack.append((item, depth + 1))
    return None


def _valid_ref(ref: Any) -> str | None:
    """`ref` if it may be echoed: what `Fields.optional_text("ref", …)` accepts."""
    if isinstance(ref, str) and 0 < len(ref) <= MAX_REF_LENGTH and ref.isprintable():
        return ref
    return None


def parse(frame: str | bytes) -> ClientMessage:
    """The message in one frame, or ProtocolError with the stable code for the reply."""
    if isinstance(frame, bytes | bytearray | memoryview):
        raise ProtocolError(ErrorCode.MALFORMED_JSON, "binary frames are not accepted")
    if not frame.isascii() and not _encodable(frame):
        raise NotText
    try:
        data = json.loads(frame, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.MALFORMED_JSON, "frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.MALFORMED_JSON, "frame is not a JSON object")
    problem = _frame_problem(frame, data)
    if problem is not None:
        raise ProtocolError(ErrorCode.MALFORMED_JSON, problem)
    ref = _valid_ref(data.get("ref"))
    fields = Fields(data, ref)
    fields.optional_text("ref", MAX_REF_LENGTH)
    kind = data.get("type")
    if kind is None:
        raise ProtocolError(ErrorCode.MISSING_FIELD, "type: required", field="type", ref=ref)
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE, "type: not a client message type", field="type", ref=ref
        )
    match kind:
        case "hello":
            return Hello(fields.text("device_id", MAX_ID_LENGTH), ref)
        case "open":
            return Open(
                fields.optional_text("session_id", MAX_ID_LENGTH),
                fields.optional_json_object("initial_state"),
                ref,
            )
        case "resume":
            return Resume(
                fields.text("session_id", MAX_ID_LENGTH),
                fields.integer("epoch"),
                fields.integer("version"),
                ref,
            )
        case "update":
            return Update(
                fields.text("op_id", MAX_ID_LENGTH),
                fields.integer("base_version"),
                fields.integer("epoch"),
                fields.json_object("patch"),
                fields.optional_flag("require_lease"),
                ref,
            )
        case "handoff":
            return Handoff(
                fields.text("op_id", MAX_ID_LENGTH), fields.text("to_device", MAX_ID_LENGTH), ref
            )
        case "refresh":
            return Refresh(fields.text("token", MAX_TOKEN_LENGTH), ref)
        case _:
            return Leave(ref)


class Fields:
    """Typed field access that raises ProtocolError naming the field (HTTP bodies too)."""

    def __init__(self, data: dict[str, Any], ref: str | None) -> None:
        self._data = data
        self._ref = ref

    def _missing(self, name: str) -> ProtocolError:
        return ProtocolError(
            ErrorCode.MISSING_FIELD, f"{name}: required", field=name, ref=self._ref
        )

    def _invalid(self, name: str, expected: str) -> ProtocolError:
        return ProtocolError(
            ErrorCode.INVALID_FIELD, f"{name}: expected {expected}", field=name, ref=self._ref
        )

    def text(self, name: str, max_length: int) -> str:
        value = self._data.get(name)
        if value is None:
            raise self._missing(name)
        if not isinstance(value, str) or not value or len(value) > max_length:
            raise self._invalid(name, f"a non-empty string of at most {max_length} characters")
        if not value.isprintable():
            raise self._invalid(name, "printable characters")
        return value

    def optional_text(self, name: str, max_length: int) -> str | None:
        if self._data.get(name) is None:
            return None
        return self.text(name, max_length)

    def integer(self, name: str) -> int:
        value = self._data.get(name)
        if value is None:
            raise self._missing(name)
        # bool is an int subclass; JSON true is no version.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            raise self._invalid(name, "a non-negative integer")
        return value

    def json_object(self, name: str) -> dict[str, Any]:
        value = self._data.get(name)
        if value is None:
            raise self._missing(name)
        if not isinstance(value, dict):
            raise self._invalid(name, "a JSON object")
        return value

    def optional_json_object(self, name: str) -> dict[str, Any] | None:
        if self._data.get(name) is None:
            return None
        return self.json_object(name)

    def optional_flag(self, name: str) -> bool:
        value = self._data.get(name, False)
        if not isinstance(value, bool):
            raise self._invalid(name, "a boolean")
        return value


# --- server -> client ------------------------------------------------------

Message: TypeAlias = dict[str, Any]


def encode(message: Message) -> str:
    """One compact JSON text frame."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def _with_ref(message: Message, ref: str | None) -> Message:
    if ref is not None:
        message["ref"] = ref
    return message


def welcome(
    *,
    user_id: str,
    device_id: str,
    edge_id: str,
    ping_interval_seconds: float,
    token_expires_at: int,
    limits: dict[str, int | float],
    ref: str | None = None,
) -> Message:
    """The answer to hello."""
    return _with_ref(
        {
            "type": "welcome",
            "protocol": "syncbridge.v1",
            "user_id": user_id,
            "device_id": device_id,
            "edge_id": edge_id,
            "ping_interval_seconds": ping_interval_seconds,
            "token_expires_at": token_expires_at,
            "limits": limits,
        },
        ref,
    )


def snapshot(
    session: Message, *, recovered: bool, reason: str | None = None, ref: str | None = None
) -> Message:
    """The full session: the answer to open, or to a resume that cannot replay."""
    message: Message = {"type": "snapshot", "recovered": recovered, "session": session}
    if reason is not None:
        message["reason"] = reason
    return _with_ref(message, ref)


def ack(of: str, *, ref: str | None = None, **fields: Any) -> Message:
    """Success of a request (`of`: update, handoff, resume, refresh or leave)."""
    return _with_ref({"type": "ack", "of": of, **fields}, ref)


def presence(session_id: str, devices: list[dict[str, Any]]) -> Message:
    """Who is online in a session (the whole list: it replaces what the client had)."""
    return {"type": "presence", "session_id": session_id, "devices": devices}


def error(
    code: ErrorCode,
    message: str,
    *,
    ref: str | None = None,
    details: dict[str, Any] | None = None,
) -> Message:
    """A refused request or a warning; the connection stays open."""
    body: Message = {"type": "error", "code": code.value, "message": message}
    if details:
        body["details"] = details
    return _with_ref(body, ref)


def from_protocol_error(problem: ProtocolError) -> Message:
    """The error message answering an unparseable frame."""
    details = {"field": problem.field} if problem.field else None
    return error(problem.code, problem.message, ref=problem.ref, details=details)
