"""ws-edge's image under podman, in front of session-core's image.

Configured by environment variables (and the JWT public key mounted
read-only, as a secret would be), it must answer /health/live, become ready
once core serves, run as 65532 on a read-only root with a tmpfs /tmp, stop
cleanly on SIGTERM within its grace period, and have no shell.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.auth.testing import rsa_key, write_pem
from libs.testing.ports import free_port
from tests.images.images import (
    KEY_PATH,
    SESSION_CORE,
    WS_EDGE,
    Container,
    assert_no_shell,
    core_env,
    load,
    run,
    serving,
)

pytest_plugins = ("libs.testing.fixtures",)

GRACE_SECONDS = 6


def status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            code: int = response.status
            return code
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0


@pytest.fixture(scope="module")
def image_id() -> str:
    return load(WS_EDGE)


@pytest.fixture
def edge(
    image_id: str, pg_dsn: str, redis_url: str, amqp_url: str, tmp_path: Path
) -> Iterator[tuple[Container, int]]:
    """A live edge container in front of a serving core container."""
    core_port = free_port()
    key = tmp_path / "public.pem"
    write_pem(key, rsa_key())
    key.chmod(0o644)
    core = run(
        load(SESSION_CORE), core_env(pg_dsn, redis_url, amqp_url, core_port), mounts={key: KEY_PATH}
    )
    port = free_port()
    env = {
        "SYNCBRIDGE_EDGE_PORT": str(port),
        "SYNCBRIDGE_EDGE_CORE_TARGET": f"127.0.0.1:{core_port}",
        "SYNCBRIDGE_EDGE_AMQP_URL": amqp_url,
        "SYNCBRIDGE_EDGE_JWT_PUBLIC_KEY_PATH": KEY_PATH,
        "SYNCBRIDGE_EDGE_GRACE_SECONDS": str(GRACE_SECONDS),
        "SYNCBRIDGE_EDGE_DRAIN_SPREAD_SECONDS": "1",
    }
    edge = run(image_id, env, mounts={key: KEY_PATH})
    try:
        core.wait_until(lambda: serving(core_port))
        edge.wait_until(lambda: status(port, "/health/live") == 200)
        yield edge, port
    finally:
        edge.remove()
        core.remove()


def test_serves_as_non_root_on_read_only_root_and_stops_on_sigterm(
    edge: tuple[Container, int],
) -> None:
    container, port = edge
    assert status(port, "/health/live") == 200
    container.wait_until(lambda: status(port, "/health/ready") == 200)
    # The OpenAPI document is built from libs/protocol's schema files: the image carries them.
    assert status(port, "/v1/openapi.json") == 200
    assert container.ids() == {"Uid": ["65532"] * 4, "Gid": ["65532"] * 4}
    assert container.root_is_read_only()
    code, seconds = container.sigterm(timeout=GRACE_SECONDS + 30)
    logs = container.logs()
    assert code == "0", logs
    assert seconds < GRACE_SECONDS + 3, f"took {seconds:.1f}s"
    assert '"msg":"stopped"' in logs


def test_has_no_shell(image_id: str) -> None:
    assert_no_shell(image_id)
