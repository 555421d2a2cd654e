"""Every program outside the repository that setup, the build or the tests run.

Each one is reached by an absolute path (never the caller's PATH: Bazel's
strict action env gives tests /bin:/usr/bin:/usr/local/bin only) and comes
from somewhere a fresh machine gets it: a Debian package that tools/setup
installs by name, a Go tool setup builds into .tools/bin, or the machine image
itself. `externals_test` keeps this table, tools/setup and the code in line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Source = Literal["apt", "go", "image"]


@dataclass(frozen=True)
class External:
    path: str
    source: Source
    package: str  # as tools/setup names it: Debian package or Go tool; or the image's part
    why: str
    owner: str | None = None  # the Debian package owning the file, when not `package` itself


EXTERNALS: tuple[External, ...] = (
    External("/usr/bin/bazel", "apt", "bazel-bootstrap", "the build"),
    External(
        "/usr/bin/java",
        "apt",
        "default-jdk-headless",
        "Bazel's server",
        owner="openjdk-17-jre-headless",
    ),
    External(
        "/usr/bin/python3.11",
        "apt",
        "python3.11",
        "every target's interpreter",
        owner="python3.11-minimal",
    ),
    External("/usr/bin/redis-server", "apt", "redis-server", "tools/servers"),
    External(
        "/usr/bin/redis-cli",
        "apt",
        "redis-server",
        "the Redis Cluster test",
        owner="redis-tools",
    ),
    External("/usr/lib/postgresql/15/bin/pgbench", "apt", "postgresql-15", "core's bench ceiling"),
    External("/usr/lib/postgresql/15/bin/initdb", "apt", "postgresql-15", "tools/servers"),
    External("/usr/lib/postgresql/15/bin/pg_ctl", "apt", "postgresql-15", "tools/servers"),
    External("/usr/lib/rabbitmq/bin/rabbitmq-server", "apt", "rabbitmq-server", "tools/servers"),
    External("/usr/bin/promtool", "apt", "prometheus", "alert rule tests"),
    External("/usr/bin/prometheus", "apt", "prometheus", "the live alert test"),
    External("/usr/bin/amtool", "apt", "prometheus-alertmanager", "routing tests"),
    External(
        "/usr/bin/prometheus-redis-exporter",
        "apt",
        "prometheus-redis-exporter",
        "the live alert test",
    ),
    External(
        "/usr/bin/prometheus-postgres-exporter",
        "apt",
        "prometheus-postgres-exporter",
        "the live alert test",
    ),
    External(
        "/usr/bin/prometheus-node-exporter",
        "apt",
        "prometheus-node-exporter",
        "the live alert test",
    ),
    External("/usr/bin/podman", "apt", "podman", "image tests"),
    External("/usr/bin/conmon", "apt", "conmon", "podman's container monitor"),
    External(
        "/usr/sbin/runc", "apt", "runc", "podman's OCI runtime (crun refuses this cgroup layout)"
    ),
    External("/usr/sbin/iptables", "apt", "iptables", "podman's CNI bridge and firewall plugins"),
    External("/usr/lib/cni/bridge", "apt", "containernetworking-plugins", "podman's networks"),
    External("/usr/bin/newuidmap", "apt", "uidmap", "podman's user namespaces"),
    External("/usr/bin/skopeo", "apt", "skopeo", "oci_load, oci_push, push_test"),
    External("/usr/bin/docker-registry", "apt", "docker-registry", "push_test's local registry"),
    External(
        "/usr/bin/qemu-aarch64-static",
        "apt",
        "qemu-user-static",
        "tests/images runs the arm64 image's own Python under user-mode emulation",
    ),
    External("/usr/bin/git", "apt", "git", "setup, the promotion tool"),
    External("/usr/bin/apt-get", "image", "apt", "setup; the .deb repository rule"),
    External("/usr/bin/apt-cache", "image", "apt", "the .deb lock resolves candidates"),
    External("/usr/bin/dpkg", "image", "dpkg", "dpkg --compare-versions in the .deb lock"),
    External("/usr/bin/dpkg-query", "image", "dpkg", "tools/doctor: which package owns a file"),
    External("/bin/bash", "image", "bash", "tools/doctor runs .ci/run"),
    External("/usr/bin/sha256sum", "image", "coreutils", "@kube_schemas checks its STAMP"),
    External("/usr/local/go/bin/go", "image", "go", "setup builds the Go CLIs"),
    External(".tools/bin/kustomize", "go", "kustomize", "gitops rendering"),
    External(".tools/bin/kubeconform", "go", "kubeconform", "gitops schema checks"),
    External(".tools/bin/opa", "go", "opa", "policies"),
    External(".tools/bin/buildifier", "go", "buildifier", "//:buildifier_test"),
    External("/usr/bin/shellcheck", "apt", "shellcheck", "actionlint checks run: scripts"),
    External(".tools/bin/actionlint", "go", "actionlint", "//.github/workflows:actionlint_test"),
    External(
        "/usr/bin/node", "apt", "nodejs", "clients/web: tsc, eslint, js_test (tools/bazel/js.bzl)"
    ),
    External("/usr/bin/npm", "apt", "nodejs", "@npm: npm ci from package-lock.json"),
    External("/usr/bin/chromium", "apt", "chromium", "clients/web's browser tests"),
    External(".tools/bin/trivy", "go", "trivy", "tools/scan: secrets, misconfigurations, SBOMs"),
    # The local cluster (tools/cluster): built by tools/cluster/build_tools.sh, kwok by setup.
    External(".tools/bin/etcd", "go", "etcd", "tools/cluster: the API server's store"),
    External(".tools/bin/kube-apiserver", "go", "kube-apiserver", "tools/cluster"),
    External(
        ".tools/bin/kube-controller-manager", "go", "kube-controller-manager", "tools/cluster"
    ),
    External(".tools/bin/kube-scheduler", "go", "kube-scheduler", "tools/cluster"),
    External(".tools/bin/kubectl", "go", "kubectl", "tools/cluster and its tests"),
    External(".tools/bin/kwok", "go", "kwok", "tools/cluster: fake nodes run the pods"),
    External(".tools/bin/argocd", "go", "argocd", "tools/cluster: Argo CD (multi-call)"),
    External(
        ".tools/bin/argocd-application-controller", "go", "argocd", "tools/cluster: Argo CD syncs"
    ),
    External(".tools/bin/argocd-repo-server", "go", "argocd", "tools/cluster: Argo CD renders"),
    External(".tools/bin/helm", "go", "helm", "tools/cluster: the repo-server renders charts"),
    External("/usr/bin/openssl", "image", "openssl", "tools/cluster: the cluster's certificates"),
    External(
        "/usr/lib/git-core/git-http-backend", "apt", "git", "tools/cluster: serves the git repo"
    ),
    External("/usr/sbin/ip", "image", "iproute2", "tools/cluster: its network namespace"),
)

# `name=version` or `name` items of the bash array `apt_packages=( ... )`.
_APT_ARRAY = re.compile(r"^apt_packages=\((.*?)^\)", re.M | re.S)
# `"tool module@version"` items of the bash array `go_tools=( ... )`.
_GO_ITEM = re.compile(r'^\s*"([\w.-]+) [^"@]+@[^"]+"', re.M)


def setup_apt_packages(setup_text: str) -> set[str]:
    """Package names tools/setup installs (its `apt_packages` array)."""
    match = _APT_ARRAY.search(setup_text)
    if match is None:
        raise ValueError("tools/setup has no apt_packages=( ... ) array")
    names = set()
    for line in match.group(1).splitlines():
        for word in line.split("#", 1)[0].split():
            names.add(word.strip('"').split("=", 1)[0])
    return names


def setup_go_tools(setup_text: str) -> set[str]:
    """Tool names tools/setup builds into .tools/bin (its `go_tools` array)."""
    return set(_GO_ITEM.findall(setup_text))


# `"name|module|package|ldflags"` items of tools/cluster/build_tools.sh's `targets`.
_CLUSTER_ITEM = re.compile(r'^\s*"([\w.-]+)\|[\w.-]+\|[^|"]+\|[^"]*"', re.M)
CLUSTER_BUILD = "tools/cluster/build_tools.sh"


def cluster_tools(setup_text: str, build_text: str) -> set[str]:
    """Binaries tools/cluster/build_tools.sh builds, when tools/setup calls it."""
    if CLUSTER_BUILD not in setup_text:
        return set()
    return set(_CLUSTER_ITEM.findall(build_text))


# Absolute paths to programs, as code names them: "/usr/bin/x", Path("/usr/sbin/x").
_PROGRAM_PATH = re.compile(
    r"""["'](/(?:usr/)?(?:local/)?(?:s?bin|lib/[\w./+-]*?/s?bin|lib/cni)/[\w.+-]+)["']"""
)
# A bare program name as the first item of an argv list: ["podman", ...
_BARE_ARGV0 = re.compile(
    r"""(?:\b(?:run|Popen|call|check_call|check_output|execute)\(\s*\["""
    r"""|\bcreate_subprocess_exec\()\s*["']([\w.+-]+)["']"""
)


# A line carrying this marker names a path that is not run on this machine
# (for example a shell the image tests prove is absent from an image).
NOT_RUN_HERE = "externals: not run here"


def program_paths(source: str) -> set[str]:
    """Absolute program paths named in a source file, but on NOT_RUN_HERE lines."""
    return {
        path
        for line in source.splitlines()
        if NOT_RUN_HERE not in line
        for path in _PROGRAM_PATH.findall(line)
    }


def bare_programs(source: str) -> set[str]:
    """Programs a source file runs by bare name (found through PATH)."""
    return {name for name in _BARE_ARGV0.findall(source) if not name.startswith("-")}
