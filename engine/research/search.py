"""The search over one window: Optuna's ask/tell in rounds, each round's trials run by a runner.

Samplers: ``tpe`` (Optuna's tree-structured Parzen estimator, the default), ``random``, ``grid`` (every
combination of the ranges, in an order shuffled by the seed; at most as many trials as the grid holds). Each is
seeded with ``seed``.

Rounds: the search asks Optuna for ``batch`` trials, has them run (in parallel when the runner has several
workers), and tells Optuna their results in trial order once all of them are done. What Optuna proposes thus
depends on the seed, the arguments and the batch size only, never on the number of workers or which trial
finished first: a seeded search is reproducible, and gives the same trials with 1 worker or many (the batch
defaults to 8, or the number of workers when that is larger: see :func:`default_batch`). Optuna's own
``study.optimize(n_jobs=...)`` would hand trials to threads as they free up, which makes the order, and so the
results, depend on timing; and threads would not run two backtests at once under the GIL anyway.

A trial whose objective is undefined, or whose combination the strategy refuses, is told to Optuna as failed: it
is recorded and shown, never chosen. The best trial is the highest objective, the earliest trial on a tie.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.research.errors import OptimizeError
from engine.research.objective import TrialResult, TrialTask, Window
from engine.research.runners import TrialRunner, run_round
from engine.research.space import SearchSpace
from engine.strategies import ParamValue

__all__ = ["BATCH", "SAMPLERS", "SearchOutcome", "best_of", "default_batch", "make_sampler", "planned_trials", "search"]

SAMPLERS = ("tpe", "random", "grid")
BATCH = 8


def default_batch(workers: int) -> int:
    """Trials per round unless told: 8, or the number of workers when that is larger (so none idles)."""
    return max(BATCH, workers)


def planned_trials(space: SearchSpace, sampler: str, trials: int) -> int:
    """How many trials a search of ``trials`` runs: a grid stops when it has tried every combination."""
    return min(trials, space.grid_size) if sampler == "grid" else trials


def make_sampler(name: str, seed: int, space: SearchSpace) -> Any:
    """A seeded Optuna sampler.

    Raises:
        OptimizeError: an unknown sampler name, or a grid too large to list.
    """
    from optuna.samplers import GridSampler, RandomSampler, TPESampler

    if name == "tpe":
        return TPESampler(seed=seed)
    if name == "random":
        return RandomSampler(seed=seed)
    if name == "grid":

        class Grid(GridSampler):
            """The grid sampler, which a search stops itself after the grid's size (Optuna's own stop works
            only inside ``study.optimize``, not with ask and tell)."""

            def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
                return None

        return Grid(space.grid(), seed=seed)
    raise OptimizeError(f"unknown sampler {name!r} (use one of {', '.join(SAMPLERS)})")


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    """Every trial of a search, in order, and the best one and its parameters (None when no trial had a defined
    objective)."""

    trials: list[TrialResult]
    best: TrialResult | None
    best_params: dict[str, ParamValue] | None


def best_of(trials: Sequence[TrialResult]) -> TrialResult | None:
    """The complete trial with the highest objective; the earliest on a tie."""
    best: TrialResult | None = None
    for trial in trials:
        if trial.state != "complete" or trial.value is None:
            continue
        if best is None or best.value is None or trial.value > best.value:
            best = trial
    return best


def search(
    space: SearchSpace,
    window: Window,
    *,
    runner: TrialRunner,
    sampler: str,
    seed: int,
    trials: int,
    batch: int,
    fold: int = 0,
    first_number: int = 0,
    on_done: Callable[[TrialResult], None] = lambda _result: None,
) -> SearchOutcome:
    """Search ``space`` over the candles of ``window``: ``trials`` trials (fewer for a small grid), numbered from
    ``first_number``, in rounds of ``batch``."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(sampler, seed, space))
    distributions = space.distributions()
    total = planned_trials(space, sampler, trials)
    done: list[TrialResult] = []
    params: dict[int, dict[str, ParamValue]] = {}
    while len(done) < total:
        asked = [study.ask(distributions) for _ in range(min(batch, total - len(done)))]
        tasks = [TrialTask(first_number + t.number, fold, space.decode(t.params), window) for t in asked]
        params.update((task.number, dict(task.params)) for task in tasks)
        results = run_round(runner, tasks, on_done)
        for trial, result in zip(asked, results, strict=True):
            if result.state == "complete" and result.value is not None:
                study.tell(trial, float(result.value))
            else:
                study.tell(trial, state=TrialState.FAIL)
        done.extend(results)
    best = best_of(done)
    return SearchOutcome(done, best, None if best is None else params[best.number])
