"""Settings come from SYNCBRIDGE_EDGE_*; bad values and combinations are named at start-up."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest

from libs.config.reference import entries
from libs.config.settings import ConfigError, load_config
from services.ws_edge.config import EdgeConfig, check

EDGE_BINARY = Path("services/ws_edge/ws_edge")


def test_defaults_match_the_seed() -> None:
    config = load_config(EdgeConfig, {}, prefix="SYNCBRIDGE_EDGE_")
    assert config.ping_interval_seconds == 30.0  # seed: "WebSocket: 30s ping interval"
    assert config.port == 8080
    assert config.allowed_origins == ()
    assert not config.allow_query_token
    check(config)


def test_environment_overrides() -> None:
    config = load_config(
        EdgeConfig,
        {
            "SYNCBRIDGE_EDGE_ALLOWED_ORIGINS": "https://a.example, https://b.example",
            "SYNCBRIDGE_EDGE_PING_INTERVAL_SECONDS": "5",
            "SYNCBRIDGE_EDGE_MAX_FRAME_BYTES": "4096",
        },
        prefix="SYNCBRIDGE_EDGE_",
    )
    assert config.allowed_origins == ("https://a.example", "https://b.example")
    assert config.ping_interval_seconds == 5.0
    assert config.max_frame_bytes == 4096


def test_bad_values_are_named() -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(
            EdgeConfig,
            {
                "SYNCBRIDGE_EDGE_PORT": "http",
                "SYNCBRIDGE_EDGE_MAX_FRAME_BYTES": "10",
                "SYNCBRIDGE_EDGE_PING_INTERVALL_SECONDS": "5",
            },
            prefix="SYNCBRIDGE_EDGE_",
        )
    text = str(refused.value)
    assert "SYNCBRIDGE_EDGE_PORT" in text
    assert "SYNCBRIDGE_EDGE_MAX_FRAME_BYTES" in text
    assert "did you mean SYNCBRIDGE_EDGE_PING_INTERVAL_SECONDS" in text


def test_cross_setting_rules() -> None:
    config = load_config(EdgeConfig, {})
    with pytest.raises(ConfigError, match="set exactly one"):
        check(dataclasses.replace(config, jwt_jwks_path="/keys.json"))
    with pytest.raises(ConfigError, match="GRACE_SECONDS"):
        check(dataclasses.replace(config, drain_spread_seconds=30, grace_seconds=20))


def test_help_lists_every_variable_once_with_its_default() -> None:
    # --help answers before the configuration is read: a bad value does not hide it.
    env = {**os.environ, "SYNCBRIDGE_EDGE_PORT": "not-a-port"}
    done = subprocess.run(
        [str(EDGE_BINARY), "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for entry in entries(EdgeConfig):
        shown = entry.default or '""'
        assert done.stdout.count(f"  {entry.env}  (default: ") == 1, entry.env
        assert f"  {entry.env}  (default: {shown})" in done.stdout
