"""ruff_test, mypy_test and buildifier_test: static checks as Bazel tests.

Each runs the locked tool over the files it is given, so `bazel test //...`
fails on a lint, format or type error, and reruns only when inputs change.
"""

load("@pip//:requirements.bzl", "requirement")

def ruff_test(name, srcs, config, **kwargs):
    """`ruff check` and `ruff format --check` over `srcs` with `config`."""
    native.py_test(
        name = name,
        srcs = ["//tools/bazel:lint_main.py"],
        main = "//tools/bazel:lint_main.py",
        args = ["ruff", "$(rootpath %s)" % config, "$(rootpath @pip//ruff:bin/ruff)"] +
               ["$(rootpaths %s)" % s for s in srcs],
        data = srcs + [config, "@pip//ruff:bin/ruff"],
        tags = ["lint"],
        **kwargs
    )

def mypy_test(name, srcs, deps, config, **kwargs):
    """`mypy` (settings from `config`) over `srcs`, importing from `deps`."""
    native.py_test(
        name = name,
        srcs = ["//tools/bazel:lint_main.py"],
        main = "//tools/bazel:lint_main.py",
        args = ["mypy", "$(rootpath %s)" % config] + ["$(rootpaths %s)" % s for s in srcs],
        data = srcs + [config],
        deps = deps + [requirement("mypy")],
        tags = ["lint"],
        **kwargs
    )

def buildifier_test(name, srcs, **kwargs):
    """`buildifier -mode=check -lint=warn` over BUILD, .bzl and WORKSPACE files."""
    native.py_test(
        name = name,
        srcs = ["//tools/bazel:lint_main.py"],
        main = "//tools/bazel:lint_main.py",
        args = ["buildifier", "-", "$(rootpath @go_tools//:buildifier)"] +
               ["$(rootpaths %s)" % s for s in srcs],
        data = srcs + ["@go_tools//:buildifier"],
        tags = ["lint"],
        **kwargs
    )

def lint_srcs(name = "lint_srcs"):
    """This package's .py, .bzl, .sh, .conf and BUILD files (its .md as `lint_docs`), for repo checks.

    Every package calls it once; the root BUILD.bazel lists the package in
    PACKAGES so //:ruff_test, //:mypy_test and //:buildifier_test read it.
    """
    native.filegroup(
        name = name,
        srcs = ["BUILD.bazel"] + native.glob(["*.py", "*.bzl", "*.sh", "*.conf"], allow_empty = True),
        visibility = ["//:__pkg__"],
    )

    # The package's Markdown, for //:config_docs_test (variables its docs name).
    native.filegroup(
        name = "lint_docs",
        srcs = native.glob(["*.md"], allow_empty = True),
        visibility = ["//:__pkg__"],
    )
