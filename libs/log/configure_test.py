"""configure_logging routes every logger to one JSON line per record."""

import io
import json
import logging
from collections.abc import Iterator

import pytest

from libs.log.configure import configure_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.mark.usefixtures("restore_root")
def test_lines_are_json_and_level_filters() -> None:
    stream = io.StringIO()
    configure_logging("session-core", "warning", stream=stream)
    log = logging.getLogger("libs.anything")
    log.info("dropped")
    log.warning("kept", extra={"session_id": "s-1"})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["service"] == "session-core"
    assert entry["level"] == "WARNING"
    assert entry["msg"] == "kept"
    assert entry["session_id"] == "s-1"


@pytest.mark.usefixtures("restore_root")
def test_calling_twice_keeps_one_handler() -> None:
    stream = io.StringIO()
    configure_logging("a", stream=stream)
    configure_logging("b", stream=stream)
    logging.getLogger("x").info("once")
    assert [json.loads(line)["service"] for line in stream.getvalue().splitlines()] == ["b"]


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure_logging("a", "LOUD")
