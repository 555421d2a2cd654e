"""schemathesis, as a third party would run it, against a live edge's /v1/openapi.json.

A real core, PostgreSQL, Redis and RabbitMQ behind one edge (edge_testing's
stack), a valid token for every request, every check schemathesis has
(`--checks all`: no 5xx, documented statuses, content types and bodies,
invalid input refused, valid input accepted, auth not ignored, 405 with
`Allow`…), a bounded number of examples per operation and a fixed seed, so a
failure reproduces and the run stays within the test's size on 2 cores.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from services.ws_edge.edge_testing import Stack, running_stack

pytest_plugins = ("libs.testing.fixtures",)
pytestmark = pytest.mark.asyncio

# Per operation and phase; with the coverage phase's own cases this is
# about 650 test cases (seed 15), 80-160 s on a loaded 2-core machine.
MAX_EXAMPLES = 20
SEED = 15


@pytest_asyncio.fixture
async def stack(pg_dsn: str, redis_url: str, amqp_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(pg_dsn, redis_url, amqp_url, tmp_path) as built:
        yield built


def _reports(tmp_path: Path) -> Path:
    """Where schemathesis's report and output go: Bazel keeps them as test outputs."""
    outputs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
    return Path(outputs) if outputs else tmp_path


async def test_schemathesis_finds_nothing(stack: Stack, tmp_path: Path) -> None:
    host, port = stack.http()
    origin = f"http://{host}:{port}"
    # The pip repository installs no console scripts: the CLI is run as a module,
    # by this interpreter, with this test's import path.
    environment = {
        "PATH": "/bin:/usr/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{origin}/v1/openapi.json",
        # The document names the staging server; the requests go to this edge.
        "--url",
        origin,
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--header",
        f"Authorization: Bearer {stack.token('schemathesis', lifetime=3600)}",
        "--report",
        "junit",
        "--report-dir",
        str(_reports(tmp_path)),
        "--no-color",
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        env=environment,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    # Kept beside the JUnit report: what ran, per phase, even when it passes.
    (_reports(tmp_path) / "schemathesis.txt").write_text(text)
    assert process.returncode == 0, text[-20000:]
    # A run that tested nothing would also exit 0.
    assert "No issues found" in text, text[-20000:]
