"""Renders a LogRecord as one JSON object on one line, redacted."""

import json
import logging
from datetime import UTC, datetime

from libs.log.context import bound_fields
from libs.log.redaction import JsonValue, redact

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats records as {"ts", "level", "logger", "service", "msg", ...fields}.

    Bound context fields come next, then the call's `extra` fields (which win
    over bound ones), then "exc" with the traceback text. The five fixed keys
    are never overridden, so every line can be parsed the same way.
    """

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        """Returns the record as a single line of JSON with every secret masked."""
        entry: dict[str, object] = {
            "ts": _rfc3339(record.created),
            "level": record.levelname,
            "logger": record.name,
            "service": self._service,
            "msg": record.getMessage(),
        }
        fields = {**bound_fields(), **_extra_fields(record)}
        for key, value in fields.items():
            entry.setdefault(key, value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        redacted: JsonValue = redact(entry)
        return json.dumps(redacted, separators=(",", ":"))


def _extra_fields(record: logging.LogRecord) -> dict[str, object]:
    return {key: value for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES}


def _rfc3339(created: float) -> str:
    stamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
