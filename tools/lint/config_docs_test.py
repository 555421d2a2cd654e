"""The repository's SYNCBRIDGE_* variables are defined, read, and tabled in the README.

Run as //:config_docs_test: its data is every package's sources plus the docs
and scripts, found here by walking the test's runfiles.
"""

from __future__ import annotations

import os
from pathlib import Path

from tools.lint import config_catalog


def repository_files() -> dict[str, str]:
    files = {}
    for directory, subdirectories, names in os.walk("."):
        subdirectories[:] = [d for d in subdirectories if d != "external"]
        for name in names:
            path = Path(directory, name)
            try:
                files[path.relative_to(".").as_posix()] = path.read_text()
            except (UnicodeDecodeError, IsADirectoryError):
                continue  # binaries (the test's own launcher): no variable names in them
    return files


def test_the_runfiles_hold_the_docs_and_the_services() -> None:
    files = repository_files()
    for path in (
        "README.md",
        "docs/architecture.md",
        "services/ws_edge/README.md",
        "services/session_core/relay_main.py",
        "tools/run-local",
    ):
        assert path in files, path


def test_every_variable_is_defined_read_and_in_the_readme() -> None:
    assert config_catalog.problems(repository_files()) == []
