"""What a config class accepts, as text: a process's `--help` and the README's table.

Both are rendered from the `setting()` declarations, so the list a user reads
is the list `load_config` enforces; nothing is written twice.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from libs.config.parsers import parser_for
from libs.config.settings import render, spec_of

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

HELP_FLAGS = frozenset({"-h", "--help"})


@dataclass(frozen=True)
class Entry:
    """One variable: its name, the field behind it, its default as text and what it means."""

    env: str
    field: str
    default: str
    kind: str
    help: str
    secret: bool


def entries(cls: type[DataclassInstance]) -> list[Entry]:
    """Every setting of `cls`, in declaration order."""
    hints = typing.get_type_hints(cls)
    found = []
    for field in dataclasses.fields(cls):
        spec = spec_of(cls, field)
        found.append(
            Entry(
                env=spec.env,
                field=field.name,
                # Defaults are code, not secrets: the default of a secret is shown
                # (a value someone sets is never rendered here).
                default=render(field.default),
                kind=parser_for(hints[field.name]).expected,
                help=spec.help,
                secret=spec.secret,
            )
        )
    return found


def wants_help(argv: Sequence[str]) -> bool:
    """True when the command line asks for help (the services take no other arguments)."""
    return any(arg in HELP_FLAGS for arg in argv)


def usage(cls: type[DataclassInstance], prog: str, summary: str) -> str:
    """The `--help` text: what the process is, then one paragraph per variable."""
    lines = [
        f"usage: {prog}",
        "",
        summary,
        "",
        "Configured only by environment variables; each unset one takes its default:",
        "",
    ]
    for entry in entries(cls):
        default = f'"{entry.default}"' if entry.default == "" else entry.default
        lines.append(f"  {entry.env}  (default: {default})")
        detail = entry.help or entry.kind
        lines.append(f"      {detail}{' (secret: never logged)' if entry.secret else ''}")
    return "\n".join(lines) + "\n"


def markdown_table(cls: type[DataclassInstance]) -> str:
    """A Markdown table of the variables of `cls`, for a README."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for entry in entries(cls):
        default = f"`{portable(entry.default)}`" if entry.default else "(empty)"
        meaning = entry.help or entry.kind
        if entry.secret:
            meaning += " (secret)"
        rows.append(f"| `{entry.env}` | {_cell(default)} | {_cell(meaning)} |")
    return "\n".join(rows) + "\n"


def portable(default: str) -> str:
    """A path under the home directory written as ~ (the dev JWT key), so that text
    generated from a default reads the same whoever generates it."""
    home = str(Path.home())
    if home != "/" and (default == home or default.startswith(home + "/")):
        return "~" + default[len(home) :]
    return default


def _cell(text: str) -> str:
    # A pipe would end the cell early.
    return text.replace("|", "\\|")
