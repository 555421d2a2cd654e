"""Every pointer a newcomer follows leads to a file that exists.

- Each relative Markdown link in every README.md (`[text](path)`, `[text](path#anchor)`)
  names a file or folder, relative to the README.
- Each "see <file>" in code, BUILD files and WORKSPACE names a file: a path with a
  folder resolves from the repository root or from the pointing file's folder;
  a bare file name (`session.proto`) names a file somewhere in the repository.

Usage: doc_links.py <a file at the repository root>. The root BUILD's test passes
WORKSPACE: its real path is the checkout, read whole, since link targets can be
any file or folder and are not among a test's declared inputs (so the test is
tagged `external`: it never comes from the cache).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

# Link targets that are not files in this repository.
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|#|/)")
# `[text](target)` and `[text](target "title")`; images too. Code spans are removed first.
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
# "see <folder>/<file>.md", "(see <file>.py)": a file name with an extension we keep.
_SEE = re.compile(
    r"\bsee\s+`?((?:[\w.-]+/)*[\w.-]+\.(?:md|py|bzl|proto|json|sql|toml|yaml|sh|conf))\b",
    re.IGNORECASE,
)
_CODE_FILES = ("BUILD.bazel", "WORKSPACE")
_CODE_SUFFIXES = (".py", ".bzl")
_SKIP_DIRS = {".git", ".tools", "node_modules", "__pycache__"}


def repository_files(root: Path) -> Iterator[Path]:
    """Every file under `root`, skipping VCS data, local tools and Bazel's output links."""
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("bazel-"))
        for name in sorted(files):
            yield Path(directory) / name


def markdown_links(text: str) -> list[str]:
    """The relative link targets of a Markdown text, without anchors, code spans ignored."""
    targets = []
    for match in _LINK.finditer(_CODE.sub("", text)):
        target = match.group(1)
        if _EXTERNAL.match(target):
            continue
        path = target.partition("#")[0]
        if path:
            targets.append(path)
    return targets


def see_pointers(text: str) -> list[str]:
    """The files a text points to with "see <file>"."""
    return [match.group(1) for match in _SEE.finditer(text)]


def check(root: Path) -> list[str]:
    """ "<file>: <pointer>" for every pointer that leads nowhere."""
    problems = []
    names = {path.name for path in repository_files(root)}
    for path in repository_files(root):
        relative = path.relative_to(root)
        if path.name == "README.md":
            for target in markdown_links(path.read_text()):
                if not (path.parent / target).exists():
                    problems.append(f"{relative}: link to {target}: no such file")
        elif path.name in _CODE_FILES or (
            path.suffix in _CODE_SUFFIXES and not path.name.endswith("_test.py")  # fixtures
        ):
            for target in see_pointers(path.read_text(errors="replace")):
                if "/" in target:
                    found = (root / target).exists() or (path.parent / target).exists()
                else:
                    found = target in names
                if not found:
                    problems.append(f"{relative}: see {target}: no such file")
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[0]).resolve().parent
    problems = check(root)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} broken pointer(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
