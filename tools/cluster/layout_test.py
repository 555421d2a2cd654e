from __future__ import annotations

from dataclasses import astuple
from pathlib import Path

from tools.cluster.layout import GIT_HOST, Layout, Ports


def test_one_namespace_per_state_directory(tmp_path: Path) -> None:
    a, b = Layout(tmp_path / "a"), Layout(tmp_path / "b")
    assert a.netns == Layout(tmp_path / "a").netns
    assert a.netns != b.netns
    assert len(a.netns) <= 15 + 5  # ip netns names are files; keep them short


def test_everything_lives_under_the_state_directory(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    for path in (layout.pki, layout.logs, layout.kubeconfig, layout.repository, layout.tls_data):
        assert tmp_path in path.parents
    assert layout.repository.relative_to(layout.git_root).as_posix().endswith(".git")
    assert "." in GIT_HOST


def test_ports_are_distinct_and_unprivileged() -> None:
    ports = astuple(Ports())
    assert len(set(ports)) == len(ports)
    assert all(1024 < port < 65536 for port in ports)
