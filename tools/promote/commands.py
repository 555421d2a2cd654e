"""promote, release, rollback and record-status: each plans one overlay commit.

Model: Kargo's freight and stages. A release puts freight (the image
digests built from one commit) into dev; a promotion moves the freight a
stage forward once the stage it comes from is healthy; a rollback reverts
the last promotion to a stage. Each is one commit whose trailers say what
moved, so history alone answers "what runs where, since when, from where".
About 400 lines: the four commands share the plan/guard/commit helpers here;
layout, health, changes and validation are modules of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tools.promote import health, layout, overlay
from tools.promote.changes import (
    Change,
    Code,
    Context,
    Outcome,
    Refused,
    apply,
    env_lock,
    require_clean,
)
from tools.promote.gitrepo import RefMoved, Repo

# Trailers (git interpret-trailers format) the commands write and read.
PROMOTED_FROM = "Promoted-From"
PROMOTED_TO = "Promoted-To"
RELEASED_TO = "Released-To"
SOURCE_COMMIT = "Source-Commit"
IMAGE_DIGEST = "Image-Digest"
REVERTS = "Reverts"
ROLLED_BACK_IN = "Rolled-Back-In"


@dataclass(frozen=True)
class Move:
    """One image's digest change in one overlay file."""

    service: str
    path: str
    image: str
    old: str
    new: str


def select(services: Sequence[str] | None) -> list[layout.Service]:
    names = list(services) if services else list(layout.SERVICES)
    unknown = [n for n in names if n not in layout.SERVICES]
    if unknown:
        raise Refused(
            Code.USAGE, f"unknown service {', '.join(unknown)}; known: {', '.join(layout.SERVICES)}"
        )
    return [layout.SERVICES[n] for n in names]


def read_overlay(repo: Repo, rev: str, path: str) -> str:
    text = repo.show(rev, path)
    if text is None:
        raise Refused(Code.ERROR, f"{path} does not exist at {rev[:12]}")
    return text


def plan_files(repo: Repo, head: str, moves: list[Move]) -> dict[str, str]:
    """New content of every file the moves touch, only digest values changed."""
    files: dict[str, str] = {}
    for move in moves:
        text = files.get(move.path) or read_overlay(repo, head, move.path)
        files[move.path] = overlay.set_digests(text, {move.image: move.new}, move.path)
    return files


def describe(moves: list[Move]) -> list[str]:
    return [f"{m.service} ({m.path}):\n  {m.image}\n  {m.old} → {m.new}" for m in moves]


def message(
    title: str, moves: list[Move], extra: list[str], trailers: list[tuple[str, str]]
) -> str:
    body = "\n".join(describe(moves) + extra)
    lines = "\n".join(f"{k}: {v}" for k, v in trailers)
    return f"{title}\n\n{body}\n\n{lines}\n"


def branch_name(kind: str, env: str, moves: list[Move]) -> str:
    """E.g. promote/prod/ws-edge-1a2b3c4d5e6f+session-core-0f9e8d7c6b5a."""
    parts = sorted({f"{m.service}-{m.new.removeprefix('sha256:')[:12]}" for m in moves})
    return f"{kind}/{env}/{'+'.join(parts)}"


def _guarded(
    ctx: Context, env: str, run: Callable[[str], Outcome], require_clean_tree: bool = True
) -> Outcome:
    if require_clean_tree:
        require_clean(ctx.repo)
    with env_lock(ctx.repo, env):
        return run(ctx.repo.head())


# --- promote --------------------------------------------------------------


@dataclass(frozen=True)
class HealthSource:
    """Where the source environment's health comes from (see health.py)."""

    argocd_url: str | None = None
    argocd_app_pattern: str = "{service}"
    status_file_text: Callable[[str], str | None] | None = None  # override of the committed one


def promote(
    ctx: Context,
    source: str,
    target: str,
    services: Sequence[str] | None,
    dry_run: bool,
    health_source: HealthSource,
) -> Outcome:
    """Copies the source overlays' digests into the target overlays as one commit."""
    for env in (source, target):
        if env not in layout.ENVIRONMENTS:
            raise Refused(Code.USAGE, f"unknown environment {env!r}")
    if layout.next_environment(source) != target:
        raise Refused(
            Code.USAGE,
            f"{source} promotes to {layout.next_environment(source) or 'nothing'}, not {target}: "
            f"stages are {' → '.join(layout.ENVIRONMENTS)}",
        )
    chosen = select(services)

    def run(head: str) -> Outcome:
        moves: list[Move] = []
        for svc in chosen:
            src = overlay.digests(read_overlay(ctx.repo, head, svc.overlay(source)))
            dst_path = svc.overlay(target)
            dst = overlay.digests(read_overlay(ctx.repo, head, dst_path), dst_path)
            for image, digest in sorted(src.items()):
                if image not in dst:
                    raise Refused(Code.ERROR, f"{dst_path} has no `images:` entry for {image}")
                if dst[image] != digest:
                    moves.append(Move(svc.name, dst_path, image, dst[image], digest))
        if not moves:
            names = ", ".join(s.name for s in chosen)
            raise Refused(Code.UP_TO_DATE, f"{target} already runs {source}'s digests for {names}")
        source_paths = [layout.SERVICES[m.service].overlay(source) for m in moves]
        source_commit = ctx.repo.last_commit_touching(head, source_paths) or head
        verdict_box: list[health.Verdict] = []

        def check() -> None:
            verdict = source_health(ctx, head, source, moves, health_source)
            verdict_box.append(verdict)
            for note in verdict.notes:
                print(note, file=ctx.out)
            if not verdict.healthy:
                raise Refused(
                    Code.UNHEALTHY,
                    f"{source} is not healthy according to {verdict.source}:\n  "
                    + "\n  ".join(verdict.reasons),
                )
            print(f"{source} is healthy according to {verdict.source}", file=ctx.out)

        names = ", ".join(sorted({m.service for m in moves}))
        trailers = [
            (PROMOTED_FROM, source),
            (PROMOTED_TO, target),
            (SOURCE_COMMIT, source_commit),
        ] + [(IMAGE_DIGEST, f"{m.image}@{m.new}") for m in moves]
        change = Change(
            env=target,
            files=plan_files(ctx.repo, head, moves),
            message="",
            branch=branch_name("promote", target, moves),
            summary=[f"promote {source} → {target}:", *describe(moves)],
        )

        def checked() -> None:
            check()
            change.message = message(
                f"promote({target}): {names} from {source}",
                moves,
                [f"\nHealth of {source}: {verdict_box[0].source}"],
                trailers,
            )

        return apply(ctx, head, change, dry_run, check=checked)

    return _guarded(ctx, target, run)


def source_health(
    ctx: Context, head: str, env: str, moves: list[Move], src: HealthSource
) -> health.Verdict:
    """Argo CD when given and reachable, else the status file; notes say which."""
    want = {m.image: m.new for m in moves}
    notes: list[str] = []
    if src.argocd_url:
        per_service = {m.service: (m.image, m.new) for m in moves}
        try:
            return health.from_argocd(src.argocd_url, env, per_service, src.argocd_app_pattern)
        except health.Unreachable as err:
            notes.append(
                f"Argo CD at {src.argocd_url} is unreachable ({err}); "
                f"falling back to {health.status_path(env)}"
            )
    if src.status_file_text is not None:
        text = src.status_file_text(env)
    else:
        text = ctx.repo.show(head, health.status_path(env))
    verdict = health.from_status_file(env, text, want)
    verdict.notes = notes + verdict.notes
    return verdict


# --- release --------------------------------------------------------------


def release(
    ctx: Context,
    digests: dict[str, str],
    source_commit: str | None,
    dry_run: bool,
) -> Outcome:
    """Writes freshly pushed digests (service -> digest) into dev as one commit."""
    env = layout.ENVIRONMENTS[0]
    chosen = select(sorted(digests))

    def run(head: str) -> Outcome:
        moves: list[Move] = []
        for svc in chosen:
            digest = digests[svc.name]
            if not overlay.is_digest(digest):
                raise Refused(Code.USAGE, f"{svc.name}: {digest!r} is not sha256:<64 hex>")
            path = svc.overlay(env)
            current = overlay.digests(read_overlay(ctx.repo, head, path), path)
            if svc.image not in current:
                raise Refused(Code.ERROR, f"{path} has no `images:` entry for {svc.image}")
            if current[svc.image] != digest:
                moves.append(Move(svc.name, path, svc.image, current[svc.image], digest))
        if not moves:
            raise Refused(Code.UP_TO_DATE, f"{env} already runs these digests")
        names = ", ".join(m.service for m in moves)
        trailers = [(RELEASED_TO, env), (SOURCE_COMMIT, source_commit or head)] + [
            (IMAGE_DIGEST, f"{m.image}@{m.new}") for m in moves
        ]
        change = Change(
            env=env,
            files=plan_files(ctx.repo, head, moves),
            message=message(f"release({env}): {names}", moves, [], trailers),
            branch=branch_name("release", env, moves),
            summary=[f"release into {env}:", *describe(moves)],
        )
        return apply(ctx, head, change, dry_run)

    return _guarded(ctx, env, run)


# --- rollback -------------------------------------------------------------


def last_promotion(repo: Repo, head: str, env: str) -> str | None:
    """The newest release/promotion into `env` not already reverted, or None."""
    paths = [svc.overlay(env) for svc in layout.SERVICES.values()]
    reverted: set[str] = set()
    for commit in repo.log(head, paths):
        reverted.update(commit.trailers.get(REVERTS, []))
        into = commit.trailers.get(PROMOTED_TO, []) + commit.trailers.get(RELEASED_TO, [])
        if env in into and commit.sha not in reverted:
            return commit.sha
    return None


def rollback(ctx: Context, env: str, dry_run: bool) -> Outcome:
    """A commit restoring the digests the last promotion into `env` replaced."""
    if env not in layout.ENVIRONMENTS:
        raise Refused(Code.USAGE, f"unknown environment {env!r}")

    def run(head: str) -> Outcome:
        target = last_promotion(ctx.repo, head, env)
        if target is None:
            raise Refused(Code.NOTHING_TO_ROLL_BACK, f"no promotion into {env} to roll back")
        subject = ctx.repo.git("log", "-1", "--format=%s", target).strip()
        moves: list[Move] = []
        for svc in layout.SERVICES.values():
            path = svc.overlay(env)
            before_text = ctx.repo.show(f"{target}^", path)
            after_text = ctx.repo.show(target, path)
            if before_text is None or after_text is None or before_text == after_text:
                continue
            before = overlay.digests(before_text, path)
            after = overlay.digests(after_text, path)
            now = overlay.digests(read_overlay(ctx.repo, head, path), path)
            for image, digest in sorted(after.items()):
                if before.get(image, digest) == digest:
                    continue
                if now.get(image) != digest:
                    raise Refused(
                        Code.NOTHING_TO_ROLL_BACK,
                        f"{path}: {image} is {now.get(image)} now, not {digest} as "
                        f"{target[:12]} left it; something changed it since, roll back by hand",
                    )
                moves.append(Move(svc.name, path, image, digest, before[image]))
        if not moves:
            raise Refused(Code.NOTHING_TO_ROLL_BACK, f"{target[:12]} changed no digest in {env}")
        trailers = [(REVERTS, target), (ROLLED_BACK_IN, env)] + [
            (IMAGE_DIGEST, f"{m.image}@{m.new}") for m in moves
        ]
        change = Change(
            env=env,
            files=plan_files(ctx.repo, head, moves),
            message=message(
                f'rollback({env}): revert "{subject}"',
                moves,
                [f"\nThis reverts commit {target}."],
                trailers,
            ),
            branch=f"rollback/{env}/{target[:12]}",
            summary=[f"rollback {env}: revert {target[:12]} ({subject})", *describe(moves)],
        )
        return apply(ctx, head, change, dry_run)

    return _guarded(ctx, env, run)


# --- record-status --------------------------------------------------------


def record_status(ctx: Context, env: str, smoke: str, details: str, now: datetime) -> Outcome:
    """Commits gitops/status/<env>.json: the smoke result for what `env` pins now.

    Not validated by the gitops validator (it changes no manifest) and always
    on the current branch: it records an observation, it deploys nothing.
    """
    if env not in layout.ENVIRONMENTS:
        raise Refused(Code.USAGE, f"unknown environment {env!r}")

    def run(head: str) -> Outcome:
        images: dict[str, str] = {}
        for svc in layout.SERVICES.values():
            path = svc.overlay(env)
            images.update(overlay.digests(read_overlay(ctx.repo, head, path), path))
        text = health.status_record(env, smoke, images, head, details, now)
        path = health.status_path(env)
        if ctx.repo.show(head, path) == text:
            raise Refused(Code.UP_TO_DATE, f"{path} already says this")
        msg = f"status({env}): smoke {smoke}\n\n{details}\n".replace("\n\n\n", "\n")
        commit = ctx.repo.commit_files(head, {path: text}, msg)
        try:
            ctx.repo.swap_ref("HEAD", commit, head, f"status({env})")
        except RefMoved as err:
            raise Refused(Code.CONCURRENT, f"HEAD moved while this ran: {err}") from None
        ctx.repo.advance_worktree(head, commit)
        print(f"committed {commit[:12]}: {path} smoke={smoke}", file=ctx.out)
        return Outcome(commit, "HEAD")

    return _guarded(ctx, env, run)


# --- wait -------------------------------------------------------------------


def wait_synced(
    ctx: Context,
    env: str,
    argocd_url: str,
    app_pattern: str,
    timeout: float,
    interval: float,
) -> None:
    """Until Argo CD runs, Synced and Healthy, the digests `env` pins at HEAD.

    What CI waits on between a commit and the smoke test; Refused(UNHEALTHY)
    with the last reasons when `timeout` passes first.
    """
    head = ctx.repo.head()
    want: dict[str, tuple[str, str]] = {}
    for svc in layout.SERVICES.values():
        path = svc.overlay(env)
        pinned = overlay.digests(read_overlay(ctx.repo, head, path), path)
        want[svc.name] = (svc.image, pinned[svc.image])
    deadline = time.monotonic() + timeout
    while True:
        try:
            verdict = health.from_argocd(argocd_url, env, want, app_pattern)
            reasons = verdict.reasons
        except health.Unreachable as err:
            reasons = [f"Argo CD at {argocd_url} is unreachable ({err})"]
        if not reasons:
            print(f"{env}: Synced, Healthy, running {head[:12]}'s digests", file=ctx.out)
            return
        if time.monotonic() + interval > deadline:
            raise Refused(
                Code.UNHEALTHY,
                f"{env} not Synced and Healthy with {head[:12]}'s digests after {timeout:.0f}s:\n  "
                + "\n  ".join(reasons),
            )
        time.sleep(interval)
