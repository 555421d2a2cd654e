"""lock_audit against the real package index, on fixture locks (testdata/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.testing import ports
from tools.lock_audit import lock_audit

HERE = Path(__file__).resolve().parent


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = lock_audit.main([*args])
    return code, capsys.readouterr().out


def fixture(name: str) -> str:
    return str(HERE / "testdata" / name)


def test_pip_names_its_index() -> None:
    api = lock_audit.default_api()
    assert api.startswith("https://") and api.endswith("/pypi")


def test_a_known_vulnerable_pin_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--lock", fixture("vulnerable.txt"))
    assert code == lock_audit.VULNERABLE, out
    assert "VULNERABLE  pycrypto==2.6.1  PYSEC-2017-94 (CVE-2013-7459" in out
    assert out.count("CVE-2013-7459") == 1  # its GHSA twin is the same advisory
    assert "1 pins: 1 audited" in out


def test_a_clean_pin_passes_even_when_strict(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--strict", "--lock", fixture("clean.txt"))
    assert code == lock_audit.OK, out
    assert "0 vulnerable, 0 not audited, 0 without an answer" in out


def test_an_older_pin_is_audited_or_said_to_be_not(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--strict", "--lock", fixture("old.txt"))
    if code == lock_audit.VULNERABLE:  # an index that serves each release's record
        assert "CVE-2018-18074" in out
    else:  # one that serves the project's record only: never a silent pass
        assert code == lock_audit.UNAUDITED, out
        assert "NOT AUDITED requests==2.19.0" in out
        assert "only for its latest release" in out
        code, out = run(capsys, "--lock", fixture("old.txt"))
        assert code == lock_audit.OK and "1 not audited" in out


def test_a_pin_the_index_does_not_know_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--lock", fixture("unknown.txt"))
    assert code == lock_audit.NO_ANSWER, out
    assert "NO ANSWER   syncbridge-no-such-project-4f1c==1.0.0" in out


def test_an_unreachable_index_fails(capsys: pytest.CaptureFixture[str]) -> None:
    # A loopback port nothing listens on: the index gives no answer at all.
    api = f"http://{ports.HOST}:{ports.free_port()}/pypi"
    code, out = run(capsys, "--api", api, "--lock", fixture("clean.txt"))
    assert code == lock_audit.NO_ANSWER, out


def test_bad_usage_and_a_bad_lock_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--bogus")[0] == lock_audit.USAGE
    assert run(capsys, "--lock", str(HERE / "no-such-lock.txt"))[0] == lock_audit.USAGE
    assert run(capsys, "--api", "file:///etc", "--lock", fixture("clean.txt"))[0] == 2
