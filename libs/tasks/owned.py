"""Background tasks with an owner: a reference kept until each ends, every failure logged.

asyncio keeps only a weak reference to a task, so one spawned and forgotten
may be collected mid-flight, and its exception is never seen (at best a
"Task exception was never retrieved" at exit). Whoever starts background work
holds an `OwnedTasks`: it keeps each task until it is done, logs a failure
(with its traceback) on the owner's logger, and can cancel or wait for what
is still running when the owner shuts down.

An owner whose tasks must not fail quietly (a connection: a dead writer
would leave it open but mute) passes `on_failure`, called once per failed
task after the log line, to end itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class OwnedTasks:
    """The background tasks of one owner (a client, a connection, a replica, a batcher)."""

    def __init__(
        self,
        log: logging.Logger,
        owner: str,
        *,
        on_failure: Callable[[asyncio.Task[Any], BaseException], None] | None = None,
    ) -> None:
        self._log = log
        self._owner = owner
        self._on_failure = on_failure
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """Runs `coro` as a task this owner holds until it ends; a failure is logged."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._log.error(
                "background task failed",
                extra={"owner": self._owner, "task": task.get_name(), "error": repr(error)},
                exc_info=error,
            )
            if self._on_failure is not None:
                self._on_failure(task, error)

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Any:
        return iter(list(self._tasks))

    def cancel(self, *, keep: asyncio.Task[Any] | None = None) -> None:
        """Cancels every task still running (but `keep`, e.g. the caller's own)."""
        for task in list(self._tasks):
            if task is not keep:
                task.cancel()

    async def wait(self, within: float | None = None) -> None:
        """Waits (at most `within` seconds) for the running tasks; failures are already logged."""
        if self._tasks:
            # asyncio.wait, not gather under a timeout: giving up must not cancel them.
            await asyncio.wait(list(self._tasks), timeout=within)

    async def aclose(self) -> None:
        """Cancels what still runs and waits until it has stopped."""
        current = asyncio.current_task()
        self.cancel(keep=current)
        pending = [task for task in self._tasks if task is not current]
        await asyncio.gather(*pending, return_exceptions=True)
