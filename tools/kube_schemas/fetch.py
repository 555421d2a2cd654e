"""Fetches the pinned modules of sources.lock and writes kubeconform's schemas.

Run by tools/setup from the repository root:
    python3.11 -m tools.kube_schemas.fetch --go /usr/local/go/bin/go --out .tools/kube_schemas
It asks the Go module proxy through `go mod download -json` (which also checks
the Go checksum database), refuses a module whose h1: sum differs from the
lock, converts, and swaps the result in whole. When the output's STAMP matches
the lock and the converters it returns at once, touching nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tools.kube_schemas import crd2jsonschema, openapi2jsonschema
from tools.kube_schemas.lock import Lock, Module, load, stamp

REPO = Path(__file__).resolve().parents[2]


class FetchError(Exception):
    """A module could not be had, or is not the one the lock pins."""


@dataclass(frozen=True)
class Downloaded:
    directory: Path
    zip_bytes: int
    seconds: float


def download(go: Path, module: Module) -> Downloaded:
    """`go mod download -json module@version`, checked against the lock's sum."""
    env = dict(os.environ)
    if not module.checksum_db:
        env["GONOSUMDB"] = module.module
    started = time.monotonic()
    proc = subprocess.run(
        [str(go), "mod", "download", "-json", module.ref],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    seconds = time.monotonic() - started
    try:
        info = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise FetchError(f"{module.ref}: go mod download failed: {proc.stderr.strip()}") from None
    if proc.returncode != 0 or info.get("Error"):
        raise FetchError(f"{module.ref}: {info.get('Error') or proc.stderr.strip()}")
    if info.get("Sum") != module.sum:
        raise FetchError(
            f"{module.ref}: the proxy's module has sum {info.get('Sum')}, the lock pins "
            f"{module.sum}; if the version was changed on purpose, update sources.lock"
        )
    directory = Path(info["Dir"])
    zip_path = Path(info.get("Zip", ""))
    size = zip_path.stat().st_size if zip_path.is_file() else 0
    return Downloaded(directory=directory, zip_bytes=size, seconds=seconds)


def _inside(module: Module, got: Downloaded, rel: str) -> Path:
    path = got.directory / rel
    if not path.is_file():
        raise FetchError(f"{module.ref}: has no {rel}")
    return path


def build(lock: Lock, go: Path, target: Path) -> list[str]:
    """Writes k8s/ and crds/ under `target`; returns one report line per module."""
    report = []
    k8s = lock.kubernetes
    got = download(go, k8s)
    report.append(f"{k8s.ref}: {got.zip_bytes / 1e6:.1f} MB zip, {got.seconds:.1f} s")
    swagger = json.loads(_inside(k8s, got, k8s.openapi).read_text())
    k8s_dir = target / "k8s" / f"v{lock.kubernetes_version}-standalone-strict"
    openapi2jsonschema.write(openapi2jsonschema.convert(swagger), k8s_dir)

    documents = []
    for source in lock.crds:
        got = download(go, source)
        report.append(f"{source.ref}: {got.zip_bytes / 1e6:.1f} MB zip, {got.seconds:.1f} s")
        files = [_inside(source, got, rel) for rel in source.files]
        documents.extend(crd2jsonschema.load_documents(files, helm_templates=source.helm_templates))
    crd2jsonschema.write(crd2jsonschema.convert(documents), target / "crds")
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--go", type=Path, required=True, help="the go command to download with")
    parser.add_argument("--out", type=Path, required=True, help="schema directory to (re)write")
    parser.add_argument("--lock", type=Path, default=REPO / "tools/kube_schemas/sources.lock")
    args = parser.parse_args(argv)

    lock = load(args.lock)
    return rebuild_stamped(
        args.out, stamp(REPO), lambda fresh: build(lock, args.go, fresh), "kube_schemas"
    )


def rebuild_stamped(out: Path, want: str, make: Callable[[Path], list[str]], label: str) -> int:
    """(Re)writes directory `out` with `make` unless its STAMP already says `want`.

    `make` fills a fresh sibling directory and returns report lines; `out` is
    replaced only once that succeeded, so a failed or interrupted run never
    leaves a half-written directory that a later run would take as current.
    """
    stamp_file = out / "STAMP"
    if stamp_file.is_file() and stamp_file.read_text() == want:
        print(f"{label}: {out} is up to date")
        return 0
    fresh = out.with_name(out.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    try:
        report = make(fresh)
    except (FetchError, ValueError) as err:
        shutil.rmtree(fresh, ignore_errors=True)
        print(f"{label}: {err}", file=sys.stderr)
        return 1
    (fresh / "STAMP").write_text(want)
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    fresh.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    for line in report:
        print(f"{label}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
