"""README.md documents exactly the error and close codes the edge uses."""

from __future__ import annotations

import re
from pathlib import Path

from libs.protocol.codes import CLOSE_MEANINGS, ERROR_MEANINGS, CloseCode, ErrorCode

README = (Path(__file__).parent / "README.md").read_text()


def table_column(heading: str) -> list[str]:
    """First-column values (between backticks) of the table under `heading`."""
    section = README.split(heading, 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        match = re.match(r"\|\s*`([^`]+)`", line)
        if match:
            rows.append(match.group(1))
    return rows


def test_every_code_has_a_meaning() -> None:
    assert set(ERROR_MEANINGS) == set(ErrorCode)
    assert set(CLOSE_MEANINGS) == set(CloseCode)


def test_readme_error_table_matches() -> None:
    assert table_column("### Error codes") == [code.value for code in ErrorCode]


def test_readme_close_table_matches() -> None:
    assert table_column("### Close codes") == [str(int(code)) for code in CloseCode]
