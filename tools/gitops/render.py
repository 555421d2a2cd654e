"""Render roots of gitops/ and their `kustomize build`, offline, with a pinned binary.

A render root is a directory whose kustomization file has `kind:
Kustomization` or no kind; Components render through the roots that include
them. The build runs with a proxy that goes nowhere, so a remote base or a
Helm chart fetch fails the build instead of reaching out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.kube_schemas import yamlio

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ENVIRONMENTS = ("dev", "staging", "prod")
# Where tools/setup installs the pinned CLIs, for callers outside Bazel.
REPO = Path(__file__).resolve().parents[2]
_DEAD_PROXY = "http://127.0.0.1:9"


class RenderError(Exception):
    """`kustomize build` failed, or printed something that is not objects."""


@dataclass(frozen=True)
class Document:
    """One rendered object: the exact text kustomize printed, and its parsed form."""

    text: str
    obj: dict[str, Any]


def default_tool(name: str) -> Path:
    """`.tools/bin/<name>` of this checkout: an explicit path, never a PATH lookup."""
    return REPO / ".tools" / "bin" / name


def _kustomization(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def roots(gitops_dir: Path) -> list[Path]:
    """Every render root under `gitops_dir`, sorted, as paths below it."""
    found = []
    for directory, _subdirs, _files in os.walk(gitops_dir):
        path = Path(directory)
        file = _kustomization(path)
        if file is None:
            continue
        docs = yamlio.load_all(file.read_text())
        kind = docs[0].get("kind") if docs and isinstance(docs[0], dict) else None
        if kind in (None, "Kustomization"):
            found.append(path)
    return sorted(found)


def environment(relative_root: Path) -> str | None:
    """The `dev|staging|prod` segment of a root's path; None for bases."""
    matches = [part for part in relative_root.parts if part in ENVIRONMENTS]
    return matches[-1] if matches else None


@contextmanager
def materialized(tree: Path) -> Iterator[Path]:
    """A temporary copy of `tree` with every symlink replaced by its target.

    Bazel's runfiles are symlinks out of the tree, and kustomize's default
    load restrictor (the one Argo CD uses) rejects a file whose real path is
    outside the root; building a real copy keeps that restriction meaningful.
    """
    with tempfile.TemporaryDirectory(prefix="gitops-") as tmp:
        copy = Path(tmp) / tree.name
        shutil.copytree(tree, copy, symlinks=False)
        yield copy


def split_stream(text: str) -> list[str]:
    """kustomize's output split at its `---` separator lines, empty parts dropped."""
    parts: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        if line.rstrip("\r\n") == "---":
            parts.append([])
        else:
            parts[-1].append(line)
    return ["".join(p) for p in parts if "".join(p).strip()]


def build_documents(root: Path, kustomize: Path) -> list[Document]:
    """`kustomize build root`, one Document per rendered object."""
    if not kustomize.is_file():
        raise RenderError(f"kustomize not found at {kustomize} (run `sudo tools/setup`)")
    with tempfile.TemporaryDirectory(prefix="kustomize-home-") as home:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": home,
            "HTTP_PROXY": _DEAD_PROXY,
            "HTTPS_PROXY": _DEAD_PROXY,
            "http_proxy": _DEAD_PROXY,
            "https_proxy": _DEAD_PROXY,
        }
        proc = subprocess.run(
            [str(kustomize), "build", "--load-restrictor", "LoadRestrictionsRootOnly", str(root)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    if proc.returncode != 0:
        # One line per finding: kustomize's errors quote YAML across lines.
        raise RenderError(" ".join(proc.stderr.split()) or f"kustomize exited {proc.returncode}")
    documents = []
    for text in split_stream(proc.stdout):
        parsed = yamlio.load_all(text)
        if len(parsed) != 1 or not isinstance(parsed[0], dict):
            raise RenderError(f"kustomize printed a document that is not one object:\n{text}")
        documents.append(Document(text=text, obj=parsed[0]))
    return documents


def build(root: Path, kustomize: Path | None = None) -> list[dict[str, Any]]:
    """The rendered objects of one root (the contract's `render.build`)."""
    return [d.obj for d in build_documents(root, kustomize or default_tool("kustomize"))]
