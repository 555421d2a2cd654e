"""What a rendered overlay gives each SyncBridge container, checked against the config modules.

The manifests must be true to the code: every `SYNCBRIDGE_*` variable a
container is given is one its service reads, every variable the service reads
is given or deliberately left at its default (DEFAULTED says why), the values
parse and pass the service's own checks, secrets come from an ExternalSecret of
the same overlay, and the shutdown timings add up. Pure functions over rendered
objects (lists of dicts), so the tests can feed them broken fixtures too.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from libs.config.settings import ConfigError, load_config
from services.session_core.config import CoreConfig
from services.ws_edge.config import EdgeConfig, check

EDGE_IMAGE = "registry.harmonyflow.io/syncbridge/ws-edge"
CORE_IMAGE = "registry.harmonyflow.io/syncbridge/session-core"
PREFIX = "SYNCBRIDGE_"

# Variables a container deliberately leaves at the module's default, and why.
DEFAULTED: dict[str, dict[str, str]] = {
    "ws-edge": {
        "SYNCBRIDGE_EDGE_PORT_FILE": "tests only: the port is fixed (8080), nobody reads a file",
        "SYNCBRIDGE_EDGE_DEMO_DIR": "the demo page is local only (tools/run-local): the image "
        "carries no demo files and no cluster serves it, dev included",
    },
    "session-core": {},
    "outbox-relay": {
        "SYNCBRIDGE_CORE_REDIS_URL": "the relay only reads the outbox and publishes: no Redis",
    },
    # migrate.py reads one variable (its --dsn default); the rest are core's.
    "migrate": {},
}
# What migrate.py reads (its --dsn default).
MIGRATE_VARIABLES = ("SYNCBRIDGE_CORE_PG_DSN",)
# A secret's stand-in when the config is parsed: the value is in Vault, not here.
_SECRET_STANDIN = {
    "SYNCBRIDGE_CORE_PG_DSN": "postgresql://syncbridge@db:5432/syncbridge",
    "SYNCBRIDGE_CORE_REDIS_URL": "redis://cache:6379/0",
    "SYNCBRIDGE_CORE_AMQP_URL": "amqp://bus:5672/",
    "SYNCBRIDGE_EDGE_AMQP_URL": "amqp://bus:5672/",
}
_SLEEP = re.compile(r"time\.sleep\((\d+(?:\.\d+)?)\)")
WAIT_BEFORE_EXIT = "config.alpha.linkerd.io/proxy-wait-before-exit-seconds"


@dataclass(frozen=True)
class Container:
    """One SyncBridge container of a rendered workload and what it is given."""

    workload: str
    role: str
    spec: dict[str, Any]
    pod: dict[str, Any]
    annotations: dict[str, str]
    env: dict[str, str]
    secret_refs: dict[str, tuple[str, str]]
    problems: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.workload}/{self.spec.get('name')}"


def variables(config_class: type[Any]) -> list[str]:
    """Every environment variable a config dataclass reads."""
    return [f.metadata["libs.config.setting"].env for f in dataclasses.fields(config_class)]


def _by_kind(objects: Iterable[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def _role(workload: str, container: Mapping[str, Any]) -> str | None:
    image = str(container.get("image", ""))
    command = " ".join(str(part) for part in container.get("command", []))
    if image.startswith(EDGE_IMAGE):
        return "ws-edge"
    if not image.startswith(CORE_IMAGE):
        return None
    if "services.session_core.relay_main" in command:
        return "outbox-relay"
    if "services.session_core.migrate" in command:
        return "migrate"
    return "session-core"


def containers(objects: list[dict[str, Any]]) -> list[Container]:
    """SyncBridge's containers in a rendered root, with their resolved environment."""
    config_maps = {
        str(o["metadata"]["name"]): {str(k): str(v) for k, v in (o.get("data") or {}).items()}
        for o in _by_kind(objects, "ConfigMap")
    }
    found = []
    for workload in _by_kind(objects, "Deployment") + _by_kind(objects, "Job"):
        template = workload["spec"]["template"]
        pod = template["spec"]
        annotations = dict((template.get("metadata") or {}).get("annotations") or {})
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        for spec in pod.get("containers", []):
            role = _role(name, spec)
            if role is None:
                continue
            env: dict[str, str] = {}
            refs: dict[str, tuple[str, str]] = {}
            problems: list[str] = []
            for source in spec.get("envFrom", []):
                ref = source.get("configMapRef", {}).get("name")
                if ref not in config_maps:
                    problems.append(f"envFrom names ConfigMap {ref!r}, which this root lacks")
                    continue
                env.update(config_maps[ref])
            for item in spec.get("env", []):
                variable = str(item["name"])
                if "value" in item:
                    env[variable] = str(item["value"])
                elif "secretKeyRef" in item.get("valueFrom", {}):
                    ref = item["valueFrom"]["secretKeyRef"]
                    refs[variable] = (str(ref["name"]), str(ref["key"]))
                    env[variable] = _SECRET_STANDIN.get(variable, "from-a-secret")
                elif "fieldRef" in item.get("valueFrom", {}):
                    env[variable] = "pod-name-0"
                else:
                    problems.append(f"{variable}: neither a value nor a reference")
            found.append(Container(name, role, spec, pod, annotations, env, refs, tuple(problems)))
    return found


def _secret_keys(objects: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Secret name -> keys, for every Secret an ExternalSecret of this root makes."""
    made: dict[str, set[str]] = {}
    for external in _by_kind(objects, "ExternalSecret"):
        spec = external["spec"]
        target = str((spec.get("target") or {}).get("name") or external["metadata"]["name"])
        made.setdefault(target, set()).update(str(d["secretKey"]) for d in spec.get("data", []))
    return made


def check_environment(container: Container) -> list[str]:
    """Unknown, missing or invalid SYNCBRIDGE_* variables of one container."""
    problems = list(container.problems)
    given = {name for name in container.env if name.startswith(PREFIX)}
    if container.role == "migrate":
        known = list(MIGRATE_VARIABLES)
    elif container.role == "ws-edge":
        known = variables(EdgeConfig)
    else:
        known = variables(CoreConfig)
    defaulted = DEFAULTED[container.role]
    for name in sorted(given - set(known)):
        problems.append(f"{name}: the {container.role} code reads no such variable")
    for name in known:
        if name not in given and name not in defaulted:
            problems.append(f"{name}: neither set nor listed as deliberately defaulted")
    for name in sorted(set(defaulted) & given):
        problems.append(f"{name}: set, yet listed as deliberately defaulted")
    if container.role == "migrate":
        return problems
    try:
        if container.role == "ws-edge":
            check(load_config(EdgeConfig, container.env, prefix="SYNCBRIDGE_EDGE_"))
        else:
            load_config(CoreConfig, container.env, prefix="SYNCBRIDGE_CORE_")
    except ConfigError as error:
        problems.extend(error.problems)
    return problems


def check_secrets(container: Container, objects: list[dict[str, Any]]) -> list[str]:
    """Every secretKeyRef names a key an ExternalSecret of the same root produces."""
    made = _secret_keys(objects)
    problems = []
    for variable, (secret, key) in sorted(container.secret_refs.items()):
        if key not in made.get(secret, set()):
            problems.append(f"{variable}: Secret {secret}/{key} is made by no ExternalSecret here")
    for volume in container.pod.get("volumes", []):
        secret = volume.get("secret")
        if secret is None:
            continue
        for item in secret.get("items", []):
            if item["key"] not in made.get(secret["secretName"], set()):
                problems.append(
                    f"volume {volume['name']}: Secret {secret['secretName']}/{item['key']} "
                    "is made by no ExternalSecret here"
                )
    return problems


def _seconds(env: Mapping[str, str], variable: str, config_class: type[Any]) -> float:
    if variable in env:
        return float(env[variable])
    defaults = {
        f.metadata["libs.config.setting"].env: f.default for f in dataclasses.fields(config_class)
    }
    return float(str(defaults[variable]))


def shutdown_budget(container: Container) -> tuple[float, float, float, float]:
    """(preStop sleep, app grace, proxy wait-before-exit, terminationGracePeriodSeconds)."""
    command = " ".join(
        (container.spec.get("lifecycle") or {})
        .get("preStop", {})
        .get("exec", {})
        .get("command", [])
    )
    match = _SLEEP.search(command)
    pre_stop = float(match.group(1)) if match else 0.0
    if container.role == "ws-edge":
        grace = _seconds(container.env, "SYNCBRIDGE_EDGE_GRACE_SECONDS", EdgeConfig)
    elif container.role == "session-core":
        grace = _seconds(container.env, "SYNCBRIDGE_CORE_GRACE_SECONDS", CoreConfig)
    else:
        grace = 0.0
    wait = float(container.annotations.get(WAIT_BEFORE_EXIT, "0"))
    termination = float(container.pod.get("terminationGracePeriodSeconds", 30))
    return pre_stop, grace, wait, termination


def check_shutdown(container: Container) -> list[str]:
    """preStop + the app's drain grace < Linkerd's wait-before-exit < terminationGracePeriodSeconds.

    The proxy must outlive the app's last close (else the drain's 1001 frames
    and in-flight acks are cut), and the kubelet's kill must come last.
    """
    if container.role == "migrate":
        return []
    pre_stop, grace, wait, termination = shutdown_budget(container)
    problems = []
    if not pre_stop + grace < wait:
        problems.append(
            f"proxy wait-before-exit {wait:g} s must exceed preStop {pre_stop:g} s + "
            f"grace {grace:g} s"
        )
    if not wait < termination:
        problems.append(
            f"terminationGracePeriodSeconds {termination:g} must exceed the proxy's wait {wait:g} s"
        )
    return problems


def check_ports(container: Container) -> list[str]:
    """The container ports are the ports the process binds."""
    ports = {int(p["containerPort"]) for p in container.spec.get("ports", [])}
    if container.role == "ws-edge":
        wanted = {int(container.env["SYNCBRIDGE_EDGE_PORT"])}
    elif container.role == "session-core":
        wanted = {
            int(container.env["SYNCBRIDGE_CORE_GRPC_PORT"]),
            int(container.env["SYNCBRIDGE_CORE_METRICS_PORT"]),
        }
    elif container.role == "outbox-relay":
        # relay_main.py serves /metrics on SYNCBRIDGE_CORE_METRICS_PORT.
        wanted = {int(container.env["SYNCBRIDGE_CORE_METRICS_PORT"])}
    else:
        wanted = set()
    if ports != wanted:
        return [f"containerPorts {sorted(ports)} but the process binds {sorted(wanted)}"]
    return []


def check_config_maps(objects: list[dict[str, Any]]) -> list[str]:
    """A ConfigMap of SYNCBRIDGE_* settings that no container reads is a setting with no effect."""
    read = {
        str(source["configMapRef"]["name"])
        for workload in _by_kind(objects, "Deployment") + _by_kind(objects, "Job")
        for spec in workload["spec"]["template"]["spec"].get("containers", [])
        for source in spec.get("envFrom", [])
        if "configMapRef" in source
    }
    problems = []
    for config_map in _by_kind(objects, "ConfigMap"):
        name = str(config_map["metadata"]["name"])
        keys = [k for k in (config_map.get("data") or {}) if str(k).startswith(PREFIX)]
        if keys and name not in read:
            problems.append(
                f"ConfigMap/{name}: {len(keys)} SYNCBRIDGE_* settings no container reads"
            )
    return problems


def check_root(objects: list[dict[str, Any]]) -> list[str]:
    """Every problem of every SyncBridge container in one rendered root."""
    problems = check_config_maps(objects)
    for container in containers(objects):
        for problem in (
            check_environment(container)
            + check_secrets(container, objects)
            + check_shutdown(container)
            + check_ports(container)
        ):
            problems.append(f"{container.where}: {problem}")
    return problems
