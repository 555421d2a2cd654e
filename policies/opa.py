"""Runs the pinned opa (and kustomize) that tools/setup builds, for the policy tests.

Bazel passes each tool's runfiles path in an environment variable (OPA,
KUSTOMIZE), never PATH, and the policies are read from this package's
runfiles, so a test sees exactly the files its target declares.
"""

import json
import os
import subprocess
from pathlib import Path
from typing import Any


def tool(name: str) -> str:
    """The path of a tool Bazel handed over in the environment variable `name`."""
    path = os.environ.get(name)
    if not path:
        raise RuntimeError(
            f"{name} is unset: run this test through Bazel (bazel test //policies/...)"
        )
    return path


def policies_dir() -> Path:
    """This package's directory in the test's runfiles."""
    return Path(os.environ["TEST_SRCDIR"], os.environ["TEST_WORKSPACE"], "policies")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """`opa <args>`, capturing its output; the caller judges the exit code."""
    return subprocess.run([tool("OPA"), *args], capture_output=True, text=True, check=False)


def evaluate(query: str, document: Any, *data: Path) -> Any:
    """The value of `query` with `document` as input and `data` loaded, as the validator runs it."""
    loads = [arg for path in data for arg in ("--data", str(path))]
    result = subprocess.run(
        [tool("OPA"), "eval", "--format", "json", "--stdin-input", *loads, query],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(result.stdout).get("result", [])
    assert results, f"{query} is undefined"
    return results[0]["expressions"][0]["value"]
