"""GroupCommit: coalescing, per-job answers, cancelled callers, RETRY."""

from __future__ import annotations

import asyncio

import pytest

from libs.batching.group_commit import RETRY, GroupCommit, Retry

pytestmark = pytest.mark.asyncio


async def settle() -> None:
    """Lets every ready task run until all of them wait again."""
    for _ in range(10):
        await asyncio.sleep(0)


class Recorder:
    """A run function that records its batches and can be held open."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, jobs: list[int]) -> list[int | BaseException | Retry]:
        self.batches.append(list(jobs))
        await self.gate.wait()
        return [job * 10 for job in jobs]


async def test_a_lone_job_runs_at_once() -> None:
    run = Recorder()
    commit: GroupCommit[int, int] = GroupCommit(run, max_batch=8, max_inflight=1)
    assert await asyncio.wait_for(commit.submit(4), 1) == 40
    assert run.batches == [[4]]


async def test_jobs_arriving_during_a_batch_form_the_next_one() -> None:
    run = Recorder()
    run.gate.clear()
    commit: GroupCommit[int, int] = GroupCommit(run, max_batch=4, max_inflight=1)
    calls = [commit.submit(n) for n in range(10)]
    await settle()
    assert run.batches == [[0]]  # started alone, the rest queued behind it
    run.gate.set()
    assert await asyncio.gather(*calls) == [n * 10 for n in range(10)]
    assert run.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]


async def test_batches_run_side_by_side_up_to_max_inflight() -> None:
    run = Recorder()
    run.gate.clear()
    commit: GroupCommit[int, int] = GroupCommit(run, max_batch=100, max_inflight=2)
    calls = [commit.submit(n) for n in range(5)]
    await settle()
    assert run.batches == [[0], [1]]
    run.gate.set()
    await asyncio.gather(*calls)
    assert run.batches == [[0], [1], [2, 3, 4]]


async def test_each_caller_gets_its_own_answer_or_error() -> None:
    async def run(jobs: list[int]) -> list[int | BaseException | Retry]:
        return [ValueError(f"odd {job}") if job % 2 else job for job in jobs]

    commit: GroupCommit[int, int] = GroupCommit(run, max_batch=10, max_inflight=1)
    results = await asyncio.gather(*(commit.submit(n) for n in range(4)), return_exceptions=True)
    assert results[0] == 0 and results[2] == 2
    assert isinstance(results[1], ValueError) and str(results[1]) == "odd 1"
    assert isinstance(results[3], ValueError) and str(results[3]) == "odd 3"


async def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_runs() -> None:
    run = Recorder()
    run.gate.clear()

    async def failing(jobs: list[int]) -> list[int | BaseException | Retry]:
        if 2 in jobs:
            raise OSError("database down")
        return await run(jobs)

    commit: GroupCommit[int, int] = GroupCommit(failing, max_batch=10, max_inflight=1)
    first = commit.submit(1)
    await settle()
    queued = [commit.submit(n) for n in (2, 3)]  # one batch: [2, 3]
    run.gate.set()
    assert await first == 10
    for call in queued:
        with pytest.raises(OSError, match="database down"):
            await call
    assert await commit.submit(4) == 40


async def test_a_caller_that_gave_up_before_its_batch_is_never_run() -> None:
    run = Recorder()
    run.gate.clear()
    commit: GroupCommit[int, int] = GroupCommit(run, max_batch=10, max_inflight=1)
    first = commit.submit(1)
    await settle()
    gone = commit.submit(2)
    kept = commit.submit(3)
    await settle()
    gone.cancel()  # its deadline passed while it waited for a batch
    run.gate.set()
    assert await first == 10 and await kept == 30
    assert run.batches == [[1], [3]]
    assert gone.cancelled()


async def test_retry_runs_the_job_again_in_a_later_batch() -> None:
    busy = {7: 2}  # job 7's row is locked for two attempts

    async def run(jobs: list[int]) -> list[int | BaseException | Retry]:
        answers: list[int | BaseException | Retry] = []
        for job in jobs:
            if busy.get(job, 0) > 0:
                busy[job] -= 1
                answers.append(RETRY)
            else:
                answers.append(job)
        return answers

    commit: GroupCommit[int, int] = GroupCommit(run, max_batch=10, max_inflight=1)
    both = asyncio.gather(commit.submit(7), commit.submit(8))
    assert list(await asyncio.wait_for(both, 2)) == [7, 8]
    assert busy[7] == 0 and commit.batches >= 3


async def test_a_run_answering_the_wrong_number_of_results_fails_loudly() -> None:
    async def run(jobs: list[int]) -> list[int | BaseException | Retry]:
        return []

    commit: GroupCommit[int, int] = GroupCommit(run)
    with pytest.raises(RuntimeError, match="answered 0 results"):
        await commit.submit(1)


async def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        GroupCommit(Recorder(), max_batch=0)


async def test_a_job_kept_waiting_is_retried_ever_less_often() -> None:
    attempts = 0

    async def run(jobs: list[int]) -> list[int | BaseException | Retry]:
        nonlocal attempts
        attempts += 1
        return [RETRY for _ in jobs]  # its row stays locked

    commit: GroupCommit[int, int] = GroupCommit(run, retry_delay=0.002, max_retry_delay=0.05)
    waiting = commit.submit(1)
    await asyncio.sleep(0.4)
    # Backoff 2, 4, 8, 16, 32, then every 50 ms, each at least half of that (jitter):
    # at most about twenty tries, not 200.
    assert 5 <= attempts <= 22
    waiting.cancel()
    await asyncio.sleep(0.1)
    assert commit.queued == 0


async def test_close_waits_for_running_batches_and_cancels_jobs_waiting_to_retry() -> None:
    run = Recorder()
    run.gate.clear()

    async def busy_for_seven(jobs: list[int]) -> list[int | BaseException | Retry]:
        if 7 in jobs:
            return [RETRY if job == 7 else job for job in jobs]
        return await run(jobs)

    commit: GroupCommit[int, int] = GroupCommit(
        busy_for_seven, max_inflight=2, retry_delay=10, max_retry_delay=10
    )
    waiting = commit.submit(7)  # answered RETRY: waits 10 s for its next try
    await settle()
    running = commit.submit(1)  # held by the gate
    await settle()
    closing = asyncio.create_task(commit.close())
    await settle()
    assert waiting.cancelled()
    assert not closing.done()  # the running batch is not abandoned
    run.gate.set()
    await closing
    assert await running == 10


async def test_a_cancelled_batch_cancels_its_jobs() -> None:
    run = Recorder()
    run.gate.clear()
    commit: GroupCommit[int, int] = GroupCommit(run, max_inflight=1)
    job = commit.submit(1)
    await settle()
    for task in list(commit._tasks):  # as the loop does to it when it shuts down
        task.cancel()
    await settle()
    assert job.cancelled()
