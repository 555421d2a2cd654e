"""The policy plumbing: opa over the contract's input, deny sets reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.gitops import policy
from tools.gitops.conftest import TESTDATA
from tools.gitops.findings import Finding
from tools.gitops.validate import Tools

POLICIES = TESTDATA / "policies"

UNLABELLED = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "bare", "namespace": "n"},
}
LABELLED = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "ok", "labels": {"app.kubernetes.io/name": "x"}},
}


def test_test_files_are_not_policies() -> None:
    assert [p.name for p in policy.policy_files(POLICIES)] == ["labels.rego"]


def test_a_deny_is_reported_with_root_policy_and_object(tools: Tools) -> None:
    document = policy.input_document("apps/x/base", None, [UNLABELLED, LABELLED])
    findings = policy.evaluate(document, tools.opa, policy.policy_files(POLICIES))
    assert findings == [
        Finding(
            "apps/x/base",
            "policy labels",
            "ConfigMap/n/bare",
            'set metadata.labels["app.kubernetes.io/name"]',
        )
    ]


def test_policies_see_the_environment(tools: Tools) -> None:
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "n", "labels": {"app.kubernetes.io/name": "d"}},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "r/i:1"}]}}},
    }
    files = policy.policy_files(POLICIES)
    staging = policy.input_document("o/staging", "staging", [deployment])
    assert [f.message for f in policy.evaluate(staging, tools.opa, files)] == ["pin c by digest"]
    dev = policy.input_document("o/dev", "dev", [deployment])
    assert policy.evaluate(dev, tools.opa, files) == []


def test_no_policies_is_an_error() -> None:
    with pytest.raises(policy.PolicyError, match="no policies"):
        policy.policy_files(TESTDATA / "policies_none")


def test_a_deny_outside_syncbridge_is_an_error(tools: Tools) -> None:
    files = policy.policy_files(TESTDATA / "policies_wrong_package")
    document = policy.input_document("r", None, [UNLABELLED])
    with pytest.raises(policy.PolicyError, match="no `package syncbridge"):
        policy.evaluate(document, tools.opa, files)


def test_a_policy_that_does_not_compile_is_an_error(tools: Tools, tmp_path: Path) -> None:
    broken = tmp_path / "broken.rego"
    broken.write_text("package syncbridge.broken\n\ndeny contains msg if {\n")
    with pytest.raises(policy.PolicyError, match="opa eval failed"):
        policy.evaluate(policy.input_document("r", None, []), tools.opa, [broken])
