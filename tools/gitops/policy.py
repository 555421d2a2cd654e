"""policies/ over one rendered root with the pinned opa: `data.syncbridge[_].deny`.

The input document is the contract's: `{"root", "environment", "objects"}`.
Every `package syncbridge.<concern>` contributes its `deny` set; the package
name is bound so a message says which policy produced it. `_test.rego` files
and data files are not loaded: tests and their fixtures are `opa test`'s.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.gitops.findings import Finding

QUERY = "data.syncbridge[concern].deny"


class PolicyError(Exception):
    """No policies, or opa could not compile or evaluate them."""


def policy_files(policies_dir: Path) -> list[Path]:
    """The .rego files under `policies_dir`, tests excluded, sorted."""
    files = sorted(p for p in policies_dir.rglob("*.rego") if not p.name.endswith("_test.rego"))
    if not files:
        raise PolicyError(f"no policies (*.rego other than *_test.rego) under {policies_dir}")
    return files


def input_document(root: str, environment: str | None, objects: Sequence[Any]) -> dict[str, Any]:
    return {"root": root, "environment": environment, "objects": list(objects)}


def evaluate(document: dict[str, Any], opa: Path, files: Sequence[Path]) -> list[Finding]:
    """Every deny message for `document`, as findings of its root."""
    if not opa.is_file():
        raise PolicyError(f"opa not found at {opa} (run `sudo tools/setup`)")
    with tempfile.TemporaryDirectory(prefix="opa-input-") as tmp:
        input_path = Path(tmp) / "input.json"
        input_path.write_text(json.dumps(document))
        argv = [str(opa), "eval", "--format", "json", "--input", str(input_path)]
        for file in files:
            argv += ["--data", str(file)]
        proc = subprocess.run([*argv, QUERY], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PolicyError(f"opa eval failed: {proc.stdout.strip()} {proc.stderr.strip()}")
    results = json.loads(proc.stdout).get("result", [])
    if not results:
        raise PolicyError(
            "no `package syncbridge.<concern>` defines `deny`: the policies would pass everything"
        )
    root = str(document["root"])
    findings = []
    for result in results:
        package = result["bindings"]["concern"]
        for message in result["expressions"][0]["value"]:
            text = message if isinstance(message, str) else json.dumps(message, sort_keys=True)
            obj, sep, rest = text.partition(": ")
            subject, detail = (obj, rest) if sep and obj.count("/") >= 1 else ("-", text)
            findings.append(Finding(root, f"policy {package}", subject, detail))
    return sorted(findings)
