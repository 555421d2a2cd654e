"""Points the root logger at stderr, one JSON object per line."""

import logging
import sys
from typing import TextIO

from libs.log.formatter import JsonFormatter


def configure_logging(service: str, level: str = "INFO", *, stream: TextIO | None = None) -> None:
    """Makes every logger in the process write redacted JSON lines for `service`.

    `level` is a standard level name (DEBUG, INFO, WARNING, ERROR, CRITICAL),
    case-insensitive; ValueError otherwise. `stream` defaults to stderr. Any
    handler installed before is removed, so calling this twice is safe.
    """
    levels = logging.getLevelNamesMapping()
    if level.upper() not in levels:
        raise ValueError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(levels[level.upper()])
    # warnings.warn() output would otherwise bypass the JSON format on stderr.
    logging.captureWarnings(True)
