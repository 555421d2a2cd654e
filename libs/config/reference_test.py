"""--help text and the README table are rendered from the setting() declarations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from libs.config.reference import entries, markdown_table, usage, wants_help
from libs.config.settings import setting


@dataclass(frozen=True)
class DemoConfig:
    port: int = setting("SYNCBRIDGE_DEMO_PORT", 8080, min=0, max=65535, help="listen here")
    origins: tuple[str, ...] = setting("SYNCBRIDGE_DEMO_ORIGINS", ("a", "b"))
    key_path: str = setting("SYNCBRIDGE_DEMO_KEY_PATH", str(Path.home() / "k.pem"))
    token: str = setting("SYNCBRIDGE_DEMO_TOKEN", "", secret=True, help="a | b")
    debug: bool = setting("SYNCBRIDGE_DEMO_DEBUG", False)


def test_entries_follow_declaration_order_with_defaults_as_text() -> None:
    got = [(e.env, e.field, e.default, e.secret) for e in entries(DemoConfig)]
    assert got == [
        ("SYNCBRIDGE_DEMO_PORT", "port", "8080", False),
        ("SYNCBRIDGE_DEMO_ORIGINS", "origins", "a,b", False),
        ("SYNCBRIDGE_DEMO_KEY_PATH", "key_path", str(Path.home() / "k.pem"), False),
        ("SYNCBRIDGE_DEMO_TOKEN", "token", "", True),
        ("SYNCBRIDGE_DEMO_DEBUG", "debug", "false", False),
    ]


def test_usage_lists_each_variable_once_with_default_and_meaning() -> None:
    text = usage(DemoConfig, "demo", "A demo.")
    assert text.startswith("usage: demo\n\nA demo.\n")
    assert "  SYNCBRIDGE_DEMO_PORT  (default: 8080)\n      listen here\n" in text
    # No help given: the expected type says what to write.
    assert "  SYNCBRIDGE_DEMO_DEBUG  (default: false)\n      a boolean" in text
    assert '  SYNCBRIDGE_DEMO_TOKEN  (default: "")\n      a | b (secret: never logged)' in text
    for entry in entries(DemoConfig):
        assert text.count(entry.env) == 1


def test_markdown_table_escapes_pipes_and_writes_home_as_tilde() -> None:
    table = markdown_table(DemoConfig).splitlines()
    assert table[:2] == ["| variable | default | meaning |", "| --- | --- | --- |"]
    assert "| `SYNCBRIDGE_DEMO_KEY_PATH` | `~/k.pem` | a string |" in table
    assert "| `SYNCBRIDGE_DEMO_TOKEN` | (empty) | a \\| b (secret) |" in table
    assert len(table) == 2 + len(entries(DemoConfig))


def test_wants_help() -> None:
    assert wants_help(["--help"]) and wants_help(["-h"])
    assert not wants_help([]) and not wants_help(["--helper"])
