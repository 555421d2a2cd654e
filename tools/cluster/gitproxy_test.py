"""The proxy against real git on 127.0.0.1 (a free port): served host, refused hosts."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.testing.ports import free_port
from tools.cluster import certs, gitproxy

GIT = "/usr/bin/git"
HOST = "git.example.test"


def test_connect_lines() -> None:
    assert gitproxy.connect_target("CONNECT git.example.test:443 HTTP/1.1") == (HOST, 443)
    assert gitproxy.connect_target("CONNECT [2001:db8::1]:8443 HTTP/1.1") == ("2001:db8::1", 8443)
    assert gitproxy.connect_target("GET http://x/ HTTP/1.1") is None
    assert gitproxy.connect_target("CONNECT nohost HTTP/1.1") is None


def test_only_fetches_are_served() -> None:
    assert gitproxy.allowed_path("/o/r.git/info/refs", "service=git-upload-pack")
    assert gitproxy.allowed_path("/o/r.git/git-upload-pack", "")
    assert not gitproxy.allowed_path("/o/r.git/info/refs", "service=git-receive-pack")
    assert not gitproxy.allowed_path("/o/r.git/git-receive-pack", "")
    assert not gitproxy.allowed_path("/o/r.git/HEAD", "")


def test_cgi_output_parses() -> None:
    status, headers, body = gitproxy.parse_cgi(b"Status: 404 Not Found\r\nX-A: b\r\n\r\nbody")
    assert (status, headers, body) == (404, [("X-A", "b")], b"body")
    assert gitproxy.parse_cgi(b"Content-Type: t\n\nx")[0] == 200


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    pki = certs.make(tmp_path / "pki", "127.0.0.1", "10.96.0.1", HOST)
    work = tmp_path / "work"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(work))
    (work / "file").write_text("content\n")
    git(work, "add", "file")
    git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "one")
    bare = tmp_path / "git" / "org" / "repo.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(work), str(bare))
    port = free_port()
    log = tmp_path / "connects.jsonl"
    server = gitproxy.Proxy(
        port, HOST, gitproxy.tls_context(pki.git.cert, pki.git.key), tmp_path / "git", log
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port, pki.ca.cert, log
    server.shutdown()
    server.server_close()


def git(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GIT, *args], cwd=cwd, capture_output=True, text=True, check=False, env=env, timeout=60
    )


def test_clones_the_served_host_and_refuses_others(
    proxy: tuple[int, Path, Path], tmp_path: Path
) -> None:
    port, ca, log = proxy
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "https_proxy": f"http://127.0.0.1:{port}",
    }
    trusted = env | {"GIT_SSL_CAINFO": str(ca)}
    clone = git(tmp_path, "clone", "--quiet", f"https://{HOST}/org/repo.git", "c", env=trusted)
    assert clone.returncode == 0, clone.stderr
    assert (tmp_path / "c" / "file").read_text() == "content\n"
    # Another host: refused at CONNECT, before any TLS.
    other = git(tmp_path, "ls-remote", "https://github.com/org/repo.git", env=trusted)
    assert other.returncode != 0 and "403" in other.stderr
    # The served host without trusting the cluster's CA: TLS fails.
    untrusted = git(tmp_path, "ls-remote", f"https://{HOST}/org/repo.git", env=env)
    assert untrusted.returncode != 0
    # A push is not a fetch.
    push = git(tmp_path / "c", "push", "--quiet", "origin", "HEAD:refs/heads/x", env=trusted)
    assert push.returncode != 0
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert ("github.com", False) in [(s["host"], s["served"]) for s in seen]
    assert any(s["host"] == HOST and s["served"] for s in seen)
