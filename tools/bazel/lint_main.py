"""Runs one static checker over the files Bazel passes in (see lint.bzl)."""

import os
import subprocess
import sys


def run(argv: list[str]) -> int:
    print("+", " ".join(argv[:4]), f"... ({len(argv)} args)", flush=True)
    return subprocess.run(argv, check=False).returncode


def is_python(path: str) -> bool:
    return path.endswith(".py")


def is_starlark(path: str) -> bool:
    name = os.path.basename(path)
    return name.endswith(".bzl") or name in ("BUILD.bazel", "BUILD", "WORKSPACE")


def main() -> int:
    # Each package hands over one `lint_srcs` filegroup; every tool takes its kind.
    tool, config, *rest = sys.argv[1:]
    if tool == "ruff":
        ruff, *files = rest
        files = [f for f in files if is_python(f)]
        common = ["--config", config, "--no-cache"]
        return run([ruff, "check", *common, *files]) | run(
            [ruff, "format", "--check", *common, *files]
        )
    if tool == "mypy":
        from mypy import api

        # First-party import roots (e.g. generated protos) are sources to mypy,
        # not installed packages; wheels stay on sys.path as installed ones.
        workspace = os.path.join(os.environ["RUNFILES_DIR"], os.environ["TEST_WORKSPACE"])
        os.environ["MYPYPATH"] = os.pathsep.join(p for p in sys.path if p.startswith(workspace))
        cache = os.path.join(os.environ["TEST_TMPDIR"], "mypy_cache")
        out, err, status = api.run(
            ["--config-file", config, "--cache-dir", cache, *filter(is_python, rest)]
        )
        print(out, err, sep="\n")
        return status
    if tool == "buildifier":
        buildifier, *files = rest
        files = [f for f in files if is_starlark(f)]
        return run([buildifier, "-mode=check", "-lint=warn", "-warnings=-native-py", *files])
    raise SystemExit(f"unknown tool {tool}")


if __name__ == "__main__":
    sys.exit(main())
