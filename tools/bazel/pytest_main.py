"""Entry point of every pytest_test: runs pytest on the files given as args.

"No tests collected" (exit 5) fails the target: a test file that tests
nothing is a defect, not a pass.
"""

import importlib.util
import os
import sys

import pytest


def main() -> int:
    args = ["-p", "no:cacheprovider", "--import-mode=importlib", "-q", "-ra"]
    if importlib.util.find_spec("pytest_asyncio") is not None:
        # One event loop per test unless a test asks otherwise; silences the
        # plugin's "loop scope unset" warning in every async suite.
        args += ["-o", "asyncio_default_fixture_loop_scope=function"]
    xml = os.environ.get("XML_OUTPUT_FILE")
    if xml:
        args.append(f"--junitxml={xml}")
    return pytest.main(args + sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
