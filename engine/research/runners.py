"""Where trials run: in this process (one worker) or in a pool of worker processes (Ray: :mod:`.ray_backend`).

The pool is a ``concurrent.futures.ProcessPoolExecutor`` whose initializer loads the file once per process
(:func:`engine.research.worker.init_worker`), started with ``spawn``: a worker begins from a clean interpreter,
inheriting no thread or lock of the parent. The search hands a runner one round of trials at a time and tells
Optuna their results in trial order once the round is done (see :mod:`.search`), so which process ran a trial,
and when it finished, never changes a result: the same seed gives the same trials with 1 worker or 8.
"""

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from types import TracebackType
from typing import Protocol, Self

from engine.domain.market_data import Candle
from engine.research.objective import BacktestSetup, TrialResult, TrialTask
from engine.research.worker import init_worker, release_worker, run_trial

__all__ = ["InProcessRunner", "PoolRunner", "TrialRunner", "run_round"]

OnDone = Callable[[TrialResult], None]


class TrialRunner(Protocol):
    """Runs rounds of trials; ``close`` ends its workers (a runner is also a context manager)."""

    workers: int

    def run(self, tasks: Sequence[TrialTask], on_done: OnDone) -> list[TrialResult]:
        """The results of ``tasks``, in their order; ``on_done`` hears each as it finishes (any order)."""
        ...

    def close(self) -> None: ...


class _Closing:
    def close(self) -> None:
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class InProcessRunner(_Closing):
    """Trials one after another in this process, on candles it already holds."""

    workers = 1

    def __init__(self, setup: BacktestSetup, candles: Sequence[Candle]) -> None:
        init_worker(setup, candles)

    def run(self, tasks: Sequence[TrialTask], on_done: OnDone) -> list[TrialResult]:
        results = []
        for task in tasks:
            result = run_trial(task)
            on_done(result)
            results.append(result)
        return results

    def close(self) -> None:
        release_worker()


def _init_pool_worker(setup: BacktestSetup) -> None:
    init_worker(setup, ignore_sigint=True)


class PoolRunner(_Closing):
    """Trials in ``workers`` processes, each of which loads the file once when it starts."""

    def __init__(self, setup: BacktestSetup, workers: int) -> None:
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=get_context("spawn"), initializer=_init_pool_worker, initargs=(setup,)
        )

    def run(self, tasks: Sequence[TrialTask], on_done: OnDone) -> list[TrialResult]:
        futures = {self._pool.submit(run_trial, task): index for index, task in enumerate(tasks)}
        return _collect(futures, on_done)

    def close(self) -> None:
        # Queued trials are dropped; one running in each worker ends first (one backtest at most).
        self._pool.shutdown(wait=True, cancel_futures=True)


def _collect(futures: dict[Future[TrialResult], int], on_done: OnDone) -> list[TrialResult]:
    results: list[TrialResult | None] = [None] * len(futures)
    try:
        for future in as_completed(futures):
            result = future.result()
            on_done(result)
            results[futures[future]] = result
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return [r for r in results if r is not None]


def run_round(runner: TrialRunner, tasks: Sequence[TrialTask], on_done: OnDone) -> list[TrialResult]:
    """``runner.run``, checked: every task gave its result, in order."""
    results = runner.run(tasks, on_done) if tasks else []
    if [(r.number, r.fold) for r in results] != [(t.number, t.fold) for t in tasks]:
        raise RuntimeError("a runner returned results that do not match its tasks")
    return results
