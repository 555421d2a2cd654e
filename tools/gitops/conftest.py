"""The pinned tools and schemas the tests run, from the labels BUILD.bazel passes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.gitops.validate import Tools

TESTDATA = Path(__file__).parent / "testdata"


@pytest.fixture(scope="session")
def tools() -> Tools:
    return Tools(
        kustomize=Path(os.environ["KUSTOMIZE"]).absolute(),
        kubeconform=Path(os.environ["KUBECONFORM"]).absolute(),
        opa=Path(os.environ["OPA"]).absolute(),
        schemas=Path(os.environ["KUBE_SCHEMAS_STAMP"]).absolute().parent,
    )
