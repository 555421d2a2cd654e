"""session-core's image under podman, configured only by environment variables.

It must answer the gRPC health check, run as 65532 on a read-only root with
a tmpfs /tmp, stop cleanly on SIGTERM within its grace period, and have no
shell.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.auth.testing import rsa_key, write_pem
from libs.testing.ports import free_port
from tests.images.images import (
    KEY_PATH,
    SESSION_CORE,
    Container,
    assert_no_shell,
    core_env,
    load,
    run,
    serving,
)

pytest_plugins = ("libs.testing.fixtures",)

GRACE_SECONDS = 5


@pytest.fixture(scope="module")
def image_id() -> str:
    return load(SESSION_CORE)


@pytest.fixture
def core(
    image_id: str, pg_dsn: str, redis_url: str, amqp_url: str, tmp_path: Path
) -> Iterator[tuple[Container, int]]:
    """A serving container, against this test's own database, Redis db and vhost."""
    port = free_port()
    key = tmp_path / "public.pem"  # core refuses to start without the token issuer's key
    write_pem(key, rsa_key())
    key.chmod(0o644)
    env = core_env(pg_dsn, redis_url, amqp_url, port, GRACE_SECONDS)
    container = run(image_id, env, mounts={key: KEY_PATH})
    try:
        container.wait_until(lambda: serving(port))
        yield container, port
    finally:
        container.remove()


def test_serves_as_non_root_on_read_only_root_and_stops_on_sigterm(
    core: tuple[Container, int],
) -> None:
    container, port = core
    assert serving(port)
    assert container.ids() == {"Uid": ["65532"] * 4, "Gid": ["65532"] * 4}
    assert container.root_is_read_only()
    code, seconds = container.sigterm(timeout=GRACE_SECONDS + 30)
    logs = container.logs()
    assert code == "0", logs
    assert seconds < GRACE_SECONDS + 3, f"took {seconds:.1f}s"
    assert '"msg":"stopped"' in logs


def test_has_no_shell(image_id: str) -> None:
    assert_no_shell(image_id)
