"""The demo page's file lookup serves the directory's own files and nothing else."""

from __future__ import annotations

from pathlib import Path

from services.ws_edge.demo import resolve


def test_serves_only_files_directly_in_the_directory(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<html></html>")
    (tmp_path / "client.mjs").write_text("export {};")
    (tmp_path / "secret.pem").write_text("key")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.mjs").write_text("")
    assert resolve(tmp_path, "") == tmp_path / "index.html"
    assert resolve(tmp_path, "client.mjs") == tmp_path / "client.mjs"
    for refused in ("secret.pem", "sub/x.mjs", "../index.html", ".hidden.mjs", "absent.mjs"):
        assert resolve(tmp_path, refused) is None, refused
