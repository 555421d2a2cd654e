"""Apply one planned overlay change as a validated commit (shared by every command).

The steps, in this order, each able to refuse with a stable exit code:
dirty work tree (5) -> lock for the environment (7) -> plan against HEAD
(3: nothing to change) -> the command's own checks (6: unhealthy source) ->
render and validate the candidate tree (4) -> commit -> compare-and-swap of
the ref (7: HEAD moved). Reviewed environments (prod) get a new branch named
for the change instead of a commit on the current branch.
"""

from __future__ import annotations

import difflib
import enum
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from tools.promote import layout
from tools.promote.gitrepo import LockHeld, RefMoved, Repo
from tools.promote.validation import Validator


class Code(enum.IntEnum):
    """Exit codes: stable, documented in README.md, relied on by CI."""

    OK = 0
    ERROR = 1  # unexpected: git failed, an overlay is malformed
    USAGE = 2  # bad arguments (argparse uses 2 as well)
    UP_TO_DATE = 3  # the target already runs these digests: nothing to commit
    INVALID = 4  # the candidate tree fails kustomize, schemas or policies
    DIRTY = 5  # the work tree has uncommitted changes
    UNHEALTHY = 6  # the source environment is not healthy (status file / Argo CD)
    CONCURRENT = 7  # another run holds the lock, HEAD moved, or the branch exists
    NOTHING_TO_ROLL_BACK = 8  # no promotion to revert, or it was changed since


class Refused(Exception):
    """A refusal with its exit code and a reason a person can act on."""

    def __init__(self, code: Code, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class Change:
    """What a command wants to commit: new file contents, message, where."""

    env: str
    files: dict[str, str]  # repository path -> new content
    message: str
    branch: str  # used only for reviewed environments
    summary: list[str] = field(default_factory=list)


@dataclass
class Context:
    repo: Repo
    validator: Validator
    out: TextIO


@dataclass(frozen=True)
class Outcome:
    commit: str | None  # None for a dry run
    ref: str  # HEAD, or refs/heads/<branch> for reviewed environments


def require_clean(repo: Repo) -> None:
    dirty = repo.dirty()
    if dirty:
        shown = "\n  ".join(dirty[:10])
        raise Refused(
            Code.DIRTY,
            f"the work tree has uncommitted changes; commit or stash them first:\n  {shown}",
        )


@contextmanager
def env_lock(repo: Repo, env: str) -> Iterator[None]:
    """One writer per environment: `.git/promote-<env>.lock` for the whole run."""
    try:
        with repo.lock(f"promote-{env}"):
            yield
    except LockHeld as err:
        raise Refused(
            Code.CONCURRENT,
            f"another promotion to {env} is running: {err}. Wait for it, or remove "
            "the lock file if that process is gone.",
        ) from None


def diff(repo: Repo, head: str, files: dict[str, str]) -> str:
    """Unified diff of `files` against their content at `head`."""
    chunks: list[str] = []
    for path, new in sorted(files.items()):
        old = repo.show(head, path) or ""
        chunks.extend(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=f"a/{path}",
                tofile=f"b/{path}",
            )
        )
    return "".join(chunks)


def validate(repo: Repo, validator: Validator, head: str, files: dict[str, str]) -> None:
    """Renders and validates `head`'s gitops/ and policies/ with `files` applied."""
    with tempfile.TemporaryDirectory(prefix="promote-candidate-") as tmp:
        root = Path(tmp)
        repo.export(head, ["gitops", "policies"], root)
        for path, content in files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode())
        failures = validator(root)
    if failures:
        shown = "\n  ".join(failures[:50])
        more = f"\n  … and {len(failures) - 50} more" if len(failures) > 50 else ""
        raise Refused(Code.INVALID, f"the change does not validate:\n  {shown}{more}")


def apply(
    ctx: Context,
    head: str,
    change: Change,
    dry_run: bool,
    check: Callable[[], None] | None = None,
    validated: bool = True,
) -> Outcome:
    """Prints, validates and (unless `dry_run`) commits `change` on top of `head`.

    `check` runs after planning and before validation (the health gate), so a
    dry run reports every refusal a real run would.
    """
    for line in change.summary:
        print(line, file=ctx.out)
    if dry_run:
        print(diff(ctx.repo, head, change.files), end="", file=ctx.out)
    if check is not None:
        check()
    if validated:
        validate(ctx.repo, ctx.validator, head, change.files)
        print("validated: kustomize build, kubeconform, policies: ok", file=ctx.out)
    reviewed = change.env in layout.REVIEWED
    ref = f"refs/heads/{change.branch}" if reviewed else "HEAD"
    if dry_run:
        print(f"dry run: would commit to {ref}", file=ctx.out)
        return Outcome(None, ref)
    commit = ctx.repo.commit_files(head, change.files, change.message)
    if reviewed:
        try:
            ctx.repo.swap_ref(ref, commit, None, f"promote: {change.branch}")
        except RefMoved:
            raise Refused(
                Code.CONCURRENT,
                f"branch {change.branch} already exists: this change is already proposed",
            ) from None
        print(
            f"committed {commit[:12]} on branch {change.branch} for review "
            f"(current branch unchanged); push it and open a pull request:\n"
            f"  /usr/bin/git push origin {change.branch}",
            file=ctx.out,
        )
        return Outcome(commit, ref)
    try:
        ctx.repo.swap_ref("HEAD", commit, head, change.message.splitlines()[0])
    except RefMoved:
        raise Refused(
            Code.CONCURRENT,
            f"HEAD moved while this ran (was {head[:12]}); nothing was written, run it again",
        ) from None
    ctx.repo.advance_worktree(head, commit)
    print(f"committed {commit[:12]} on {ctx.repo.branch() or 'detached HEAD'}", file=ctx.out)
    return Outcome(commit, ref)


def short(digest: str) -> str:
    """`sha256:` plus the first 12 hex digits, for branch names and tables."""
    return digest[: len("sha256:") + 12]
