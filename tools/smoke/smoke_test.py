"""The smoke test against a real stack on loopback, and the failures it must name."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import pytest_asyncio

from libs.auth import testing
from services.session_core.harness import core_config, public_key_path, running_core, signing_key
from tools.smoke import smoke

pytest_plugins = ("libs.testing.fixtures",)


@dataclass
class Stack:
    url: str
    api: str
    key: testing.PrivateKey

    def token(self, user: str = "smoke-user") -> str:
        return testing.sign(testing.claims(600, sub=user), self.key, "ES256")


def edge_binary() -> str:
    return str(Path(os.environ["WS_EDGE_BIN"]).resolve())


def read_port(port_file: Path) -> int | None:
    """The port the edge wrote once it listens, or None before that."""
    return int(port_file.read_text()) if port_file.exists() else None


@pytest_asyncio.fixture
async def stack(pg_dsn: str, redis_url: str, amqp_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """session-core in this process and one real //services/ws_edge process."""
    # Core verifies the tokens the edge forwards: both trust the harness's key.
    key, key_path = signing_key(), public_key_path()
    async with running_core(core_config(pg_dsn, redis_url, amqp_url)) as core:
        port_file = tmp_path / "edge.port"
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "SYNCBRIDGE_EDGE_PORT": "0",
            "SYNCBRIDGE_EDGE_PORT_FILE": str(port_file),
            "SYNCBRIDGE_EDGE_CORE_TARGET": f"127.0.0.1:{core.port}",
            "SYNCBRIDGE_EDGE_AMQP_URL": amqp_url,
            "SYNCBRIDGE_EDGE_JWT_PUBLIC_KEY_PATH": key_path,
            "SYNCBRIDGE_EDGE_JWT_ISSUER": testing.ISSUER,
            "SYNCBRIDGE_EDGE_JWT_AUDIENCE": testing.AUDIENCE,
            "SYNCBRIDGE_EDGE_JWT_ALGORITHMS": "ES256",
            "SYNCBRIDGE_EDGE_LOG_LEVEL": "WARNING",
        }
        log = (tmp_path / "edge.log").open("ab")
        edge = await asyncio.create_subprocess_exec(edge_binary(), env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 30
            while (port := await asyncio.to_thread(read_port, port_file)) is None:
                assert edge.returncode is None, "ws-edge exited; see edge.log in the test dir"
                assert time.monotonic() < deadline, "ws-edge did not start"
                await asyncio.sleep(0.05)
            api = f"http://127.0.0.1:{port}"
            # Ready only once the edge sees core SERVING: wait like a rollout would.
            while (
                await asyncio.to_thread(smoke.Smoke("", api, "", 2).http, "GET", "/health/ready")
            )[0] != 200:
                assert time.monotonic() < deadline, "ws-edge never became ready"
                await asyncio.sleep(0.1)
            yield Stack(f"ws://127.0.0.1:{port}/session/connect", api, key)
        finally:
            with contextlib.suppress(ProcessLookupError):
                edge.send_signal(signal.SIGKILL)
            await edge.wait()
            log.close()


@pytest.mark.asyncio
async def test_every_step_passes_against_a_healthy_stack(stack: Stack) -> None:
    out = io.StringIO()
    failed = await smoke.run_steps(smoke.Smoke(stack.url, stack.api, stack.token(), 10), out)
    assert failed is None, out.getvalue()
    for step in ("health-live", "health-ready", "sync", "resume", "handoff", "cleanup"):
        assert f"smoke: ok   {step}" in out.getvalue()


@pytest.mark.asyncio
async def test_a_token_the_edge_does_not_trust_fails_at_sync(stack: Stack) -> None:
    stranger = testing.sign(testing.claims(600, sub="smoke-user"), testing.ec_key(), "ES256")
    out = io.StringIO()
    failed = await smoke.run_steps(smoke.Smoke(stack.url, stack.api, stranger, 3), out)
    assert failed == "sync", out.getvalue()
    assert stranger not in out.getvalue()  # the token never reaches the output


class Health(BaseHTTPRequestHandler):
    """An API whose /health/ready says what `ready` holds."""

    ready: tuple[int, dict[str, str]] = (503, {"status": "unhealthy"})

    def do_GET(self) -> None:
        if self.path == "/health/live":
            status, body = 200, {"status": "alive", "uptime": "5s"}
        else:
            status, body = type(self).ready
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def unready_api() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_exits_non_zero_naming_the_failed_step(
    unready_api: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(smoke.TOKEN_ENV, "not-a-real-token")
    code = smoke.main(["--url", "ws://127.0.0.1:9/session/connect", "--api", unready_api])
    out = capsys.readouterr().out
    assert code == 1
    assert "smoke: ok   health-live" in out
    assert "smoke: FAILED at step health-ready: /health/ready answered 503" in out
    assert "not-a-real-token" not in out


def test_a_wrong_health_shape_is_a_failure(
    unready_api: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Health, "ready", (200, {"status": "healthy", "timestamp": "yesterday"}))
    monkeypatch.setenv(smoke.TOKEN_ENV, "t")
    assert smoke.main(["--url", "ws://127.0.0.1:9/x", "--api", unready_api]) == 1
    assert "timestamp 'yesterday' is not ISO 8601" in capsys.readouterr().out


def test_no_token_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(smoke.TOKEN_ENV, raising=False)
    assert smoke.main(["--url", "ws://127.0.0.1:9/x", "--api", "http://127.0.0.1:9"]) == 2
