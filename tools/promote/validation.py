"""The validation step: the candidate tree must pass what //gitops:validate_test runs.

The promotion tool never writes a commit whose tree the gitops tests would
reject. It hands a candidate checkout (a directory holding `gitops/` and
`policies/` as they would be after the change) to a `Validator`; the default
one is the gitops validator itself (`tools.gitops.validate`: kustomize build
of every root, kubeconform -strict, the OPA policies), so the two cannot
drift apart. Tests may inject another, but the promotion tests use this one.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

# Candidate checkout -> failures, one line each; empty means valid.
Validator = Callable[[Path], list[str]]


class ValidatorUnavailable(RuntimeError):
    """The gitops validator cannot be loaded: nothing can be checked, so nothing is written."""


def gitops_validator(checkout: Path) -> list[str]:
    """Runs tools.gitops.validate over `checkout`'s gitops/ and policies/."""
    try:
        from tools.gitops import validate  # type: ignore[import-untyped]  # until it lands typed
    except ImportError as err:
        raise ValidatorUnavailable(
            f"the gitops validator (tools/gitops) is missing: {err}"
        ) from err

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = validate.main(
            ["--gitops", str(checkout / "gitops"), "--policies", str(checkout / "policies")]
        )
    if code == 0:
        return []
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    return lines or [f"the gitops validator exited {code} without saying why"]
