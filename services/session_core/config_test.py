"""`session_core --help` and `outbox_relay --help` list every SYNCBRIDGE_CORE_* variable once."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from libs.config.reference import entries
from libs.config.settings import ConfigError, load_config
from services.session_core.callers import jwt_config, tls_files
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


def _config(**overrides: Any) -> CoreConfig:
    return dataclasses.replace(load_config(CoreConfig, {}), **overrides)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"jwt_jwks_path": "/keys.json"}, "SYNCBRIDGE_CORE_JWT_JWKS_PATH"),
        ({"jwt_public_key_path": ""}, "SYNCBRIDGE_CORE_JWT_PUBLIC_KEY_PATH"),
        ({"jwt_issuer": ""}, "SYNCBRIDGE_CORE_JWT_ISSUER"),
        ({"jwt_audience": ""}, "SYNCBRIDGE_CORE_JWT_AUDIENCE"),
        ({"jwt_algorithms": ("HS256",)}, "SYNCBRIDGE_CORE_JWT_ALGORITHMS"),
    ],
)
def test_a_bad_token_policy_names_its_variable(overrides: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError) as refused:
        jwt_config(_config(**overrides))
    assert named in str(refused.value)


def test_the_defaults_trust_the_development_issuer_like_the_edge() -> None:
    policy = jwt_config(_config())
    assert policy.issuer == "https://auth.syncbridge.dev"
    assert policy.public_key_path is not None and policy.public_key_path.endswith("public.pem")


def test_reflection_is_off_unless_configured() -> None:
    assert load_config(CoreConfig, {}).reflection is False
    assert load_config(CoreConfig, {"SYNCBRIDGE_CORE_REFLECTION": "true"}).reflection is True


def test_tls_is_off_unless_configured_and_all_or_nothing(tmp_path: Path) -> None:
    assert tls_files(_config()) is None
    with pytest.raises(ConfigError) as partial:
        tls_files(_config(tls_cert_path="/core.crt"))
    assert "SYNCBRIDGE_CORE_TLS_KEY_PATH, SYNCBRIDGE_CORE_TLS_CLIENT_CA_PATH" in str(partial.value)
    paths = {name: tmp_path / name for name in ("cert", "key", "ca")}
    for path in paths.values():
        path.write_bytes(b"pem")
    settings = {
        "tls_cert_path": str(paths["cert"]),
        "tls_key_path": str(paths["key"]),
        "tls_client_ca_path": str(tmp_path / "missing.pem"),
    }
    with pytest.raises(ConfigError) as unreadable:
        tls_files(_config(**settings))
    assert "SYNCBRIDGE_CORE_TLS_CLIENT_CA_PATH: cannot read" in str(unreadable.value)
    settings["tls_client_ca_path"] = str(paths["ca"])
    with pytest.raises(ConfigError) as nobody:
        tls_files(_config(**settings, allowed_clients=()))
    assert "SYNCBRIDGE_CORE_ALLOWED_CLIENTS" in str(nobody.value)
    files = tls_files(_config(**settings))
    assert files is not None and files.client_ca == b"pem"
