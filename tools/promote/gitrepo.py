"""The git operations the tool needs, by Debian's /usr/bin/git, nothing implicit.

Commits are built with plumbing (a private index, `commit-tree`) and published
with `update-ref <ref> <new> <expected-old>`: a compare-and-swap, so a commit
computed from a HEAD that moved meanwhile is never written over it. The work
tree is touched only after the swap succeeded, and only by a fast-forward
`read-tree -m -u`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

GIT = "/usr/bin/git"


class GitError(RuntimeError):
    """A git command failed; carries its stderr."""


class RefMoved(GitError):
    """update-ref's compare-and-swap lost: the ref is not where we read it."""


class LockHeld(RuntimeError):
    """Another run holds the lock for this environment."""


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    trailers: dict[str, list[str]]


class Repo:
    """A git repository with a work tree, at `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def git(
        self,
        *args: str,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> str:
        """Runs git in the work tree and returns stdout; GitError on failure."""
        full_env = {**os.environ, **(env or {})}
        # A user's pager or editor must never block a tool run.
        full_env.update({"GIT_PAGER": "cat", "GIT_EDITOR": "true", "LC_ALL": "C"})
        # Bytes in and out, decoded here: text mode would translate newlines,
        # and overlays must keep every byte.
        proc = subprocess.run(
            [GIT, "-C", str(self.root), *args],
            input=None if stdin is None else stdin.encode(),
            capture_output=True,
            env=full_env,
            check=False,
        )
        out = proc.stdout.decode()
        if check and proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip() or out.strip()
            raise GitError(f"git {' '.join(args)}: {err}")
        return out

    def head(self) -> str:
        return self.git("rev-parse", "--verify", "HEAD^{commit}").strip()

    def branch(self) -> str | None:
        """The checked-out branch name, or None when HEAD is detached."""
        out = self.git("symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
        return out or None

    def common_dir(self) -> Path:
        """The repository's shared .git directory (the same for all worktrees)."""
        out = self.git("rev-parse", "--git-common-dir").strip()
        path = Path(out)
        return path if path.is_absolute() else (self.root / path).resolve()

    def dirty(self) -> list[str]:
        """`git status --porcelain` lines: changes and untracked files."""
        return [ln for ln in self.git("status", "--porcelain").splitlines() if ln]

    def show(self, rev: str, path: str) -> str | None:
        """File content at `rev`, or None when it does not exist there."""
        try:
            return self.git("show", f"{rev}:{path}")
        except GitError:
            return None

    def ref_exists(self, ref: str) -> bool:
        return self.git("rev-parse", "--verify", "--quiet", ref, check=False).strip() != ""

    def last_commit_touching(self, rev: str, paths: Sequence[str]) -> str | None:
        out = self.git("log", "-1", "--format=%H", rev, "--", *paths).strip()
        return out or None

    def log(self, rev: str, paths: Sequence[str]) -> list[Commit]:
        """Commits reachable from `rev` touching `paths`, newest first, with trailers."""
        sep, end = "\x1f", "\x1e"
        fmt = f"%H{sep}%s{sep}%(trailers:only,unfold){end}"
        out = self.git("log", f"--format={fmt}", rev, "--", *paths)
        commits = []
        for record in out.split(end):
            record = record.strip("\n")
            if not record:
                continue
            sha, subject, trailer_text = record.split(sep, 2)
            trailers: dict[str, list[str]] = {}
            for line in trailer_text.splitlines():
                key, _, value = line.partition(":")
                if value:
                    trailers.setdefault(key.strip(), []).append(value.strip())
            commits.append(Commit(sha, subject, trailers))
        return commits

    def export(self, rev: str, paths: Sequence[str], dest: Path) -> None:
        """Writes the files under `paths` at `rev` into `dest` (like a checkout)."""
        listing = self.git("ls-tree", "-r", "-z", "--full-tree", rev, "--", *paths)
        for record in listing.split("\0"):
            if not record:
                continue
            meta, path = record.split("\t", 1)
            _mode, kind, obj = meta.split()
            if kind != "blob":
                continue
            target = dest / path
            target.parent.mkdir(parents=True, exist_ok=True)
            data = subprocess.run(
                [GIT, "-C", str(self.root), "cat-file", "blob", obj],
                capture_output=True,
                check=True,
            ).stdout
            target.write_bytes(data)

    def commit_files(self, parent: str, files: Mapping[str, str], message: str) -> str:
        """A new commit object: `parent`'s tree with `files` replaced. Refs untouched."""
        with tempfile.TemporaryDirectory(prefix="promote-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self.git("read-tree", parent, env=env)
            for path, content in files.items():
                blob = self.git("hash-object", "-w", "--stdin", stdin=content).strip()
                self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self.git("write-tree", env=env).strip()
        return self.git("commit-tree", tree, "-p", parent, "-F", "-", stdin=message).strip()

    def swap_ref(self, ref: str, new: str, expected: str | None, reason: str) -> None:
        """Points `ref` at `new` only if it is still `expected` (None: must not exist)."""
        old = expected if expected is not None else "0" * 40
        try:
            self.git("update-ref", "-m", reason, ref, new, old)
        except GitError as err:
            raise RefMoved(str(err)) from err

    def advance_worktree(self, old: str, new: str) -> None:
        """Fast-forwards index and work tree from commit `old` to `new`."""
        self.git("read-tree", "-m", "-u", old, new)

    @contextmanager
    def lock(self, name: str) -> Iterator[Path]:
        """Holds `.git/<name>.lock` (O_EXCL, like git's own locks) for the block.

        Not waited on: a second run refuses at once and says who holds it.
        """
        path = self.common_dir() / f"{name}.lock"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = path.read_text(errors="replace").strip() if path.exists() else "?"
            raise LockHeld(f"{path} is held ({holder})") from None
        try:
            os.write(fd, f"pid {os.getpid()}\n".encode())
            os.close(fd)
            yield path
        finally:
            path.unlink(missing_ok=True)
