"""kubeconform -strict over rendered objects, against the local pinned schemas only.

The schema directory is what tools/kube_schemas writes: `k8s/v<version>-
standalone-strict/` (Kubernetes' kinds; its name gives `-kubernetes-version`)
and `crds/<group>/<kind>_<version>.json`. Only these two local locations are
given, so kubeconform never falls back to its network default, and a kind
without a schema is an error (no `-ignore-missing-schemas`), with no
exceptions: a custom resource whose upstream CRD cannot be pinned does not
belong in the tree.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.gitops.findings import Finding, subject
from tools.gitops.render import Document

_SUFFIX = "-standalone-strict"
MISSING_HINT = (
    "add the upstream CRD's module to tools/kube_schemas/sources.lock, or use a kind that has one"
)


class SchemaError(Exception):
    """The schema directory or kubeconform itself is unusable."""


@dataclass(frozen=True)
class Schemas:
    """A schema directory and the Kubernetes version its core schemas are for."""

    root: Path
    kubernetes_version: str

    @classmethod
    def at(cls, root: Path) -> Schemas:
        k8s = sorted(p for p in (root / "k8s").glob(f"v*{_SUFFIX}") if p.is_dir())
        if len(k8s) != 1 or not (root / "crds").is_dir():
            raise SchemaError(
                f"{root}: expected one k8s/v<version>{_SUFFIX}/ and crds/ "
                "(written by `sudo tools/setup`)"
            )
        version = k8s[0].name.removeprefix("v").removesuffix(_SUFFIX)
        return cls(root=root, kubernetes_version=version)

    def locations(self) -> list[str]:
        k8s = (
            f"{self.root}/k8s/{{{{ .NormalizedKubernetesVersion }}}}{_SUFFIX}/"
            "{{ .ResourceKind }}{{ .KindSuffix }}.json"
        )
        crds = (
            f"{self.root}/crds/{{{{ .Group }}}}/"
            "{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"
        )
        return [k8s, crds]


def command(kubeconform: Path, schemas: Schemas, files: Sequence[Path]) -> list[str]:
    argv = [str(kubeconform), "-strict", "-kubernetes-version", schemas.kubernetes_version]
    for location in schemas.locations():
        argv += ["-schema-location", location]
    return [*argv, "-output", "json", *map(str, files)]


def check(
    root: str, documents: Sequence[Document], kubeconform: Path, schemas: Schemas
) -> list[Finding]:
    """kubeconform's verdict on `documents`: one finding per failure."""
    if not documents:
        return []
    if not kubeconform.is_file():
        raise SchemaError(f"kubeconform not found at {kubeconform} (run `sudo tools/setup`)")
    with tempfile.TemporaryDirectory(prefix="kubeconform-") as tmp:
        # One file per object: kubeconform's report names files, not namespaces.
        files = []
        for index, doc in enumerate(documents):
            path = Path(tmp) / f"{index:05d}.yaml"
            path.write_text(doc.text)
            files.append(path)
        proc = subprocess.run(
            command(kubeconform, schemas, files), capture_output=True, text=True, check=False
        )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise SchemaError(f"kubeconform failed: {proc.stderr.strip() or proc.stdout}") from None
    # kubeconform checks files in parallel: order the report by document.
    by_document: dict[int, list[Finding]] = {}
    for resource in report.get("resources", []):
        status = resource.get("status")
        if status == "statusValid":
            continue
        index = int(Path(resource["filename"]).stem)
        name = subject(documents[index].obj)
        errors = resource.get("validationErrors") or []
        found = by_document.setdefault(index, [])
        if status == "statusInvalid" and errors:
            for error in errors:
                message = f"{error.get('path') or '/'}: {error.get('msg')}"
                found.append(Finding(root, "schema", name, message))
        else:
            message = str(resource.get("msg"))
            if message.startswith("could not find schema"):
                message += f" {resource.get('version')}: {MISSING_HINT}"
            found.append(Finding(root, "schema", name, message))
    findings = [f for index in sorted(by_document) for f in sorted(by_document[index])]
    if proc.returncode != 0 and not findings:
        raise SchemaError(f"kubeconform exited {proc.returncode}: {proc.stderr.strip()}")
    return findings
