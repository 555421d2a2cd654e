"""helm_metadata: metadata expressions rendered, everything else refused."""

from __future__ import annotations

import pytest

from tools.kube_schemas import helm_metadata, yamlio

TEMPLATE = """\
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servers.policy.linkerd.io
  annotations:
    {{ include "partials.annotations.created-by" . }}
  labels:
    helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
    linkerd.io/control-plane-ns: {{.Release.Namespace}}
spec:
  group: policy.linkerd.io
"""


def test_metadata_expressions_become_placeholders() -> None:
    [doc] = yamlio.load_all(helm_metadata.render(TEMPLATE, "server.yaml"))
    placeholder = helm_metadata.PLACEHOLDER
    assert doc["metadata"]["labels"] == {
        "helm.sh/chart": f"{placeholder}-{placeholder}",
        "linkerd.io/control-plane-ns": placeholder,
    }
    # The whole-line include is dropped: it only ever adds annotations.
    assert doc["metadata"]["annotations"] is None
    assert doc["spec"] == {"group": "policy.linkerd.io"}


def test_an_expression_in_spec_is_refused() -> None:
    text = TEMPLATE + "  scope: {{ .Values.scope }}\n"
    with pytest.raises(ValueError, match=r"server\.yaml:13: a template expression outside"):
        helm_metadata.render(text, "server.yaml")


@pytest.mark.parametrize(
    "line",
    [
        "{{- if .Values.enableHttpRoutes }}\n",
        "    {{- range .Values.labels }}x{{ end }}\n",
        "    {{ .Values.x \n",
    ],
)
def test_template_logic_is_refused_even_in_metadata(line: str) -> None:
    text = TEMPLATE.replace("  labels:\n", "  labels:\n" + line)
    with pytest.raises(ValueError, match="template logic"):
        helm_metadata.render(text, "x.yaml")


def test_plain_yaml_passes_unchanged() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
    assert helm_metadata.render(text, "x.yaml") == text
