"""Group commit: concurrent callers' jobs coalesce into batches run by one function.

A Python service's throughput is bounded by its round trips (gRPC, PostgreSQL,
Redis) and the work around each, not by what is at the other end. A batch pays
those once for every job in it. Nothing waits to fill a batch: a job starts at
once when fewer than `max_inflight` batches are running, so an idle service
answers as fast as without batching, and under load the jobs that arrive
meanwhile form the next batch. Core commits updates this way; the edge sends
updates to core this way.

A job's caller may give up (its RPC deadline passed, the client went away):
its future is then cancelled and the job is dropped before its next attempt,
never written after its caller stopped waiting for it to start. The run
function may answer RETRY for a job it cannot do yet (its row is locked by
another transaction); the job is tried again shortly, in a later batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from libs.backoff.backoff import BackoffPolicy
from libs.tasks.owned import OwnedTasks

log = logging.getLogger(__name__)

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
        max_retry_delay: float = 0.2,
    ) -> None:
        if max_batch < 1 or max_inflight < 1:
            raise ValueError("max_batch and max_inflight must be at least 1")
        self._run = run
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        # Half of each wait random: batches that met on one held row do not retry in step.
        self._retry_backoff = BackoffPolicy(retry_delay, max_retry_delay, jitter=0.5)
        self._retries: dict[asyncio.Future[R], int] = {}  # RETRY answers per waiting job
        self._timers: dict[asyncio.Future[R], asyncio.TimerHandle] = {}
        self._queue: list[tuple[J, asyncio.Future[R]]] = []
        self._inflight = 0
        self._tasks = OwnedTasks(log, "group commit")  # running batches
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
            if not self._queue:
                return
            chosen = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            batch = []
            for item in chosen:
                if item[1].done():  # its caller gave up: dropped before its job runs
                    self._retries.pop(item[1], None)
                else:
                    batch.append(item)
            if not batch:
                continue
            self._inflight += 1
            self._tasks.spawn(self._run_batch(batch), name="batch")

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
                    self._retries.pop(future, None)
                    continue
                if isinstance(outcome, Retry):
                    retry.append(item)
                    continue
                self._retries.pop(future, None)
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
        except Exception as error:  # the whole batch failed: every caller hears why
            for _, future in batch:
                self._retries.pop(future, None)
                if not future.done():
                    future.set_exception(error)
        except asyncio.CancelledError:  # the batch itself was cancelled: so are its jobs
            for _, future in batch:
                self._retries.pop(future, None)
                future.cancel()
            raise
        finally:
            self._inflight -= 1
            loop = asyncio.get_running_loop()
            for item in retry:
                # Exponential backoff: a row held for long is not polled every 2 ms.
                attempt = self._retries[item[1]] = self._retries.get(item[1], 0) + 1
                delay = self._retry_backoff.delay(attempt - 1)
                self._timers[item[1]] = loop.call_later(delay, self._requeue, item)
            self._start_batches()

    def _requeue(self, item: tuple[J, asyncio.Future[R]]) -> None:
        self._timers.pop(item[1], None)
        if item[1].done():
            self._retries.pop(item[1], None)
            return
        self._queue.append(item)
        self._start_batches()

    async def close(self) -> None:
        """Shutdown: waits for running batches; jobs still waiting to retry are cancelled.

        Called once the callers are gone (the server stopped), before what the
        run function uses (pools, clients) is closed.
        """
        for future, timer in list(self._timers.items()):
            timer.cancel()
            future.cancel()
            self._retries.pop(future, None)
        self._timers.clear()
        for _, future in self._queue:
            future.cancel()
        self._queue.clear()
        while self._tasks:
            await self._tasks.wait()
