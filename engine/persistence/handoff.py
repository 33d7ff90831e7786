"""Waiting on the event loop for a result another thread produces, with one wake-up and no worker thread.

The writer's and the reader's answers are :class:`concurrent.futures.Future` objects set on their own threads.
Waiting for one through a worker thread (``to_thread.run_sync(future.result)``) costs two thread wake-ups per
answer: the worker's, then the loop's. Every order intent of a resumable run waits for such an answer, and on a
busy machine each wake-up is slow. Here the producing thread wakes the event loop itself
(``call_soon_threadsafe``). The engine runs on asyncio (anyio's asyncio backend).
"""

import asyncio
import contextlib
from concurrent.futures import Future
from typing import Any

import anyio

__all__ = ["wait_for_thread"]


async def wait_for_thread(future: "Future[Any]", timeout: float) -> None:
    """Return once ``future`` is done (its result or error is then read by the caller).

    Cancelling the wait leaves ``future`` alone: the other thread still sets it.

    Raises:
        TimeoutError: not done within ``timeout`` seconds.
    """
    if future.done():
        return
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object) -> None:
        def settle() -> None:
            if not waiter.done():
                waiter.set_result(None)

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle)

    future.add_done_callback(wake)
    with anyio.fail_after(timeout):
        await waiter
