"""Trivy scans of the repository, the images and the rendered gitops tree.

    bazel run //tools/scan -- secrets [--image LAYOUT]...   the tracked files; each image
    bazel run //tools/scan -- config                        every gitops root, rendered
    bazel run //tools/scan -- sbom --image LAYOUT --output F [--format cyclonedx|spdx-json]
    bazel run //tools/scan -- vuln --image LAYOUT           needs Trivy's database (README)

Exit codes (stable): 0 nothing at or above --severity; 1 findings; 2 usage;
4 Trivy failed (the vulnerability database unreachable, a bad input).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tools.gitops import render
from tools.scan import trivy

OK, FINDINGS, USAGE, TRIVY_FAILED = 0, 1, 2, 4
GIT = "/usr/bin/git"
REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
IGNOREFILE = HERE / "trivyignore.yaml"
_PROXY_VARIABLES = ("https_proxy", "http_proxy", "no_proxy")


class ScanError(Exception):
    """Trivy could not scan: its own message, verbatim."""


def default_trivy() -> Path:
    return REPO / ".tools" / "bin" / "trivy"


def workspace() -> Path:
    return Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", str(REPO)))


def run_trivy(argv: Sequence[str]) -> dict[str, Any]:
    """Trivy's JSON report; a failed run raises ScanError with its message."""
    # No proxy, no HOME of the caller's: Trivy finds nothing to fetch but what we name.
    with tempfile.TemporaryDirectory(prefix="trivy-home-") as home:
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home}
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise ScanError(proc.stderr.strip() or f"trivy exited {proc.returncode}")
    if not proc.stdout.strip():
        return {}
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


@contextmanager
def tracked_tree(repo: Path) -> Iterator[Path]:
    """A copy of the files git tracks in `repo`, as they are in the work tree.

    What a commit would carry, without the build's symlinks, .tools/ or
    .git/ (Trivy does not follow symlinks, and those are not ours to judge).
    """
    listed = subprocess.run(
        [GIT, "-C", str(repo), "ls-files", "-z", "--cached"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    with tempfile.TemporaryDirectory(prefix="scan-tree-") as tmp:
        copy = Path(tmp) / repo.name
        for name in filter(None, listed.split("\0")):
            source = repo / name
            if source.is_file() and not source.is_symlink():
                (copy / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, copy / name)
        yield copy


@contextmanager
def real_layout(layout: Path) -> Iterator[Path]:
    """`layout`, or a copy of it with its symlinks replaced by their files.

    Trivy refuses a layout whose blobs are symlinks ("layout blob … is a
    symlink"), which is how Bazel's runfiles and sandboxes present a tree.
    """
    if not any(path.is_symlink() for path in [layout, *layout.rglob("*")]):
        yield layout
        return
    with tempfile.TemporaryDirectory(prefix="layout-") as tmp:
        copy = Path(tmp) / "image"
        shutil.copytree(layout.resolve(), copy, symlinks=False)
        yield copy


@contextmanager
def rendered_tree(gitops: Path, kustomize: Path) -> Iterator[Path]:
    """Every render root's objects, one file each: `<root>/<Kind>-<namespace>-<name>.yaml`."""
    with (
        render.materialized(gitops) as copy,
        tempfile.TemporaryDirectory(prefix="rendered-") as tmp,
    ):
        out = Path(tmp)
        for root in render.roots(copy):
            if root.name == "base":
                continue  # rendered through each overlay that includes it, as Argo CD does
            target = out / root.relative_to(copy)
            target.mkdir(parents=True, exist_ok=True)
            for doc in render.build_documents(root, kustomize):
                meta = doc.obj.get("metadata") or {}
                name = f"{doc.obj.get('kind')}-{meta.get('namespace', '_')}-{meta.get('name')}"
                (target / f"{name}.yaml").write_text(doc.text)
        yield out


def report(found: Sequence[trivy.Finding], severity: str, what: str) -> int:
    """Every finding printed; those at `severity` or above fail the scan."""
    for finding in found:
        print(finding)
    failing = trivy.severe(found, severity)
    print(f"scan {what}: {len(failing)} findings at {severity} or above ({len(found)} in all)")
    return FINDINGS if failing else OK


def cmd_secrets(args: argparse.Namespace, cache: Path) -> int:
    found: list[trivy.Finding] = []
    if not args.no_repo:
        with tracked_tree(args.repo) as tree:
            found += trivy.findings(
                run_trivy(trivy.secret_fs_argv(args.trivy, tree, cache, args.ignorefile))
            )
    for layout in args.image:
        with real_layout(layout) as real:
            argv = trivy.secret_image_argv(args.trivy, real, cache, args.ignorefile)
            found += trivy.findings(run_trivy(argv))
    return report(found, args.severity, "secrets")


def cmd_config(args: argparse.Namespace, cache: Path) -> int:
    with rendered_tree(args.gitops, args.kustomize) as tree:
        roots = sorted({p.parent.relative_to(tree) for p in tree.rglob("*.yaml")})
        result = run_trivy(trivy.config_argv(args.trivy, tree, cache, args.ignorefile))
    if trivy.counted(result) == 0:
        raise ScanError("trivy config reported on no manifest: nothing was checked")
    print(f"scan config: {len(roots)} roots, {trivy.counted(result)} manifests checked")
    return report(trivy.findings(result), args.severity, "config")


def cmd_sbom(args: argparse.Namespace, cache: Path) -> int:
    with real_layout(args.image[0]) as real:
        run_trivy(trivy.sbom_argv(args.trivy, real, cache, args.format, args.output))
    print(f"scan sbom: {args.format} of {args.image[0]} written to {args.output}")
    return OK


def cmd_vuln(args: argparse.Namespace, cache: Path) -> int:
    found = 0
    for layout in args.image:
        with (
            real_layout(layout) as real,
            tempfile.TemporaryDirectory(prefix="trivy-home-") as home,
        ):
            argv = trivy.vuln_image_argv(args.trivy, real, cache, args.db_repository)
            # The database is fetched: a runner's proxy settings must reach Trivy.
            env = {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home}
            env |= {k: v for k, v in os.environ.items() if k.lower() in _PROXY_VARIABLES}
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if proc.returncode not in (0, 1) or not proc.stdout.strip():
            raise ScanError(proc.stderr.strip() or f"trivy exited {proc.returncode}")
        for result in json.loads(proc.stdout).get("Results") or []:
            for vuln in result.get("Vulnerabilities") or []:
                found += 1
                print(
                    f"{vuln.get('Severity')} {vuln.get('PkgName')} {vuln.get('InstalledVersion')}"
                    f" {vuln.get('VulnerabilityID')} fixed in {vuln.get('FixedVersion')}"
                )
    print(f"scan vuln: {found} fixable HIGH/CRITICAL vulnerabilities")
    return FINDINGS if found else OK


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="scan", description="Trivy scans (see README.md).")
    top.add_argument("--trivy", type=Path, default=default_trivy())
    top.add_argument("--cache-dir", type=Path, help="Trivy's cache (default: a temporary one)")
    sub = top.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, severity: str = "LOW") -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--image", type=Path, action="append", default=[], help="OCI layout dir")
        p.add_argument(
            "--severity", default=severity, choices=trivy.SEVERITIES, help="fail from here up"
        )
        p.add_argument("--ignorefile", type=Path, default=IGNOREFILE)
        return p

    secrets = command("secrets", "leaked secrets in the tracked files and the images")
    secrets.add_argument("--repo", type=Path, default=workspace())
    secrets.add_argument("--no-repo", action="store_true", help="only the images")
    # Every secret fails; of the misconfigurations, HIGH and CRITICAL (all are printed).
    config = command("config", "misconfigurations of every rendered gitops root", "HIGH")
    config.add_argument("--gitops", type=Path, default=workspace() / "gitops")
    config.add_argument("--kustomize", type=Path, default=render.default_tool("kustomize"))
    sbom = command("sbom", "an SBOM of one image")
    sbom.add_argument("--output", type=Path, required=True)
    sbom.add_argument("--format", default="cyclonedx", choices=("cyclonedx", "spdx-json"))
    vuln = command("vuln", "known vulnerabilities of the images (needs Trivy's database)")
    vuln.add_argument("--db-repository", help="where Trivy pulls its database from")
    return top


COMMANDS = {"secrets": cmd_secrets, "config": cmd_config, "sbom": cmd_sbom, "vuln": cmd_vuln}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as stop:
        return USAGE if stop.code else OK
    # `bazel run` starts us in the runfiles: relative paths are the caller's.
    caller = Path(os.environ.get("BUILD_WORKING_DIRECTORY", "."))
    args.image = [caller / layout for layout in args.image]
    for name in ("output", "repo", "gitops"):
        if getattr(args, name, None) is not None:
            setattr(args, name, caller / getattr(args, name))
    if args.command in ("sbom", "vuln") and not args.image:
        print(f"scan {args.command}: --image LAYOUT is required", file=sys.stderr)
        return USAGE
    for layout in args.image:
        if not (layout / "index.json").is_file():
            print(f"scan: --image {layout}: not an OCI layout (no index.json)", file=sys.stderr)
            return USAGE
    if not args.trivy.is_file():
        print(f"scan: trivy not found at {args.trivy} (run `sudo tools/setup`)", file=sys.stderr)
        return USAGE
    try:
        if args.cache_dir is not None:
            return COMMANDS[args.command](args, args.cache_dir)
        with tempfile.TemporaryDirectory(prefix="trivy-cache-") as cache:
            return COMMANDS[args.command](args, Path(cache))
    except (ScanError, render.RenderError) as error:
        print(f"scan {args.command}: trivy failed: {error}", file=sys.stderr)
        return TRIVY_FAILED


if __name__ == "__main__":
    sys.exit(main())
