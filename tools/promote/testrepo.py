"""Temporary git repositories holding the fixture gitops tree, for the tests."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

from tools.promote.gitrepo import GIT, Repo
from tools.promote.main import run
from tools.promote.validation import Validator

FIXTURE = Path(__file__).resolve().parent / "testdata"


def digest(char: str) -> str:
    """A well-formed digest made of one repeated hex digit, easy to read in asserts."""
    return "sha256:" + char * 64


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        [GIT, "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout


def make_repo(root: Path, policies: Path | None = None) -> Repo:
    """A repository at `root`: the fixture gitops/ (+ `policies`), one commit on main."""
    shutil.copytree(FIXTURE / "gitops", root / "gitops")
    if policies is not None:
        shutil.copytree(policies, root / "policies")
    else:
        (root / "policies").mkdir()
        (root / "policies" / "README.md").write_text("no policies in this fixture\n")
    (root / ".gitignore").write_text("/bazel-*\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Promote Test")
    git(root, "config", "user.email", "promote-test@example.invalid")
    git(root, "config", "commit.gpgsign", "false")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init: fixture gitops tree")
    return Repo(root)


def commit_file(root: Path, path: str, content: str, message: str) -> str:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(content)
    git(root, "add", path)
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD").strip()


def cli(root: Path, validator: Validator, *argv: str) -> tuple[int, str]:
    """Runs the CLI against `root`; returns (exit code, everything it printed)."""
    out = io.StringIO()
    code = run(["--repo", str(root), *argv], out, validator=validator)
    return code, out.getvalue()
