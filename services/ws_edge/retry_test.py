"""Only idempotent calls are retried, only on outcomes where nothing is known to have happened."""

from __future__ import annotations

import pytest

from services.ws_edge import retry


@pytest.mark.parametrize(
    "method",
    ["GetSession", "ChangesSince", "ApplyUpdate", "Handoff", "EndSession", "UpdatePresence"],
)
def test_idempotent_calls_retry_on_unavailable(method: str) -> None:
    assert retry.should_retry(method, "UNAVAILABLE", attempt=1, max_attempts=3)
    assert retry.should_retry(method, "DEADLINE_EXCEEDED", attempt=2, max_attempts=3)
    assert not retry.should_retry(method, "UNAVAILABLE", attempt=3, max_attempts=3)


def test_creating_a_session_is_never_retried() -> None:
    key = retry.method_key("OpenSession", attach=False)
    assert not retry.should_retry(key, "UNAVAILABLE", attempt=1, max_attempts=3)
    attach = retry.method_key("OpenSession", attach=True)
    assert retry.should_retry(attach, "UNAVAILABLE", attempt=1, max_attempts=3)


@pytest.mark.parametrize(
    "status", ["NOT_FOUND", "FAILED_PRECONDITION", "INVALID_ARGUMENT", "INTERNAL", "UNKNOWN"]
)
def test_answers_are_not_retried(status: str) -> None:
    assert not retry.should_retry("GetSession", status, attempt=1, max_attempts=3)


def test_backoff_is_jittered_exponential_and_capped() -> None:
    assert retry.backoff_seconds(1, rand=lambda: 1.0) == pytest.approx(0.05)
    assert retry.backoff_seconds(3, rand=lambda: 1.0) == pytest.approx(0.2)
    assert retry.backoff_seconds(20, rand=lambda: 1.0) == pytest.approx(1.0)
    assert retry.backoff_seconds(3, rand=lambda: 0.0) == 0.0
