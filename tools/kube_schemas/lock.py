"""sources.lock: which upstream Go modules the schemas come from, pinned by h1: sum.

The stamp ties a generated schema directory to the lock and the converters
that produced it, in `sha256sum`'s own output format, so the Bazel repository
rule (tools/bazel/kube_schemas.bzl) can recompute it with /usr/bin/sha256sum
and refuse stale schemas.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Relative to the repository root; the repository rule hashes the same list.
STAMPED_FILES = (
    "tools/kube_schemas/sources.lock",
    "tools/kube_schemas/crd2jsonschema.py",
    "tools/kube_schemas/helm_metadata.py",
    "tools/kube_schemas/openapi2jsonschema.py",
    "tools/kube_schemas/schema_walk.py",
    "tools/kube_schemas/yamlio.py",
)


@dataclass(frozen=True, kw_only=True)
class Module:
    """One Go module at one version, with the sum `go mod download` must report.

    `checksum_db` False: the Go checksum database has no record of this
    version (a pseudo-version nobody asked it about), so `go` is told not to
    ask (GONOSUMDB) and the lock's sum, checked against upstream's own tree
    when it was pinned, is the only pin. Every other module is checked twice.
    """

    module: str
    version: str
    sum: str
    checksum_db: bool = True

    @property
    def ref(self) -> str:
        return f"{self.module}@{self.version}"


@dataclass(frozen=True, kw_only=True)
class KubernetesSource(Module):
    """The module carrying Kubernetes' OpenAPI (swagger 2.0) document."""

    openapi: str


@dataclass(frozen=True, kw_only=True)
class CrdSource(Module):
    """A project's module and the CRD files inside it.

    `helm_templates`: the files are Helm chart templates whose only
    expressions sit in `metadata` (tools/kube_schemas/helm_metadata.py).
    """

    name: str
    files: tuple[str, ...]
    helm_templates: bool = False


@dataclass(frozen=True)
class Lock:
    kubernetes: KubernetesSource
    crds: tuple[CrdSource, ...]

    @property
    def kubernetes_version(self) -> str:
        """The version kubeconform is told (`-kubernetes-version`), without the v."""
        return self.kubernetes.version.removeprefix("v")


def _text(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: `{key}` must be a non-empty string")
    return value


def _flag(table: dict[str, Any], key: str, where: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{where}: `{key}` must be true or false")
    return value


def _module(table: dict[str, Any], where: str) -> dict[str, Any]:
    version = _text(table, "version", where)
    digest = _text(table, "sum", where)
    if not version.startswith("v"):
        raise ValueError(f"{where}: version {version!r} must be an exact v-prefixed version")
    if not digest.startswith("h1:"):
        raise ValueError(f"{where}: sum {digest!r} must be the module's h1: hash")
    return {
        "module": _text(table, "module", where),
        "version": version,
        "sum": digest,
        "checksum_db": _flag(table, "checksum_db", where, True),
    }


def parse(text: str) -> Lock:
    """Parses and checks the lock; every entry needs module, version, sum and files."""
    data = tomllib.loads(text)
    # Every custom resource validates against its upstream schema: there is
    # no table for kinds left unchecked, and an unknown one is a typo.
    unknown = sorted(set(data) - {"kubernetes", "crds"})
    if unknown:
        raise ValueError(f"sources.lock: unknown table(s) {', '.join(unknown)}")
    k8s = data.get("kubernetes")
    if not isinstance(k8s, dict):
        raise ValueError("sources.lock: a [kubernetes] table is required")
    where = "[kubernetes]"
    kubernetes = KubernetesSource(**_module(k8s, where), openapi=_text(k8s, "openapi", where))
    crds = []
    names = set()
    for index, table in enumerate(data.get("crds", [])):
        name = _text(table, "name", f"[[crds]] #{index + 1}")
        where = f"[[crds]] {name}"
        if name in names:
            raise ValueError(f"{where}: listed twice")
        names.add(name)
        files = table.get("files")
        if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
            raise ValueError(f"{where}: `files` must list the CRD files inside the module")
        crds.append(
            CrdSource(
                **_module(table, where),
                name=name,
                files=tuple(files),
                helm_templates=_flag(table, "helm_templates", where, False),
            )
        )
    if not crds:
        raise ValueError("sources.lock: no [[crds]] entries")
    return Lock(kubernetes=kubernetes, crds=tuple(crds))


def load(path: Path) -> Lock:
    return parse(path.read_text())


def stamp(repo: Path) -> str:
    """`sha256sum` output over STAMPED_FILES, relative paths, as the .bzl computes it."""
    lines = []
    for rel in STAMPED_FILES:
        digest = hashlib.sha256((repo / rel).read_bytes()).hexdigest()
        lines.append(f"{digest}  {rel}\n")
    return "".join(lines)
