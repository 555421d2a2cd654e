"""crds.py over kube_schemas' CRD fixture: one file per CRD, nothing else kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.cluster import crds
from tools.kube_schemas.fetch import FetchError
from tools.kube_schemas.lock import CrdSource

FIXTURES = Path(__file__).absolute().parents[1] / "kube_schemas" / "testdata"


def source(*files: str) -> CrdSource:
    return CrdSource(module="example.com/m", version="v1.0.0", sum="h1:x", name="m", files=files)


def test_definitions_are_the_crds_of_the_listed_files() -> None:
    found = crds.definitions(source("widget-crd.yaml"), FIXTURES)
    assert [(c["spec"]["group"], c["spec"]["names"]["kind"]) for c in found] == [
        ("example.com", "Widget")
    ]
    assert crds.crd_file("example.com", "Widget") == "example.com_Widget.json"


def test_a_missing_file_or_a_file_without_crds_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"has no nope\.yaml"):
        crds.definitions(source("nope.yaml"), FIXTURES)
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    with pytest.raises(FetchError, match="no CustomResourceDefinition"):
        crds.definitions(source("cm.yaml"), tmp_path)
