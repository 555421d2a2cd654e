"""Entry point of `bazel run //tools/gitops:validate` and `//gitops:validate_test`.

Under `bazel run`, relative --gitops/--policies paths mean the workspace's
(BUILD_WORKSPACE_DIRECTORY), not the runfiles tree's. A --schemas pointing at
the schemas' STAMP file (what a Bazel label can name) means its directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tools.gitops import validate


def _resolve_one(flag: str, value: str, workspace: str | None) -> str:
    if flag in ("--gitops", "--policies") and workspace and not Path(value).is_absolute():
        return str(Path(workspace) / value)
    if flag == "--schemas" and Path(value).name == "STAMP":
        return str(Path(value).parent)
    return value


def resolve(argv: list[str], workspace: str | None) -> list[str]:
    """argv with the paths above resolved; `--flag value` and `--flag=value` alike."""
    out = []
    previous = ""
    for arg in argv:
        if arg.startswith("--") and "=" in arg:
            flag, value = arg.split("=", 1)
            out.append(f"{flag}={_resolve_one(flag, value, workspace)}")
        else:
            out.append(_resolve_one(previous, arg, workspace))
        previous = arg
    return out


if __name__ == "__main__":
    sys.exit(validate.main(resolve(sys.argv[1:], os.environ.get("BUILD_WORKSPACE_DIRECTORY"))))
