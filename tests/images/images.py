"""The images under test and helpers to reach them from a test's runfiles.

Each service's BUILD file defines `:image`, `:image_load` and `:image_push`
(see tools/bazel/oci.bzl); this package's BUILD file adds `<name>_recipe`.
"""

from __future__ import annotations

import gzip
import json
import os
import secrets
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.testing.ports import free_port

RUNFILES = Path(os.environ.get("RUNFILES_DIR", "."))
WORKSPACE = os.environ.get("TEST_WORKSPACE", "harmonyflow_syncbridge")


def runfile(short_path: str) -> Path:
    return RUNFILES / WORKSPACE / short_path


@dataclass(frozen=True)
class Image:
    """One service's image targets, by the package that defines them.

    `target` is the image's own: `image` (linux/amd64), `image_linux_arm64`,
    or `image_index` (the index of both).
    """

    name: str
    package: str
    target: str = "image"

    def platform(self, target: str) -> Image:
        """The same service's image of another target (e.g. `image_linux_arm64`)."""
        return Image(self.name, self.package, target)

    @property
    def layout(self) -> Path:
        return runfile(f"{self.package}/{self.target}")

    @property
    def digest(self) -> str:
        return runfile(f"{self.package}/{self.target}.digest").read_text().strip()

    @property
    def load_script(self) -> Path:
        return runfile(f"{self.package}/image_load.sh")

    @property
    def push_script(self) -> Path:
        return runfile(f"{self.package}/image_push.sh")

    @property
    def recipe(self) -> Path:
        return runfile(f"tests/images/{self.name}_recipe.json")

    def blob(self, digest: str) -> Path:
        return self.layout / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def manifest(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.blob(self.digest).read_text())
        return loaded

    def config(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(
            self.blob(self.manifest()["config"]["digest"]).read_text()
        )
        return loaded

    def image_id(self) -> str:
        """podman's ID for the image: its config digest."""
        return str(self.manifest()["config"]["digest"]).removeprefix("sha256:")

    def layers(self) -> Iterator[tuple[int, tarfile.TarFile]]:
        """(index, open tar) for each layer, bottom first."""
        for index, layer in enumerate(self.manifest()["layers"]):
            with gzip.open(self.blob(layer["digest"])) as raw, tarfile.open(fileobj=raw) as tar:
                yield index, tar


SESSION_CORE = Image("session_core", "services/session_core")
WS_EDGE = Image("ws_edge", "services/ws_edge")
IMAGES = [SESSION_CORE, WS_EDGE]
ARM64_IMAGES = [image.platform("image_linux_arm64") for image in IMAGES]
INDEXES = [image.platform("image_index") for image in IMAGES]


def unpack(image: Image, root: Path) -> Path:
    """Extracts the image's layers, bottom first, into `root` (no whiteouts: ours have none)."""
    root.mkdir(parents=True, exist_ok=True)
    for _, tar in image.layers():
        # Our own layers (tools/bazel/oci/layer.py refuses paths leaving the root).
        tar.extractall(root)  # noqa: S202
    return root


# Every tool by the path its Debian package installs (tools/setup names each
# package), never by the caller's PATH: under --incompatible_strict_action_env
# tests see /bin:/usr/bin:/usr/local/bin only.
PODMAN = "/usr/bin/podman"
SKOPEO = "/usr/bin/skopeo"
DOCKER_REGISTRY = "/usr/bin/docker-registry"

# What podman's helpers exec is found on this PATH, set by the project: runc
# and iptables (CNI's bridge and firewall plugins) live in /usr/sbin on Debian.
PODMAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def podman_env() -> dict[str, str]:
    """The environment podman needs on these machines (runc, cgroupfs, ulimits)."""
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(runfile("tools/bazel/oci/containers.conf"))
    env["PATH"] = PODMAN_PATH
    return env


class PodmanError(AssertionError):
    """podman exited non-zero where the test needed it to succeed; carries its own words."""


def podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Runs podman; with `check`, a failure fails the test with podman's stderr."""
    result = subprocess.run(
        [PODMAN, *args],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise PodmanError(
            f"podman {' '.join(args)} exited {result.returncode}:\n{result.stderr.strip()}"
        )
    return result


def load(image: Image) -> str:
    """Loads the image into podman with its oci_load target; returns the image ID.

    The test tag's previous image, if another build's and now nameless, is
    removed so that test runs do not pile images up in podman's storage.
    """
    tag = f"localhost/syncbridge/{image.name.replace('_', '-')}:image-test"
    before = podman("image", "inspect", "--format", "{{.Id}}", tag, check=False).stdout.strip()
    loaded = subprocess.run(
        [str(image.load_script), "--tag", tag],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if loaded.returncode != 0:
        raise PodmanError(f"{image.name}: oci_load failed:\n{loaded.stdout}{loaded.stderr}")
    if before and before != image.image_id():
        # Now untagged by us; removed only if nothing else names it.
        names = podman("image", "inspect", "--format", "{{len .RepoTags}}", before, check=False)
        if names.stdout.strip() == "0":
            podman("rmi", before, check=False)
    return image.image_id()


CONTAINER_TMP = "/tmp"  # noqa: S108 - the container's tmpfs, not a host path

# Run inside a container: /tmp (tmpfs) is writable, /app (root filesystem) is not.
READ_ONLY_PROBE = """
import errno, pathlib, sys
pathlib.Path("/tmp/probe").write_text("ok")
try:
    pathlib.Path("/app/probe").write_text("no")
except OSError as error:
    sys.exit(0 if error.errno == errno.EROFS else 1)
sys.exit(2)
"""


@dataclass(frozen=True)
class Container:
    """A container started by `run`; removed by `remove`."""

    name: str

    def inspect(self, template: str) -> str:
        return podman("inspect", "--format", template, self.name).stdout.strip()

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def ids(self) -> dict[str, list[str]]:
        """Real, effective, saved and filesystem uid and gid of the container's process."""
        status = Path(f"/proc/{self.inspect('{{.State.Pid}}')}/status").read_text()
        return {
            line.split(":")[0]: line.split()[1:]
            for line in status.splitlines()
            if line.startswith(("Uid:", "Gid:"))
        }

    def root_is_read_only(self) -> bool:
        probe = podman("exec", self.name, "/usr/bin/python3.11", "-c", READ_ONLY_PROBE, check=False)
        return self.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true" and probe.returncode == 0

    def wait_until(self, ready: Callable[[], bool], timeout: float = 90) -> None:
        """Polls `ready` while the container runs; fails with its logs otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.inspect("{{.State.Status}}")
            if state != "running":
                raise AssertionError(f"{self.name} is {state}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise AssertionError(f"{self.name} not ready after {timeout}s:\n{self.logs()}")

    def sigterm(self, timeout: float) -> tuple[str, float]:
        """Sends SIGTERM; returns (exit code, seconds it took to exit)."""
        started = time.monotonic()
        podman("kill", "--signal", "TERM", self.name)
        code = podman("wait", self.name, timeout=timeout).stdout.strip()
        return code, time.monotonic() - started

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False)


def run(
    image_id: str, env: Mapping[str, str], mounts: Mapping[Path, str] | None = None
) -> Container:
    """Starts the image detached: host network (the test servers listen on
    loopback only), read-only root, tmpfs /tmp, configured by `env` alone
    (plus read-only `mounts` {host file: container path}, as secrets are)."""
    name = f"syncbridge-image-test-{secrets.token_hex(4)}"
    flags = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
    for source, target in (mounts or {}).items():
        flags += ["--volume", f"{source}:{target}:ro"]
    podman(
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        CONTAINER_TMP,
        *flags,
        image_id,
    )
    return Container(name)


SHELLS = ("/bin/sh", "/bin/bash", "/usr/bin/dash")  # externals: not run here (in the image)

# podman's exit status when the OCI runtime cannot find the entrypoint
# (podman-run(1): 127 "contained command cannot be found").
COMMAND_NOT_FOUND = 127


def run_once(image_id: str, entrypoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs `entrypoint args` in a throwaway container with no network at all."""
    return podman(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        entrypoint,
        image_id,
        *args,
        check=False,
    )


def not_found(result: subprocess.CompletedProcess[str], path: str) -> bool:
    """Whether podman failed only because the runtime found no `path` to exec."""
    # runc: `exec: "<path>": stat <path>: no such file or directory: OCI runtime
    # attempted to invoke a command that was not found`. A network plugin that
    # fails also exits 127, so the status alone proves nothing.
    stderr = result.stderr
    return (
        result.returncode == COMMAND_NOT_FOUND
        and f"stat {path}: no such file or directory" in stderr
        and "OCI runtime attempted to invoke a command that was not found" in stderr
    )


def assert_no_shell(image_id: str) -> None:
    """No /bin/sh, bash or dash to run, even as an explicit entrypoint.

    The image's own Python must start in the same kind of container first, so
    "podman could not start anything" fails with podman's message instead of
    passing as "no shell"; each shell must then fail with the runtime's
    "not found" for that very path, and any other failure is reported as is.
    """
    control = run_once(image_id, "/usr/bin/python3.11", "-c", "pass")
    if control.returncode != 0:
        raise PodmanError(
            f"podman cannot start a container of {image_id[:12]} "
            f"(exit {control.returncode}):\n{control.stderr.strip()}"
        )
    for shell in SHELLS:
        result = run_once(image_id, shell, "-c", "true")
        if result.returncode == 0:
            raise AssertionError(f"{shell} runs in {image_id[:12]}")
        if not not_found(result, shell):
            raise PodmanError(
                f"{shell}: expected the runtime's 'not found', podman exited "
                f"{result.returncode}:\n{result.stderr.strip()}"
            )


def serving(port: int) -> bool:
    """Whether core's gRPC health check answers SERVING on loopback `port`."""
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            request = health_pb2.HealthCheckRequest(service="")
            response = health_pb2_grpc.HealthStub(channel).Check(request, timeout=2)
    except grpc.RpcError:
        return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


# Where the containers see the token issuer's public key (mounted read-only).
KEY_PATH = "/etc/syncbridge/jwt/public.pem"


def core_env(
    pg_dsn: str, redis_url: str, amqp_url: str, port: int, grace_seconds: float = 5
) -> dict[str, str]:
    """session-core's whole configuration, for a container on the host network;
    the JWT key (core verifies callers' tokens) is mounted at KEY_PATH."""
    return {
        "SYNCBRIDGE_CORE_JWT_PUBLIC_KEY_PATH": KEY_PATH,
        "SYNCBRIDGE_CORE_PG_DSN": pg_dsn,
        "SYNCBRIDGE_CORE_REDIS_URL": redis_url,
        "SYNCBRIDGE_CORE_AMQP_URL": amqp_url,
        "SYNCBRIDGE_CORE_GRPC_PORT": str(port),
        "SYNCBRIDGE_CORE_METRICS_PORT": str(free_port()),
        "SYNCBRIDGE_CORE_GRACE_SECONDS": str(grace_seconds),
        # Each test's database is new and no migrate job runs here; the image's
        # own default (false) leaves the schema to that job when deployed.
        "SYNCBRIDGE_CORE_MIGRATE_ON_START": "true",
    }
