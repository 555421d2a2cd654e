"""Each record becomes one parseable JSON line with the fixed keys first."""

import json
import logging
import sys

from hypothesis import given
from hypothesis import strategies as st

from libs.log.context import bind
from libs.log.formatter import JsonFormatter
from libs.log.redaction import REDACTED

_JWT = ".".join(["eyJhbGciOiJFUzI1NiJ9", "eyJzdWIiOiJ1LTEifQ", "AAAA"])
_OPAQUE = "opaque-secret-value"


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("syncbridge.edge", logging.INFO, __file__, 1, msg, args, None)
    record.created = 1770843300.25  # 2026-02-11T20:55:00.250Z
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def _format(record: logging.LogRecord) -> dict[str, object]:
    line = JsonFormatter("ws-edge").format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert isinstance(parsed, dict)
    return parsed


def test_fixed_keys_in_order() -> None:
    entry = _format(_record("client %s connected", "d-1"))
    assert list(entry.items()) == [
        ("ts", "2026-02-11T20:55:00.250Z"),
        ("level", "INFO"),
        ("logger", "syncbridge.edge"),
        ("service", "ws-edge"),
        ("msg", "client d-1 connected"),
    ]


def test_bound_then_extra_fields_and_fixed_keys_win() -> None:
    with bind(session_id="s-1", op_id="bound"):
        entry = _format(_record("update", op_id="extra", version=7, level="spoofed"))
    assert entry["session_id"] == "s-1"
    assert entry["op_id"] == "extra"
    assert entry["version"] == 7
    assert entry["level"] == "INFO"


def test_secrets_in_message_args_extra_and_bound_fields_are_masked() -> None:
    with bind(authorization=f"Bearer {_JWT}"):
        entry = _format(
            _record(
                "upgrade with %s",
                f"Bearer {_JWT}",
                token=_OPAQUE,
                headers={"Cookie": f"sid={_OPAQUE}", "Origin": "https://app"},
                note=f"client sent {_JWT}",
            )
        )
    line = json.dumps(entry)
    assert _JWT not in line
    assert _OPAQUE not in line
    assert entry["msg"] == f"upgrade with Bearer {REDACTED}"
    assert entry["authorization"] == REDACTED
    assert entry["token"] == REDACTED
    assert entry["headers"] == {"Cookie": REDACTED, "Origin": "https://app"}
    assert entry["note"] == f"client sent {REDACTED}"


def test_exception_is_a_field_and_is_scrubbed() -> None:
    try:
        raise ValueError(f"bad token {_JWT}")
    except ValueError:
        record = _record("verify failed")
        record.exc_info = sys.exc_info()
    entry = _format(record)
    exc = entry["exc"]
    assert isinstance(exc, str)
    assert exc.startswith("Traceback")
    assert f"ValueError: bad token {REDACTED}" in exc
    assert _JWT not in exc


@given(st.text(st.characters(blacklist_categories=["Cs"]), min_size=1))
def test_any_user_id_stays_on_one_line(user: str) -> None:
    # A token's `sub` can hold newlines and controls: it must not forge a log line.
    with bind(user=user):
        parsed = _format(_record("hello %s", user, device=user))  # one line, valid JSON
    assert (parsed["level"], parsed["logger"], parsed["service"]) == (
        "INFO",
        "syncbridge.edge",
        "ws-edge",
    )
