"""Owned tasks: kept until done, their failures logged, cancelled and awaited on close."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from libs.tasks.owned import OwnedTasks

pytestmark = pytest.mark.asyncio

log = logging.getLogger("owned_test")


async def test_a_failing_task_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = OwnedTasks(log, "tester")

    async def boom() -> None:
        raise RuntimeError("it broke")

    caplog.set_level(logging.ERROR, logger="owned_test")
    task = tasks.spawn(boom(), name="boom")
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)  # done callbacks run on the next loop turn
    [record] = [r for r in caplog.records if r.name == "owned_test"]
    assert record.getMessage() == "background task failed"
    assert record.__dict__["owner"] == "tester"
    assert record.__dict__["task"] == "boom"
    assert "it broke" in record.__dict__["error"]
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert len(tasks) == 0


async def test_success_and_cancellation_are_not_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = OwnedTasks(log, "tester")
    caplog.set_level(logging.DEBUG, logger="owned_test")
    done = tasks.spawn(asyncio.sleep(0, result=7))
    sleeper = tasks.spawn(asyncio.sleep(60))
    assert await done == 7
    await tasks.aclose()
    assert sleeper.cancelled()
    assert not [r for r in caplog.records if r.name == "owned_test"]
    assert len(tasks) == 0


async def test_a_task_is_kept_alive_while_it_runs() -> None:
    tasks = OwnedTasks(log, "tester")
    finished = asyncio.Event()

    async def work() -> None:
        await asyncio.sleep(0.01)
        finished.set()

    tasks.spawn(work())  # no reference kept by the caller
    gc.collect()
    assert len(tasks) == 1
    await asyncio.wait_for(finished.wait(), 5)


async def test_wait_gives_up_at_its_timeout() -> None:
    tasks = OwnedTasks(log, "tester")
    slow = tasks.spawn(asyncio.sleep(60))
    await tasks.wait(0.01)
    assert not slow.done()
    tasks.cancel()
    await tasks.wait()
    assert slow.cancelled()


async def test_cancel_spares_the_task_named_to_keep() -> None:
    tasks = OwnedTasks(log, "tester")
    a = tasks.spawn(asyncio.sleep(60))
    b = tasks.spawn(asyncio.sleep(60))
    tasks.cancel(keep=a)
    await asyncio.sleep(0)
    assert b.cancelled() and not a.done()
    await tasks.aclose()
    assert a.cancelled()


async def test_on_failure_hears_of_each_failed_task_only() -> None:
    failed: list[tuple[str, str]] = []
    tasks = OwnedTasks(
        log, "tester", on_failure=lambda task, error: failed.append((task.get_name(), str(error)))
    )

    async def boom() -> None:
        raise ValueError("bad frame")

    ok = tasks.spawn(asyncio.sleep(0), name="ok")
    bad = tasks.spawn(boom(), name="bad")
    cancelled = tasks.spawn(asyncio.sleep(60), name="cancelled")
    cancelled.cancel()
    await asyncio.gather(ok, bad, cancelled, return_exceptions=True)
    await asyncio.sleep(0)
    assert failed == [("bad", "bad frame")]
