"""The isolation scanner reports every fixture violation and nothing isolated; the allowlist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.lint import isolation

TESTDATA = Path(__file__).resolve().parent / "testdata"
_EXPECT = re.compile(r"expect: ([a-z-]+)")


def expected(text: str) -> set[tuple[int, str]]:
    return {
        (number, match.group(1))
        for number, line in enumerate(text.splitlines(), 1)
        for match in _EXPECT.finditer(line)
    }


# Fixtures are stored as .txt so that no tool takes them for code; scanned under their own name.
@pytest.mark.parametrize("name", ["violations_test.py", "violations.BUILD", "violations.bazelrc"])
def test_every_marked_violation_is_reported_and_nothing_else(name: str) -> None:
    text = (TESTDATA / f"{name}.txt").read_text()
    found = isolation.scan_file(f"tools/lint/testdata/{name}", text)
    assert {(f.line, f.rule) for f in found} == expected(text)
    assert expected(text)  # the fixture does violate


def test_isolated_code_is_not_reported() -> None:
    text = (TESTDATA / "isolated_test.py.txt").read_text()
    assert isolation.scan_file("tools/lint/testdata/isolated_test.py", text) == []


def test_only_test_code_is_scanned() -> None:
    text = 'CORE = "127.0.0.1:50051"\n'
    assert isolation.scan_file("services/x/server.py", text) == []
    for path in ("services/x/a_test.py", "tests/e2e/e2e_testing.py", "libs/testing/fixtures.py"):
        assert [f.rule for f in isolation.scan_file(path, text)] == ["fixed-port"]


def test_allowlist_entries_allow_by_line_or_file_and_stale_ones_are_reported() -> None:
    found = isolation.scan_file("a_test.py", 'A = "127.0.0.1:1"\nB = "/var/tmp/x"\n')
    by_line = isolation.Allowed("a_test.py", "127.0.0.1:1", "why")
    stale = isolation.Allowed("a_test.py", "nowhere", "why")
    left, unused = isolation.apply_allowlist(found, [by_line, stale], ["a_test.py"])
    assert [f.rule for f in left] == ["fixed-path"] and unused == [stale]
    whole = isolation.Allowed("a_test.py", "", "why")
    assert isolation.apply_allowlist(found, [whole], ["a_test.py"]) == ([], [])
    # An entry for a file that is not scanned any more is stale too.
    gone = isolation.Allowed("gone_test.py", "", "why")
    assert isolation.apply_allowlist([], [gone], ["a_test.py"]) == ([], [gone])


def test_an_allowlist_entry_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="reason"):
        isolation.load_allowlist('[[allow]]\npath = "a_test.py"\ncontains = "x"\n')


def test_main_fails_on_a_violation_and_passes_when_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test_file = tmp_path / "a_test.py"
    test_file.write_text('CORE = "127.0.0.1:50051"\n')
    allowlist = tmp_path / "allow.toml"
    allowlist.write_text("")
    assert isolation.main([str(allowlist), str(test_file)]) == 1
    assert "127.0.0.1:50051: a fixed address" in capsys.readouterr().out
    allowlist.write_text(f'[[allow]]\npath = "{test_file}"\nreason = "a fixture"\n')
    assert isolation.main([str(allowlist), str(test_file)]) == 0
