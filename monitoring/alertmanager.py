"""The committed Alertmanager configuration, and the rule that it holds no credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitoring.rules import REPO

CONFIG_PATH = REPO / "gitops/components/alerts/alertmanager/alertmanager.yaml"
SECRETS_DIR = "/etc/alertmanager/secrets/alertmanager-receivers/"
# Keys whose value is a credential; each has a `<key>_file` form that Alertmanager reads instead.
CREDENTIAL_KEYS = frozenset(
    {"api_url", "slack_api_url", "routing_key", "service_key", "url", "password", "token"}
)


def load(path: Path = CONFIG_PATH) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    return config


def credential_problems(config: Any, where: str = "") -> list[str]:
    """Every inline credential, and every credential file outside the mounted Secret."""
    problems: list[str] = []
    if isinstance(config, dict):
        for key, value in config.items():
            here = f"{where}.{key}" if where else str(key)
            if key in CREDENTIAL_KEYS and value:
                problems.append(f"{here}: inline credential; use {key}_file under {SECRETS_DIR}")
            elif str(key).endswith("_file") and not str(value).startswith(SECRETS_DIR):
                problems.append(f"{here}: {value!r} is not in the mounted Secret {SECRETS_DIR}")
            else:
                problems.extend(credential_problems(value, here))
    elif isinstance(config, list):
        for index, item in enumerate(config):
            problems.extend(credential_problems(item, f"{where}[{index}]"))
    return problems


def slack_channels(config: dict[str, Any]) -> dict[str, str]:
    """Slack receiver name -> its channel."""
    return {
        receiver["name"]: receiver["slack_configs"][0]["channel"]
        for receiver in config["receivers"]
        if receiver.get("slack_configs")
    }
