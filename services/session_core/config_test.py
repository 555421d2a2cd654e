"""`session_core --help` and `outbox_relay --help` list every SYNCBRIDGE_CORE_* variable once."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from libs.config.reference import entries
from services.session_core.config import CoreConfig

BINARIES = (
    Path("services/session_core/session_core"),
    Path("services/session_core/outbox_relay"),
)


@pytest.mark.parametrize("binary", BINARIES, ids=lambda path: path.name)
def test_help_lists_every_variable_once_with_its_default(binary: Path) -> None:
    # --help must answer before the configuration is read: a bad value does not hide it.
    env = {**os.environ, "SYNCBRIDGE_CORE_GRPC_PORT": "not-a-port"}
    done = subprocess.run(
        [str(binary), "--help"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    for entry in entries(CoreConfig):
        shown = entry.default or '""'
        assert done.stdout.count(f"  {entry.env}  (default: ") == 1, entry.env
        assert f"  {entry.env}  (default: {shown})" in done.stdout
    assert "SYNCBRIDGE_CORE_RELAY_METRICS_PORT  (default: 9103)" in done.stdout
