"""Only idempotent calls are retried, only on outcomes where nothing is known to have happened."""

from __future__ import annotations

import pytest

from libs.core_client import retry


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


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_budget_is_one_deadline_across_attempts() -> None:
    clock = Clock()
    budget = retry.Budget(5.0, clock)
    assert budget.remaining() == pytest.approx(5.0)
    clock.now += 3.0  # the first attempt used 3 s
    assert budget.remaining() == pytest.approx(2.0)  # the next one gets what is left
    assert budget.allows(1.0)
    assert not budget.allows(2.0)  # nothing would be left after this backoff
    clock.now += 10.0
    assert budget.remaining() == 0.0 and not budget.allows(0.0)


def test_a_retried_call_never_exceeds_its_deadline_in_total() -> None:
    # Every attempt times out, using all the time it is given (the worst case); the
    # call as a whole stays within one deadline however many attempts are allowed.
    clock = Clock()
    deadline, started = 5.0, clock.now
    budget = retry.Budget(deadline, clock)
    attempts = 0
    while True:
        attempts += 1
        clock.now += min(budget.remaining(), 2.0)  # an attempt: timed out, or unavailable
        delay = retry.backoff_seconds(attempts, rand=lambda: 1.0)
        if not (
            retry.should_retry("GetSession", "UNAVAILABLE", attempts, max_attempts=10)
            and budget.allows(delay)
        ):
            break
        clock.now += delay
    assert clock.now - started <= deadline + 1e-9
    assert attempts == 3  # 2 s + 0.05 + 2 s + 0.1 + the 0.85 s left
