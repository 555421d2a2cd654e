"""validate_main's path resolution for `bazel run` and Bazel labels."""

from __future__ import annotations

from tools.gitops.validate_main import resolve


def test_relative_trees_mean_the_workspaces_under_bazel_run() -> None:
    argv = ["--gitops", "gitops", "--policies=policies", "--root", "apps/x/base"]
    assert resolve(argv, "/ws") == [
        "--gitops",
        "/ws/gitops",
        "--policies=/ws/policies",
        "--root",
        "apps/x/base",
    ]


def test_without_a_workspace_paths_stay_as_given() -> None:
    assert resolve(["--gitops=gitops", "--policies", "/abs"], None) == [
        "--gitops=gitops",
        "--policies",
        "/abs",
    ]


def test_a_stamp_label_means_its_directory() -> None:
    argv = ["--schemas=external/kube_schemas/schemas/STAMP", "--schemas", "d/STAMP"]
    assert resolve(argv, "/ws") == ["--schemas=external/kube_schemas/schemas", "--schemas", "d"]
