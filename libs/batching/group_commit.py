"""Group commit: concurrent callers' jobs coalesce into batches run by one function.

Core's throughput is bounded by round trips (PostgreSQL, Redis) and the Python
work around each, not by PostgreSQL itself. A batch pays those once for every
job in it. Nothing waits to fill a batch: a job starts at once when fewer than
`max_inflight` batches are running, so an idle core answers as fast as before,
and under load the jobs that arrive meanwhile form the next batch.

A job's caller may give up (its RPC deadline passed, the client went away):
its future is then cancelled and the job is dropped before its next attempt,
never written after its caller stopped waiting for it to start. The run
function may answer RETRY for a job it cannot do yet (its row is locked by
another transaction); the job is tried again shortly, in a later batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

J = TypeVar("J")
R = TypeVar("R")


class Retry:
    """The answer for a job to be tried again in a later batch."""


RETRY = Retry()


class GroupCommit(Generic[J, R]):
    """Runs submitted jobs in batches of at most `max_batch`, `max_inflight` at a time."""

    def __init__(
        self,
        run: Callable[[list[J]], Awaitable[Sequence[R | BaseException | Retry]]],
        *,
        max_batch: int = 128,
        max_inflight: int = 2,
        retry_delay: float = 0.002,
    ) -> None:
        if max_batch < 1 or max_inflight < 1:
            raise ValueError("max_batch and max_inflight must be at least 1")
        self._run = run
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._retry_delay = retry_delay
        self._queue: list[tuple[J, asyncio.Future[R]]] = []
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # batches run so far (for metrics and tests)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def submit(self, job: J) -> asyncio.Future[R]:
        """Queues `job` at once; the future is its result (or raises its error).

        Cancelling the future is giving up: the job is dropped unless its
        batch already started.
        """
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((job, future))
        self._start_batches()
        return future

    def _start_batches(self) -> None:
        while self._inflight < self._max_inflight:
            # Callers that gave up are dropped here, before their job runs.
            while self._queue and self._queue[0][1].done():
                self._queue.pop(0)
            if not self._queue:
                return
            batch = [item for item in self._queue[: self._max_batch] if not item[1].done()]
            del self._queue[: self._max_batch]
            self._inflight += 1
            task = asyncio.create_task(self._run_batch(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, batch: list[tuple[J, asyncio.Future[R]]]) -> None:
        self.batches += 1
        retry: list[tuple[J, asyncio.Future[R]]] = []
        try:
            outcomes = await self._run([job for job, _ in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} answered {len(outcomes)} results")
            for item, outcome in zip(batch, outcomes, strict=True):
                future = item[1]
                if future.done():
                    continue
                if isinstance(outcome, Retry):
                    retry.append(item)
                elif isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
        except Exception as error:  # the whole batch failed: every caller hears why
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
        finally:
            self._inflight -= 1
            if retry:
                asyncio.get_running_loop().call_later(self._retry_delay, self._requeue, retry)
            self._start_batches()

    def _requeue(self, items: list[tuple[J, asyncio.Future[R]]]) -> None:
        self._queue.extend(item for item in items if not item[1].done())
        self._start_batches()

    async def close(self) -> None:
        """Waits for running batches (shutdown: in-flight calls finish)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
