"""sources.lock: the committed lock is complete, a broken one is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools.kube_schemas import lock

REPO = Path(__file__).resolve().parents[2]

GOOD = """
[kubernetes]
module = "k8s.io/kubernetes"
version = "v1.28.15"
sum = "h1:abc="
openapi = "api/openapi-spec/swagger.json"

[[crds]]
name = "x"
module = "example.com/x"
version = "v1.0.0"
sum = "h1:def="
files = ["crds/x.yaml"]
"""


def test_the_committed_lock_pins_kubernetes_1_28_and_every_crd_source() -> None:
    pinned = lock.load(REPO / "tools/kube_schemas/sources.lock")
    assert pinned.kubernetes.module == "k8s.io/kubernetes"
    assert pinned.kubernetes_version.startswith("1.28.")
    names = {c.name for c in pinned.crds}
    assert {"argo-cd", "prometheus-operator", "cert-manager", "external-secrets"} <= names
    assert {"cloudnative-pg", "rabbitmq-cluster-operator", "linkerd"} <= names
    for source in pinned.crds:
        assert all(f.endswith(".yaml") for f in source.files), source.name


def test_a_good_lock_parses() -> None:
    parsed = lock.parse(GOOD)
    assert parsed.kubernetes.ref == "k8s.io/kubernetes@v1.28.15"
    assert parsed.crds[0].files == ("crds/x.yaml",)


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (GOOD.replace('sum = "h1:def="', 'sum = "sha256:def"'), "h1: hash"),
        (GOOD.replace('version = "v1.0.0"', 'version = "latest"'), "exact v-prefixed"),
        (GOOD.replace('files = ["crds/x.yaml"]', "files = []"), "must list the CRD files"),
        (GOOD.replace('openapi = "api/openapi-spec/swagger.json"', ""), "`openapi`"),
        (GOOD.split("[[crds]]")[0], "no \\[\\[crds\\]\\] entries"),
        (GOOD + "[[crds]]" + GOOD.split("[[crds]]")[1], "listed twice"),
    ],
)
def test_a_broken_lock_is_refused(broken: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lock.parse(broken)


def test_flags_are_booleans() -> None:
    parsed = lock.parse(
        GOOD.replace('files = ["crds/x.yaml"]', 'files = ["x"]\nchecksum_db = false')
    )
    assert parsed.crds[0].checksum_db is False
    assert parsed.kubernetes.checksum_db is True
    assert parsed.crds[0].helm_templates is False
    with pytest.raises(ValueError, match="`helm_templates` must be true or false"):
        lock.parse(GOOD.replace('files = ["crds/x.yaml"]', 'files = ["x"]\nhelm_templates = "yes"'))


def test_there_is_no_way_to_leave_a_kind_unchecked() -> None:
    # An [[unavailable]]-style table (or any typo of a table name) is refused.
    entry = '\n[[unavailable]]\ngroup = "policy.linkerd.io"\nkinds = ["Server"]\n'
    with pytest.raises(ValueError, match="unknown table"):
        lock.parse(GOOD + entry)
    with pytest.raises(ValueError, match=r"unknown table.*crd"):
        lock.parse(GOOD.replace("[[crds]]", "[[crd]]"))


def test_stamp_is_what_sha256sum_prints() -> None:
    # The repository rule compares the stamp with /usr/bin/sha256sum's output.
    out = subprocess.run(
        ["/usr/bin/sha256sum", *lock.STAMPED_FILES],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert lock.stamp(REPO) == out


def test_the_stamp_covers_what_the_bazel_rule_hashes() -> None:
    bzl = (REPO / "tools/bazel/kube_schemas.bzl").read_text()
    labels = [f'"//{f.rsplit("/", 1)[0]}:{f.rsplit("/", 1)[1]}"' for f in lock.STAMPED_FILES]
    positions = [bzl.find(label) for label in labels]
    assert all(p >= 0 for p in positions), "kube_schemas.bzl _STAMPED must list STAMPED_FILES"
    assert positions == sorted(positions), "kube_schemas.bzl _STAMPED must keep the same order"
