"""Rebuilds an image from its recipes, elsewhere and differently, for the reproducibility test.

An `image_recipe` target lists every layer and image action behind an image
(tool, spec, output; see tools/bazel/image.bzl). `replay` runs those tools
again outside Bazel, in a `Variant` of the environment: inputs copied to new
paths with other mtimes, spec entries shuffled, another umask, hash seed,
time zone and working directory. A tool that let any of that into its output
(timestamps, directory order, set order, build paths) changes the digest.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Lists whose order the tools must not depend on (layer order and package
# order are meaningful, so `layers` and `debs` keep theirs).
UNORDERED = ("files", "dirs", "symlinks")


@dataclass(frozen=True)
class Variant:
    """One way of running the tools differently."""

    name: str
    seed: int
    mtime: float
    umask: int
    tz: str


VARIANTS = (
    Variant("a", seed=1, mtime=1_000_000_000.0, umask=0o022, tz="UTC"),
    Variant(
        "second-variant-with-a-longer-path",
        seed=2,
        mtime=1_900_000_000.5,
        umask=0o077,
        tz="Asia/Kolkata",
    ),
)


def refs(node: Any) -> Iterator[dict[str, Any]]:
    """Every {"short", "src"} file reference in a spec."""
    if isinstance(node, dict):
        if "short" in node and "src" in node:
            yield node
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def locate(root: Path, workspace: str, short: str) -> Path:
    """A short path's file in a runfiles-shaped tree."""
    if short.startswith("../"):
        return root / short[3:]
    return root / workspace / short


class Replay:
    def __init__(
        self, runfiles: Path, workspace: str, work: Path, variant: Variant, tools: Path = Path()
    ) -> None:
        self.runfiles = runfiles
        self.tools = tools
        self.workspace = workspace
        self.work = work
        self.variant = variant
        self.rng = random.Random(variant.seed)  # noqa: S311 - shuffling, not secrets
        self.produced: dict[str, Path] = {}
        self.copies: dict[str, Path] = {}

    def locate(self, short: str) -> Path:
        return locate(self.runfiles, self.workspace, short)

    def source(self, short: str) -> Path:
        """An earlier replay output, else a fresh copy of the input with another mtime."""
        if short in self.produced:
            return self.produced[short]
        if short not in self.copies:
            copy = self.work / "inputs" / f"{len(self.copies):05d}" / Path(short).name
            copy.parent.mkdir(parents=True)
            shutil.copy(self.locate(short), copy)
            os.utime(copy, (self.variant.mtime, self.variant.mtime))
            self.copies[short] = copy
        return self.copies[short]

    def perturb(self, spec: dict[str, Any]) -> dict[str, Any]:
        for ref in refs(spec):
            ref["src"] = str(self.source(ref["short"]))
        for key in UNORDERED:
            if isinstance(spec.get(key), list):
                self.rng.shuffle(spec[key])
        # A stamp file is Bazel's; replays rebuild the unstamped image.
        if "stamp" in spec:
            spec["stamp"] = None
        return spec

    def run(self, recipe: dict[str, Any]) -> None:
        spec = self.perturb(json.loads(self.locate(recipe["spec"]).read_text()))
        step = self.work / "steps" / f"{len(self.produced):03d}"
        step.mkdir(parents=True)
        spec_path = step / "spec.json"
        spec_path.write_text(json.dumps(spec))
        out = step / Path(recipe["out"]).name
        argv = ["/usr/bin/python3.11", "-S", "-s", "-m", f"tools.bazel.oci.{recipe['tool']}"]
        argv += [str(spec_path), str(out)]
        if recipe["tool"] in ("image", "index"):
            out.mkdir()
            argv.append(str(step / "digest"))
            self.produced[recipe["digest"]] = step / "digest"
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONHASHSEED": str(self.variant.seed),
            "PYTHONPATH": str(self.tools),
            "TZ": self.variant.tz,
        }
        cwd = self.work / "cwd"
        cwd.mkdir(exist_ok=True)
        old = os.umask(self.variant.umask)
        try:
            subprocess.run(argv, cwd=cwd, env=env, check=True)
        finally:
            os.umask(old)
        self.produced[recipe["out"]] = out

    def all(self, recipes: list[dict[str, Any]]) -> None:
        """Runs every recipe once its inputs that other recipes make exist."""
        outputs = {r["out"] for r in recipes}
        pending = list(recipes)
        while pending:
            ready = [
                r
                for r in pending
                if all(
                    ref["short"] in self.produced
                    for ref in refs(json.loads(self.locate(r["spec"]).read_text()))
                    if ref["short"] in outputs
                )
            ]
            if not ready:
                raise RuntimeError(f"recipes wait on each other: {[r['out'] for r in pending]}")
            for recipe in ready:
                self.run(recipe)
                pending.remove(recipe)


def snapshot(recipes: list[dict[str, Any]], runfiles: Path, workspace: str, dest: Path) -> None:
    """Copies every input and spec of the recipes, in runfiles layout, to `dest`.

    Replays then read the snapshot, not the live source tree, so an edit made
    while the test runs cannot pass for nondeterminism.
    """
    outputs = {r["out"] for r in recipes}
    shorts = {r["spec"] for r in recipes}
    for recipe in recipes:
        spec = json.loads(locate(runfiles, workspace, recipe["spec"]).read_text())
        shorts |= {ref["short"] for ref in refs(spec) if ref["short"] not in outputs}
    for short in sorted(shorts):
        copy = locate(dest, workspace, short)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(locate(runfiles, workspace, short), copy)


def replay(
    recipes: list[dict[str, Any]],
    inputs: Path,
    tools: Path,
    workspace: str,
    work: Path,
    variant: Variant,
) -> dict[str, Path]:
    """Replays all recipes in `work`; returns {output short path: replayed output}.

    `inputs` is a runfiles-shaped tree holding the recipes' inputs (a
    `snapshot`); `tools` is the directory the tool modules import from.
    """
    run = Replay(inputs, workspace, work, variant, tools)
    run.all(recipes)
    return run.produced
