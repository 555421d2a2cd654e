"""The validation step: the candidate tree must pass what //gitops:validate_test runs.

The promotion tool never writes a commit whose tree the gitops tests would
reject. It hands a candidate checkout (a directory holding `gitops/` and
`policies/` as they would be after the change) to a `Validator`; the one
wired by default is the gitops validator itself (`tools.gitops.validate`:
kustomize build of every root, kubeconform -strict against the pinned
schemas, the OPA policies), so the two cannot drift apart. The promotion
tests use that same one; only a test of the gate itself injects another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tools.gitops import validate

# Candidate checkout -> failures, one line each; empty means valid.
Validator = Callable[[Path], list[str]]
Tools = validate.Tools


def gitops_validator(tools: Tools) -> Validator:
    """The validator of //gitops:validate_test, with these pinned tools and schemas."""

    def run(checkout: Path) -> list[str]:
        try:
            report = validate.validate(checkout / "gitops", checkout / "policies", tools)
        except validate.ValidationError as err:
            return [f"validate: {err}"]
        if report.ok:
            return []
        return [str(f) for f in report.findings] or ["validate: nothing was checked"]

    return run
