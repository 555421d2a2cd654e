"""pytest_test: a py_test that runs pytest over its srcs (aspect_rules_py's name)."""

load("@pip//:requirements.bzl", "requirement")

def pytest_test(name, srcs, deps = [], args = [], **kwargs):
    """A py_test whose main is tools/bazel/pytest_main.py, collecting `srcs`.

    Args:
      name: target name.
      srcs: test files (and helpers) for pytest to collect.
      deps: libraries under test; pytest itself is added.
      args: extra pytest arguments.
      **kwargs: passed to py_test (data, tags, size, timeout, ...).
    """
    native.py_test(
        name = name,
        srcs = srcs + ["//tools/bazel:pytest_main.py"],
        main = "//tools/bazel:pytest_main.py",
        deps = deps + [requirement("pytest")],
        args = args + ["$(rootpath %s)" % src for src in srcs],
        python_version = "PY3",
        **kwargs
    )
