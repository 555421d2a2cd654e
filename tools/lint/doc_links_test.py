"""The pointer check against a small tree with one broken pointer of each kind."""

from __future__ import annotations

from pathlib import Path

from tools.lint.doc_links import check, markdown_links, see_pointers


def write(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def test_links_resolve_relative_to_the_readme(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "README.md": "[a](libs/a/README.md), [folder](libs/a), [b](libs/b/README.md#top)",
            "libs/a/README.md": "[up](../../README.md) [web](https://example.org) [me](#x)",
            "bazel-out/README.md": "[gone](nowhere.md)",  # Bazel's output links are not read
        },
    )
    assert check(root) == ["README.md: link to libs/b/README.md: no such file"]


def test_see_pointers_in_code_and_workspace(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "WORKSPACE": "# fetches (see tools/bazel/README.md).\n",
            "libs/proto/session.proto": "",
            "services/core/store.py": "# Batches (see batching.py); calls (see session.proto).\n",
            "services/core/BUILD.bazel": "# see services/core/store.py\n",
        },
    )
    assert check(root) == [
        "WORKSPACE: see tools/bazel/README.md: no such file",
        "services/core/store.py: see batching.py: no such file",
    ]
    write(root, {"tools/bazel/README.md": "", "libs/batching/batching.py": ""})
    assert check(root) == []


def test_what_counts_as_a_link_or_a_pointer() -> None:
    text = '[x](a.md) ![img](i.png) `[code](not.md)` [t](b.md "title") [m](mailto:a@b)'
    assert markdown_links(text) == ["a.md", "i.png", "b.md"]
    assert markdown_links("```\n[x](inside.md)\n```\n[y](<spaced.md>)") == ["spaced.md"]
    assert see_pointers("See `libs/x.py`, see the docs, (see y.bzl)") == ["libs/x.py", "y.bzl"]
