"""servers.py without running servers: configuration, rendered files, wire format, errors."""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.servers import servers


def test_defaults_are_the_standard_loopback_ports() -> None:
    config = servers.Config.from_env({})
    assert config.state_dir == Path("/var/tmp/syncbridge")  # noqa: S108 - the documented default
    assert (config.redis_port, config.postgres_port) == (6379, 5432)
    assert (config.amqp_port, config.rabbitmq_management_port) == (5672, 15672)
    assert config.redis_url == "redis://127.0.0.1:6379/0"
    assert config.postgres_dsn == "postgresql://syncbridge@127.0.0.1:5432/syncbridge"
    assert config.amqp_url == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert config.rabbitmq_management_url == "http://127.0.0.1:15672"


def test_environment_overrides_every_port_and_the_state_dir() -> None:
    config = servers.Config.from_env(
        {
            "SYNCBRIDGE_STATE_DIR": "/srv/sb",
            "SYNCBRIDGE_REDIS_PORT": "16379",
            "SYNCBRIDGE_POSTGRES_PORT": "15432",
            "SYNCBRIDGE_AMQP_PORT": "15673",
            "SYNCBRIDGE_RABBITMQ_MANAGEMENT_PORT": "25673",
        }
    )
    assert config == servers.Config(Path("/srv/sb"), 16379, 15432, 15673, 25673, 35673)
    assert config.rabbitmq_node == "syncbridge@localhost"


def test_a_throwaway_set_differs_in_every_port_and_node_name(tmp_path: Path) -> None:
    config = servers.Config.throwaway(tmp_path)
    ports = [value for value in vars(config).values() if isinstance(value, int)]
    shared = [value for value in vars(servers.Config()).values() if isinstance(value, int)]
    assert len(set(ports + shared)) == 10
    assert config.rabbitmq_node != servers.RABBITMQ_NODE
    assert servers.Config.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SYNCBRIDGE_REDIS_PORT", "redis"),
        ("SYNCBRIDGE_POSTGRES_PORT", "0"),
        ("SYNCBRIDGE_RABBITMQ_MANAGEMENT_PORT", "70000"),
        ("SYNCBRIDGE_AMQP_PORT", "50000"),  # its +20000 distribution port would not fit
        ("SYNCBRIDGE_STATE_DIR", "relative/dir"),
    ],
)
def test_bad_settings_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(servers.ServerError, match=variable):
        servers.Config.from_env({variable: value})


def test_postgres_trusts_loopback_tcp_only() -> None:
    rules = [line.split() for line in servers._Postgres.hba().splitlines() if line[:1] != "#"]
    assert [rule for rule in rules if rule] == [["host", "all", "all", "127.0.0.1/32", "trust"]]
    settings = servers._Postgres(servers.Config(Path("/s"), postgres_port=15432)).settings()
    assert "listen_addresses = '127.0.0.1'" in settings
    assert "port = 15432" in settings
    assert "unix_socket_directories = '/s/postgres/run'" in settings


def test_rabbitmq_listens_on_loopback_with_state_in_the_state_dir() -> None:
    rabbitmq = servers._RabbitMQ(
        servers.Config(Path("/s"), amqp_port=5673, rabbitmq_dist_port=25673)
    )
    assert "listeners.tcp.1 = 127.0.0.1:5673" in rabbitmq.conf()
    assert "management.tcp.ip = 127.0.0.1" in rabbitmq.conf()
    env = rabbitmq.env()
    assert env["RABBITMQ_NODENAME"] == "syncbridge@localhost"
    assert env["RABBITMQ_DIST_PORT"] == "25673"
    assert env["ERL_EPMD_ADDRESS"] == "127.0.0.1"
    paths = [value for key, value in env.items() if key.endswith(("_FILE", "_BASE", "LOGS"))]
    assert paths and all(path.startswith("/s/rabbitmq/") for path in paths)


def test_resp_commands_and_replies() -> None:
    assert servers._resp_encode(["SELECT", 7]) == b"*2\r\n$6\r\nSELECT\r\n$1\r\n7\r\n"
    replies = io.BytesIO(b"+OK\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n$1\r\na\r\n:1\r\n")
    assert [servers._resp_read(replies) for _ in range(5)] == [b"OK", 42, b"hello", None, [b"a", 1]]
    with pytest.raises(servers.RedisReplyError, match="LOADING"):
        servers._resp_read(io.BytesIO(b"-LOADING Redis is loading\r\n"))


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_port_held_by_another_process_is_a_clear_error(tmp_path: Path, held_port: int) -> None:
    config = servers.Config(state_dir=tmp_path, redis_port=held_port)
    with pytest.raises(servers.ServerError, match=f"127.0.0.1:{held_port} .* held by another"):
        servers.start(["redis"], config=config)
    assert not (tmp_path / "redis").exists()  # nothing was launched


def test_nothing_listening_means_not_running(tmp_path: Path) -> None:
    config = servers.Config.throwaway(tmp_path)
    assert not any(servers.is_running(name, config=config) for name in servers.NAMES)
    assert servers.status(config=config) == dict.fromkeys(servers.NAMES, "stopped")
    assert servers.stop(config=config) == dict.fromkeys(servers.NAMES, "not running")


def test_cli_rejects_unknown_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert servers.main(["start", "mysql"]) == 1
    assert "unknown server 'mysql'" in capsys.readouterr().err


def _python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/bin:/usr/bin", "PYTHONPATH": str(root), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_importing_reads_no_configuration(tmp_path: Path) -> None:
    """A bad variable fails where the configuration is asked for, not at import."""
    done = _python(
        "from tools.servers import servers\n"
        "try:\n"
        "    servers.default_config()\n"
        "except servers.ServerError as error:\n"
        "    print('refused:', error)\n",
        {"SYNCBRIDGE_REDIS_PORT": "nope"},
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "refused: SYNCBRIDGE_REDIS_PORT must be a TCP port" in done.stdout


def test_the_cli_names_a_bad_variable(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("SYNCBRIDGE_STATE_DIR", "relative")
    assert servers.main(["status"]) == 1
    assert "SYNCBRIDGE_STATE_DIR must be an absolute path" in capsys.readouterr().err


def test_the_script_runs_without_bazel_from_anywhere(tmp_path: Path) -> None:
    script = Path(servers.__file__).resolve()
    done = subprocess.run(
        [sys.executable, str(script), "--help"],
        env={"PATH": "/bin:/usr/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "start" in done.stdout and "rabbitmq" in done.stdout


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "X"  # reaped: gone


def _until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_signal_tree_reaches_the_children_of_a_process_too() -> None:
    # A process whose child sleeps: like a postmaster and its backends.
    sleeper = f"import subprocess; subprocess.run([{sys.executable!r}, '-c', 'input()'])"
    parent = subprocess.Popen([sys.executable, "-c", sleeper], stdin=subprocess.PIPE)
    try:
        assert _until(lambda: len(servers.process_tree(parent.pid)) == 2)
        reached = servers.signal_tree(parent.pid, signal.SIGKILL)
        assert len(reached) == 2 and reached[0] == parent.pid
        assert parent.wait(timeout=10) == -signal.SIGKILL
        assert _until(lambda: _state(reached[1]) in ("Z", "X")), "the child outlived SIGKILL"
    finally:
        if parent.poll() is None:
            parent.kill()
