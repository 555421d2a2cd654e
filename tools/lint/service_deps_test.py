"""The service dependency check against small trees that break each of its rules."""

from __future__ import annotations

from pathlib import Path

from tools.lint.service_deps import check, imported_services, load, normalize

CORE_BUILD = """
package(default_visibility = ["//visibility:private"])

py_library(name = "store", srcs = ["store.py"], visibility = ["//visibility:public"])

py_library(
    name = "harness",
    testonly = True,
    srcs = ["harness.py"],
    visibility = ["//visibility:public"],
    deps = [":store"],
)

py_binary(
    name = "core",
    srcs = ["store.py"],
    main = "store.py",
    visibility = ["//visibility:public"],
)
"""

EDGE_BUILD = """
package(default_visibility = ["//visibility:private"])

py_library(name = "app", srcs = ["app.py"], deps = ["//libs/bus"])

pytest_test(
    name = "app_test",
    srcs = ["app_test.py"],
    data = ["//services/core"],
    deps = [":app", "//services/core:harness", requirement("pytest")],
)
"""

BUS_BUILD = """
py_library(name = "bus", srcs = ["topology.py"], visibility = ["//visibility:public"])
"""


def tree(tmp_path: Path, overrides: dict[str, str] | None = None) -> list[str]:
    """A clean repository (core, edge, a lib), with files replaced by `overrides`."""
    files = {
        "services/core/BUILD.bazel": CORE_BUILD,
        "services/core/store.py": "import asyncpg\n",
        "services/core/harness.py": "from services.core import store\n",
        "services/edge/BUILD.bazel": EDGE_BUILD,
        "services/edge/app.py": "from libs.bus import topology\n",
        "services/edge/app_test.py": "from services.core.harness import running_core\n",
        "libs/bus/BUILD.bazel": BUS_BUILD,
        "libs/bus/topology.py": "EXCHANGE = 'x'\n",
    }
    files.update(overrides or {})
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return check(*load(files, tmp_path))


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    assert tree(tmp_path) == []


def test_production_code_depending_on_another_service_fails(tmp_path: Path) -> None:
    build = EDGE_BUILD.replace(
        'deps = ["//libs/bus"]', 'deps = ["//libs/bus", "//services/core:store"]'
    )
    assert tree(tmp_path, {"services/edge/BUILD.bazel": build}) == [
        "//services/edge:app depends on //services/core:store (via //services/edge:app)",
    ]


def test_reaching_another_service_through_a_lib_fails_both(tmp_path: Path) -> None:
    bus = BUS_BUILD.replace(
        'srcs = ["topology.py"]', 'srcs = ["topology.py"], deps = ["//services/core:store"]'
    )
    assert tree(tmp_path, {"libs/bus/BUILD.bazel": bus}) == [
        "//services/edge:app depends on //services/core:store (via //libs/bus:bus)",
        "//libs/bus:bus depends on //services/core:store (via //libs/bus:bus)",
    ]


def test_a_test_may_use_the_harness_but_not_the_code(tmp_path: Path) -> None:
    build = EDGE_BUILD.replace('"//services/core:harness"', '"//services/core:store"')
    assert tree(tmp_path, {"services/edge/BUILD.bazel": build}) == [
        "//services/edge:app_test depends on //services/core:store: a test may use another "
        "service's testonly harness, not its code",
    ]


def test_only_a_binary_may_be_another_services_data(tmp_path: Path) -> None:
    build = EDGE_BUILD.replace('data = ["//services/core"]', 'data = ["//services/core:store"]')
    assert tree(tmp_path, {"services/edge/BUILD.bazel": build}) == [
        "//services/edge:app_test has //services/core:store as data: only another service's "
        "binary may be, run as a process",
    ]
    production = EDGE_BUILD.replace(
        'deps = ["//libs/bus"]', 'data = ["//services/core"], deps = ["//libs/bus"]'
    )
    assert tree(tmp_path, {"services/edge/BUILD.bazel": production}) == [
        "//services/edge:app depends on //services/core:core (via //services/edge:app)",
    ]


def test_imports_of_another_service_in_production_code_fail(tmp_path: Path) -> None:
    problems = tree(tmp_path, {"services/edge/app.py": "from services.core.store import Store\n"})
    assert problems == ["services/edge/app.py imports services.core"]
    # The same import in a test file is the harness rule's business, not this one.
    assert tree(tmp_path, {"services/edge/app_test.py": "import services.core.store\n"}) == []


def test_a_public_service_package_fails(tmp_path: Path) -> None:
    build = CORE_BUILD.replace("//visibility:private", "//visibility:public")
    assert tree(tmp_path, {"services/core/BUILD.bazel": build}) == [
        "services/core/BUILD.bazel: default_visibility ['//visibility:public']; a service's "
        "targets are private unless one names who may use it",
    ]


def test_labels_and_imports_are_read_as_bazel_and_python_do() -> None:
    assert normalize(":x", "services/a") == "//services/a:x"
    assert normalize("//services/a", "libs/b") == "//services/a:a"
    assert normalize("//services/a:b", "libs/b") == "//services/a:b"
    assert normalize("README.md", "services/a") is None
    assert normalize("@pip//sanic", "services/a") is None
    assert imported_services("import services.a.b\nfrom services import c\nfrom . import d\n") == {
        "a",
        "c",
    }
