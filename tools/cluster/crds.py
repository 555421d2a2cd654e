"""Writes the local cluster's CRDs and Argo CD's base config from the pinned modules.

The same upstream files, modules and h1: sums as kubeconform's schemas
(tools/kube_schemas/sources.lock, fetched with its `download`): the cluster
serves exactly the CRDs the offline check validates against. Argo CD's base
config (argocd-cm and its siblings) comes from the argo-cd module the lock
pins, the version tools/cluster/gomod/argocd builds. Run by tools/setup:
    python3.11 -m tools.cluster.crds --go /usr/local/go/bin/go --out .tools/cluster
A no-op when the output's STAMP matches the lock and this file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from tools.kube_schemas import helm_metadata, yamlio
from tools.kube_schemas.fetch import FetchError, download, rebuild_stamped
from tools.kube_schemas.lock import CrdSource, Lock, load

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "tools/kube_schemas/sources.lock"
ARGOCD_CONFIG = "manifests/base/config"


def stamp(lock_path: Path) -> str:
    digest = hashlib.sha256(lock_path.read_bytes() + Path(__file__).read_bytes())
    return digest.hexdigest() + "\n"


def crd_file(group: str, kind: str) -> str:
    """The file one CRD is written to, so a caller can create only the kinds it uses."""
    return f"{group}_{kind}.json"


def definitions(source: CrdSource, module_dir: Path) -> list[dict[str, Any]]:
    """The source's CustomResourceDefinitions (Helm templates rendered first)."""
    found = []
    for rel in source.files:
        path = module_dir / rel
        if not path.is_file():
            raise FetchError(f"{source.ref}: has no {rel}")
        text = path.read_text()
        if source.helm_templates:
            text = helm_metadata.render(text, str(path))
        for doc in yamlio.load_all(text):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                found.append(doc)
    if not found:
        raise FetchError(f"{source.ref}: no CustomResourceDefinition in its files")
    return found


def build(lock: Lock, go: Path, target: Path) -> list[str]:
    """crds/<group>_<Kind>.json per CRD and argocd-config/*.yaml; one report line each."""
    (target / "crds").mkdir(parents=True)
    (target / "argocd-config").mkdir()
    report = []
    for source in lock.crds:
        got = download(go, source)
        crds = definitions(source, got.directory)
        for crd in crds:
            name = crd_file(crd["spec"]["group"], crd["spec"]["names"]["kind"])
            # JSON is YAML: kubectl reads it; the object is upstream's, re-serialized.
            (target / "crds" / name).write_text(json.dumps(crd, indent=1) + "\n")
        report.append(f"{source.ref}: {len(crds)} CRDs")
        if source.name == "argo-cd":
            config = got.directory / ARGOCD_CONFIG
            for path in sorted(config.glob("argocd-*.yaml")):
                (target / "argocd-config" / path.name).write_text(path.read_text())
            report.append(f"{source.ref}: Argo CD base config from {ARGOCD_CONFIG}")
    if not any((target / "argocd-config").iterdir()):
        raise FetchError("sources.lock has no argo-cd entry: no Argo CD base config")
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--go", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lock", type=Path, default=LOCK)
    args = parser.parse_args(argv)
    lock = load(args.lock)
    return rebuild_stamped(
        args.out, stamp(args.lock), lambda fresh: build(lock, args.go, fresh), "cluster crds"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
