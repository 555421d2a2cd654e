"""A live SyncBridge for the monitoring tests: core, relay and edge as the real
binaries, the exporters of Redis, PostgreSQL and the host, and Debian's
Prometheus scraping them all with the project's rules, on loopback.

The one override (documented in monitoring/README.md): Prometheus scrapes and
evaluates every second, and reads the committed rules time-compressed by
COMPRESSION (`timescale.compressed`: every `for:` and every range divided by
it, nothing else changed).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from libs.testing.ports import free_port
from monitoring import rules, timescale

PROMETHEUS = "/usr/bin/prometheus"  # Debian's `prometheus`, installed by tools/setup
REDIS_EXPORTER = "/usr/bin/prometheus-redis-exporter"
POSTGRES_EXPORTER = "/usr/bin/prometheus-postgres-exporter"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
HOST = "127.0.0.1"
# 2m -> 4 s (the shortest window still spans four scrapes), 10m -> 20 s, 1h -> 120 s.
COMPRESSION = 30
SCRAPE_SECONDS = 1.0
POSTGRES_QUERIES = Path(__file__).parent / "postgres_exporter_queries.yaml"

# The namespace each job's series carry, as the ServiceMonitors give them in a cluster.
NAMESPACES = {
    "session-core": "harmonyflow-test",
    "outbox-relay": "harmonyflow-test",
    "ws-edge": "harmonyflow-test",
    "redis": "redis-test",
    "postgresql": "postgresql-test",
    "node": "",
}


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for(what: str, predicate: Callable[[], bool], within: float, step: float = 0.2) -> None:
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(OSError):
            if predicate():
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(step)


def answers(url: str) -> Callable[[], bool]:
    return lambda: http_get(url, timeout=2)[0] == 200


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, within: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(within)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Processes:
    """Processes a test started, stopped (in reverse) when it ends."""

    workdir: Path
    started: list[Process] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        log_path = self.workdir / f"{name}.log"
        base = {"PATH": "/usr/bin:/bin", "HOME": str(self.workdir)}
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                argv, env={**base, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
            )
        process = Process(name, popen, log_path)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.started)


# --- Prometheus -----------------------------------------------------------------


# postgres_exporter takes a second to give up on a stopped server: a 1 s
# timeout would drop its pg_up 0 along with the scrape.
SLOW_JOBS = {"postgresql": "3s"}


def scrape_config(targets: dict[str, str]) -> dict[str, Any]:
    """prometheus.yml scraping `targets` (job -> host:port) every second."""
    jobs = []
    for job, address in targets.items():
        labels = {"namespace": NAMESPACES[job]} if NAMESPACES.get(job) else {}
        entry: dict[str, Any] = {
            "job_name": job,
            "static_configs": [{"targets": [address], "labels": labels}],
        }
        if job in SLOW_JOBS:
            entry["scrape_interval"] = entry["scrape_timeout"] = SLOW_JOBS[job]
        jobs.append(entry)
    return {
        "global": {
            "scrape_interval": f"{SCRAPE_SECONDS:g}s",
            "scrape_timeout": f"{SCRAPE_SECONDS:g}s",
            "evaluation_interval": f"{SCRAPE_SECONDS:g}s",
            "external_labels": {"environment": "test"},
        },
        "rule_files": ["rules.yaml"],
        "scrape_configs": jobs,
    }


class Prometheus:
    """Debian's Prometheus on a free loopback port, with the compressed rules."""

    def __init__(self, processes: Processes, targets: dict[str, str]) -> None:
        directory = processes.workdir / "prometheus"
        directory.mkdir()
        rules.write_rules_file(
            timescale.compressed(rules.load(), COMPRESSION), directory / "rules.yaml"
        )
        (directory / "prometheus.yml").write_text(yaml.safe_dump(scrape_config(targets)))
        port = free_port()
        self.url = f"http://{HOST}:{port}"
        self.process = processes.start(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address={HOST}:{port}",
            ],
        )
        wait_for("prometheus ready", answers(f"{self.url}/-/ready"), 30)

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, body = http_get(f"{self.url}/api/v1/{path}{query}")
        answer = json.loads(body)
        if status != 200 or answer.get("status") != "success":
            raise AssertionError(f"/api/v1/{path}{query}: {status} {body[:500]!r}")
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else []
        return result

    def alert_states(self) -> dict[str, str]:
        """alertname -> "firing" if any of its instances fires, else "pending"."""
        states: dict[str, str] = {}
        for alert in self.api("alerts")["alerts"]:
            name = alert["labels"]["alertname"]
            if states.get(name) != "firing":
                states[name] = alert["state"]
        return states

    def targets_up(self) -> dict[str, bool]:
        return {
            target["labels"]["job"]: target["health"] == "up"
            for target in self.api("targets")["activeTargets"]
        }


@dataclass
class Timeline:
    """When each alert was first seen pending, firing, and then gone again."""

    seen: dict[str, dict[str, float]] = field(default_factory=dict)

    def record(self, states: dict[str, str], now: float) -> None:
        for name, state in states.items():
            self.seen.setdefault(name, {}).setdefault(state, now)
        for name, marks in self.seen.items():
            if name not in states and "firing" in marks:
                marks.setdefault("resolved", now)

    def reached(self, name: str, state: str) -> bool:
        return state in self.seen.get(name, {})


def metric_names(exposition: str) -> set[str]:
    """Every series name a /metrics text can produce: samples, and families
    declared without samples yet (a labelled counter before its first use)."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(maxsplit=3)
            if kind == "histogram":
                names.update(f"{family}{s}" for s in ("_bucket", "_count", "_sum"))
            elif kind == "summary":
                names.update({family, f"{family}_count", f"{family}_sum"})
            else:
                names.add(family)
        elif line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names


@contextlib.contextmanager
def started(workdir: Path) -> Iterator[Processes]:
    processes = Processes(workdir)
    try:
        yield processes
    finally:
        processes.stop_all()


def runfile(variable: str) -> str:
    """The absolute path of a binary the BUILD file passes as $(rootpath ...)."""
    value = os.environ.get(variable)
    if not value:
        raise RuntimeError(f"{variable} is not set: run through `bazel test`")
    return str(Path(value).absolute())
