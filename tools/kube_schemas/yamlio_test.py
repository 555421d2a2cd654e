"""yamlio reads what Kubernetes' decoder reads."""

from __future__ import annotations

from tools.kube_schemas import yamlio


def test_a_bare_equals_sign_is_a_string() -> None:
    assert yamlio.load_all("ops:\n  - =\n  - '!='\n") == [{"ops": ["=", "!="]}]


def test_empty_documents_are_dropped() -> None:
    assert yamlio.load_all("---\n---\na: 1\n---\n") == [{"a": 1}]
