"""Proves targets import only what their BUILD deps provide.

This target depends on pytest alone. Packages that are installed on the
machine (pip or apt) but not named in deps must not be importable, else a
forgotten BUILD dependency would pass here and break in the image.
"""

import importlib
import os
import sys

import pytest


@pytest.mark.parametrize("module", ["sanic", "grpc", "redis", "asyncpg", "yaml", "cryptography"])
def test_undeclared_package_is_not_importable(module: str) -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(module)


def test_no_machine_site_packages_on_path() -> None:
    runfiles = os.environ["RUNFILES_DIR"]
    leaks = [
        path
        for path in sys.path
        if path.endswith(("site-packages", "dist-packages")) and not path.startswith(runfiles)
    ]
    assert leaks == []


def test_runs_debian_python() -> None:
    assert sys.version_info[:2] == (3, 11)
    assert sys.flags.no_site == 1
