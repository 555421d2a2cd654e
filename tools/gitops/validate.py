"""Renders every root of gitops/, validates it strictly and runs policies/ over it.

    python3 -m tools.gitops.validate --gitops gitops --policies policies [--root R ...]

Per root: `kustomize build` (pinned, offline), kubeconform -strict against
the pinned Kubernetes and CRD schemas, then opa with the policies. Prints
every failure as `<root>: <check>: <Kind/namespace/name>: <what>` and exits
1 on any, or when there is nothing to check: no render roots is a failure,
not a pass. The promotion tool calls `validate()` before it writes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tools.gitops import policy, render, schemas
from tools.gitops.findings import Finding

REPO = render.REPO


@dataclass(frozen=True)
class Tools:
    """The pinned binaries and schema directory, each by explicit path."""

    kustomize: Path
    kubeconform: Path
    opa: Path
    schemas: Path

    @classmethod
    def default(cls) -> Tools:
        """This checkout's `.tools/` as tools/setup leaves it."""
        return cls(
            kustomize=render.default_tool("kustomize"),
            kubeconform=render.default_tool("kubeconform"),
            opa=render.default_tool("opa"),
            schemas=REPO / ".tools" / "kube_schemas",
        )


@dataclass
class Report:
    roots: list[str] = field(default_factory=list)
    objects: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.roots) and not self.findings


class ValidationError(Exception):
    """Nothing to validate, or a tool or input is unusable (not a finding about objects)."""


def select_roots(gitops_dir: Path, wanted: Sequence[str]) -> list[Path]:
    found = render.roots(gitops_dir)
    if not found:
        raise ValidationError(
            f"no render roots under {gitops_dir}: no kustomization.yaml of kind Kustomization"
        )
    if not wanted:
        return found
    by_name = {str(p.relative_to(gitops_dir)): p for p in found}
    missing = [w for w in wanted if w.strip("/") not in by_name]
    if missing:
        raise ValidationError(f"not render roots under {gitops_dir}: {', '.join(missing)}")
    return [by_name[w.strip("/")] for w in wanted]


def validate(
    gitops_dir: Path, policies_dir: Path, tools: Tools, wanted: Sequence[str] = ()
) -> Report:
    """Checks the chosen roots (all by default); raises ValidationError when it cannot."""
    if not gitops_dir.is_dir():
        raise ValidationError(f"{gitops_dir} is not a directory")
    with render.materialized(gitops_dir) as copy:
        try:
            return _validate(copy, policies_dir, tools, wanted)
        except ValidationError as err:
            # Name the tree the caller gave, not the temporary copy.
            raise ValidationError(str(err).replace(str(copy), str(gitops_dir))) from err


def _validate(gitops_dir: Path, policies_dir: Path, tools: Tools, wanted: Sequence[str]) -> Report:
    try:
        chosen = select_roots(gitops_dir, wanted)
        rego = policy.policy_files(policies_dir)
        schema_dir = schemas.Schemas.at(tools.schemas)
    except (policy.PolicyError, schemas.SchemaError) as err:
        raise ValidationError(str(err)) from err
    report = Report()
    for path in chosen:
        name = str(path.relative_to(gitops_dir))
        report.roots.append(name)
        try:
            documents = render.build_documents(path, tools.kustomize)
        except render.RenderError as err:
            report.findings.append(Finding(name, "render", name, str(err)))
            continue
        report.objects += len(documents)
        try:
            report.findings += schemas.check(name, documents, tools.kubeconform, schema_dir)
            document = policy.input_document(
                name, render.environment(Path(name)), [d.obj for d in documents]
            )
            report.findings += policy.evaluate(document, tools.opa, rego)
        except (policy.PolicyError, schemas.SchemaError) as err:
            raise ValidationError(f"{name}: {err}") from err
    return report


def main(argv: Sequence[str]) -> int:
    defaults = Tools.default()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gitops", type=Path, required=True, help="the gitops/ tree")
    parser.add_argument("--policies", type=Path, required=True, help="the policies/ tree")
    parser.add_argument("--root", action="append", default=[], help="only this root (repeatable)")
    parser.add_argument("--kustomize", type=Path, default=defaults.kustomize)
    parser.add_argument("--kubeconform", type=Path, default=defaults.kubeconform)
    parser.add_argument("--opa", type=Path, default=defaults.opa)
    parser.add_argument("--schemas", type=Path, default=defaults.schemas)
    args = parser.parse_args(argv)
    tools = Tools(args.kustomize, args.kubeconform, args.opa, args.schemas)
    try:
        report = validate(args.gitops, args.policies, tools, args.root)
    except ValidationError as err:
        print(f"validate: FAILED: {err}", file=sys.stderr)
        return 1
    for finding in report.findings:
        print(finding)
    verdict = "ok" if report.ok else f"FAILED, {len(report.findings)} failures"
    print(f"validate: {len(report.roots)} roots, {report.objects} objects: {verdict}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
