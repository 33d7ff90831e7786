"""``--backend ray``: the trials as Ray tasks, scheduled by Ray on a local or a remote cluster.

The driver puts the loaded candles and the backtest setup into Ray's object store once; each task gets them by
reference and a worker process loads them the first time it runs a trial of this search (they stay loaded for
the next one, as a pool worker keeps its file), so a cluster's nodes need no copy of the data file. Each task
asks for one CPU; Ray decides where and when it runs. The search's rounds (:mod:`.search`) are what make the
results independent of that: the same seed gives the same trials as local workers.

Ray is an optional extra (``pip install -e ".[distributed]"``), imported only here, at run time. Without
``--address`` a local Ray is started with ``workers`` CPUs (and stopped at the end); with it, the cluster there is
joined (``ray://host:10001`` or ``host:6379``, as ``ray.init`` takes it).
"""

import importlib
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from engine.domain.market_data import Candle
from engine.research.errors import OptimizeError
from engine.research.objective import BacktestSetup, TrialResult, TrialTask
from engine.research.runners import OnDone, _Closing
from engine.research.worker import init_worker, loaded_key, run_trial

__all__ = ["RayRunner", "ray_available"]

INSTALL_HINT = 'pip install -e ".[distributed]"'


def ray_available() -> bool:
    """True when Ray can be imported."""
    try:
        importlib.import_module("ray")
    except ImportError:
        return False
    return True


def _ray_trial(key: str, shared: list[Any], task: TrialTask) -> TrialResult:
    """A Ray task: load the search's data into this worker process if it has not yet, then run the trial."""
    if loaded_key() != key:
        ray = importlib.import_module("ray")
        setup, candles = ray.get(shared)
        init_worker(setup, candles, key=key)
    return run_trial(task)


class RayRunner(_Closing):
    """Runs each round's trials as Ray tasks and collects them as they finish."""

    def __init__(self, setup: BacktestSetup, candles: Sequence[Candle], workers: int, address: str | None) -> None:
        try:
            ray = importlib.import_module("ray")
        except ImportError:
            raise OptimizeError(f"--backend ray needs Ray, which is not installed: {INSTALL_HINT}") from None
        self._ray = ray
        self.workers = workers
        self._owns = False
        if not ray.is_initialized():
            options: dict[str, Any] = {"address": address} if address else {"num_cpus": workers}
            try:
                ray.init(
                    **options,
                    include_dashboard=False,
                    log_to_driver=False,  # workers' output must never reach stdout, which holds the result only
                    logging_level=logging.WARNING,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise OptimizeError(f"cannot start or join Ray{f' at {address}' if address else ''}: {exc}") from None
            self._owns = True
        self._key = uuid.uuid4().hex
        # Nested in a list, the references reach the task unresolved: a worker fetches them once, not per task.
        self._shared = [ray.put(setup), ray.put(candles)]
        self._remote = ray.remote(num_cpus=1)(_ray_trial)

    def run(self, tasks: Sequence[TrialTask], on_done: OnDone) -> list[TrialResult]:
        ray = self._ray
        refs = [self._remote.remote(self._key, self._shared, task) for task in tasks]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[TrialResult | None] = [None] * len(refs)
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    result: TrialResult = ray.get(ref)
                    on_done(result)
                    results[index[ref]] = result
        except BaseException:
            for ref in pending:
                ray.cancel(ref)
            raise
        return [r for r in results if r is not None]

    def close(self) -> None:
        if self._owns:
            self._ray.shutdown()
            self._owns = False
