"""CLI: bazel run //tools/promote -- [promote] --from staging --to prod [--service ws-edge]

Subcommands: promote (the default), release, status, rollback, record-status, wait.
Exit codes are tools.promote.changes.Code (documented in README.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from argparse import SUPPRESS
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from tools.promote import commands, layout, overlay
from tools.promote import status as status_cmd
from tools.promote.changes import Code, Context, Refused
from tools.promote.gitrepo import GitError, Repo
from tools.promote.validation import Tools, Validator, gitops_validator

SUBCOMMANDS = ("promote", "release", "status", "rollback", "record-status", "wait")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="promote", description=__doc__)
    top.add_argument(
        "--repo",
        type=Path,
        default=None,
        help="repository root (default: the Bazel workspace, else the current directory)",
    )
    # The validator's pinned tools: BUILD.bazel passes their runfiles paths;
    # the defaults are this checkout's .tools/ as tools/setup leaves it.
    defaults = Tools.default()
    for name in ("kustomize", "kubeconform", "opa", "schemas"):
        top.add_argument(f"--{name}", type=Path, default=getattr(defaults, name), help=SUPPRESS)
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("promote", help="copy digests from one overlay to the next")
    p.add_argument("--from", dest="source", required=True, choices=layout.ENVIRONMENTS)
    p.add_argument("--to", dest="target", required=True, choices=layout.ENVIRONMENTS)
    p.add_argument("--service", action="append", choices=sorted(layout.SERVICES))
    p.add_argument("--dry-run", action="store_true", help="print the diff, validate, write nothing")
    p.add_argument(
        "--argocd",
        metavar="URL",
        help="Argo CD API base URL; when it answers, its Application status decides health",
    )
    p.add_argument("--argocd-app", default="{service}", help="Application name ({service}, {env})")
    p.add_argument(
        "--status-file",
        type=Path,
        help="read the source's status from this file instead of gitops/status/<env>.json",
    )

    r = sub.add_parser("release", help="write pushed digests into the dev overlay")
    r.add_argument(
        "--digest",
        action="append",
        default=[],
        metavar="SERVICE=sha256:…",
        help="digest per service (default: each service's bazel-bin/…/image_index.digest)",
    )
    r.add_argument("--service", action="append", choices=sorted(layout.SERVICES))
    r.add_argument("--source-commit", help="commit the images were built from (default HEAD)")
    r.add_argument("--dry-run", action="store_true")

    s = sub.add_parser("status", help="digest per environment and releases behind")
    s.add_argument("--json", action="store_true")

    b = sub.add_parser("rollback", help="revert the last promotion into an environment")
    b.add_argument("--env", required=True, choices=layout.ENVIRONMENTS)
    b.add_argument("--dry-run", action="store_true")

    h = sub.add_parser("record-status", help="commit the smoke result of an environment")
    h.add_argument("--env", required=True, choices=layout.ENVIRONMENTS)
    h.add_argument("--smoke", required=True, choices=("passed", "failed"))
    h.add_argument("--details", default="", help="e.g. the CI run URL")

    w = sub.add_parser("wait", help="until Argo CD runs what an environment pins, Synced+Healthy")
    w.add_argument("--env", required=True, choices=layout.ENVIRONMENTS)
    w.add_argument("--argocd", required=True, metavar="URL")
    w.add_argument("--argocd-app", default="{service}", help="Application name ({service}, {env})")
    w.add_argument("--timeout", type=float, default=900.0, help="seconds")
    w.add_argument("--interval", type=float, default=10.0, help="seconds between polls")
    return top


def release_digests(repo: Path, args: argparse.Namespace) -> dict[str, str]:
    """`--digest s=d` pairs, else the digest files of the chosen services."""
    given: dict[str, str] = {}
    for pair in args.digest:
        name, sep, digest = pair.partition("=")
        if not sep or name not in layout.SERVICES:
            raise Refused(Code.USAGE, f"--digest {pair!r}: expected SERVICE=sha256:… ")
        given[name] = digest.strip()
    if given:
        return given
    names = args.service or list(layout.SERVICES)
    for name in names:
        svc = layout.SERVICES[name]
        path = repo / svc.digest_file
        if not path.is_file():
            raise Refused(
                Code.USAGE,
                f"{path} is missing: build and push first (bazel build //{svc.package}:image), "
                "or pass --digest",
            )
        given[name] = path.read_text().strip()
    return given


def default_root() -> Path:
    return Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY") or os.getcwd())


TOP_LEVEL = ("--repo", "--kustomize", "--kubeconform", "--opa", "--schemas")


def with_subcommand(argv: list[str]) -> list[str]:
    """`--from staging --to prod` means `promote --from staging --to prod`."""
    if any(a in SUBCOMMANDS for a in argv) or argv[:1] in (["-h"], ["--help"]):
        return argv
    at = 0
    while at < len(argv) and argv[at].split("=", 1)[0] in TOP_LEVEL:
        at += 1 if "=" in argv[at] else 2
    return [*argv[:at], "promote", *argv[at:]]


def run(
    argv: list[str],
    out: TextIO,
    err: TextIO | None = None,
    validator: Validator | None = None,
) -> int:
    """Runs one command; returns its exit code (Code). The entry point tests call.

    Progress and diffs go to `out`; refusals and errors to `err` (default `out`).
    `validator` defaults to the gitops validator with the --kustomize, … tools.
    """
    err = err or out
    args = parser().parse_args(with_subcommand(argv))
    repo = Repo((args.repo or default_root()).resolve())
    if validator is None:
        # A Bazel label can name the schemas' STAMP file, not their directory.
        schemas = args.schemas.parent if args.schemas.name == "STAMP" else args.schemas
        tools = Tools(
            args.kustomize.absolute(),
            args.kubeconform.absolute(),
            args.opa.absolute(),
            schemas.absolute(),
        )
        validator = gitops_validator(tools)
    ctx = Context(repo, validator, out)
    try:
        if args.command == "promote":
            status_file: Path | None = args.status_file
            source = commands.HealthSource(
                argocd_url=args.argocd,
                argocd_app_pattern=args.argocd_app,
                status_file_text=(
                    (lambda _env: status_file.read_text() if status_file.is_file() else None)
                    if status_file is not None
                    else None
                ),
            )
            commands.promote(ctx, args.source, args.target, args.service, args.dry_run, source)
        elif args.command == "release":
            digests = release_digests(repo.root, args)
            commands.release(ctx, digests, args.source_commit, args.dry_run)
        elif args.command == "status":
            table = status_cmd.rows(repo)
            out.write(status_cmd.render_json(table) if args.json else status_cmd.render(table))
        elif args.command == "rollback":
            commands.rollback(ctx, args.env, args.dry_run)
        elif args.command == "wait":
            commands.wait_synced(
                ctx, args.env, args.argocd, args.argocd_app, args.timeout, args.interval
            )
        else:
            commands.record_status(ctx, args.env, args.smoke, args.details, datetime.now(UTC))
    except Refused as refusal:
        print(f"promote: refused ({refusal.code.name}, exit {int(refusal.code)}):", file=err)
        print(f"  {refusal.reason}", file=err)
        return int(refusal.code)
    except (GitError, overlay.OverlayError) as error:
        print(f"promote: error: {error}", file=err)
        return int(Code.ERROR)
    return int(Code.OK)


def main() -> int:
    return run(sys.argv[1:], sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
