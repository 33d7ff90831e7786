"""A whole optimisation run: the folds, a search on each fold's in-sample candles, the chosen parameters tested on
the fold's out-of-sample candles, and the deflated Sharpe ratio of each choice.

Walk-forward (``walk_forward = K``): the file's candles are cut into ``K + 1`` consecutive blocks of equal size
(the last takes the remainder). Fold ``k`` (1..K) tests on block ``k`` and optimises on everything before it,
blocks ``0..k-1``: an anchored (expanding) window, so each fold learns from all the history it could have known,
and the last fold's choice is the one to trade next. A fold's search only ever gets the candles of its in-sample
window, all of which closed at or before its test window's first candle opened: no trial of a fold can see a
candle of its test window or after it. Without walk-forward (``K = 0``) one search runs over the whole file and
nothing is tested out of sample.

Each fold's search is seeded with ``seed + k`` (fold 0 without walk-forward: ``seed``), so the folds' samplers do
not repeat one another; trials are numbered across the run (fold k's from ``(k - 1) * trials``).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from engine.domain.market_data import Candle
from engine.research.deflated import DeflatedSharpe, deflated_sharpe
from engine.research.errors import OptimizeError
from engine.research.objective import TrialResult, TrialTask, Window
from engine.research.runners import TrialRunner, run_round
from engine.research.search import planned_trials, search
from engine.research.space import SearchSpace

__all__ = ["MIN_BLOCK", "Fold", "FoldResult", "Progress", "SearchPlan", "run_folds", "split_folds"]

MIN_BLOCK = 20
"""The fewest candles a walk-forward block may hold."""


@dataclass(frozen=True, slots=True)
class Fold:
    """Fold ``index`` (0: the whole file, no test): optimise on ``train``, test on ``test``."""

    index: int
    train: Window
    test: Window | None


def split_folds(candles: int, folds: int) -> list[Fold]:
    """The folds of ``candles`` candles (see the module docstring).

    Raises:
        OptimizeError: a negative fold count, or blocks of fewer than :data:`MIN_BLOCK` candles.
    """
    if folds < 0:
        raise OptimizeError(f"--walk-forward {folds}: give a number of folds of 1 or more (or leave it out)")
    if folds == 0:
        return [Fold(0, Window(0, candles), None)]
    size = candles // (folds + 1)
    if size < MIN_BLOCK:
        raise OptimizeError(
            f"--walk-forward {folds} cuts {candles} candles into blocks of {size}, fewer than {MIN_BLOCK}: "
            "give fewer folds or a longer file"
        )
    starts = [b * size for b in range(folds + 1)] + [candles]
    return [Fold(k, Window(0, starts[k]), Window(starts[k], starts[k + 1])) for k in range(1, folds + 1)]


@dataclass(frozen=True, slots=True)
class Progress:
    """Trials done of the total, and the best objective so far (None before any), for a progress line."""

    done: int
    total: int
    best: Decimal | None
    fold: int
    folds: int


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """How every fold searches."""

    space: SearchSpace
    sampler: str
    seed: int
    trials: int
    batch: int


@dataclass(slots=True)
class FoldResult:
    """A fold's trials, its in-sample best, that choice tested out of sample, and its deflated Sharpe ratio."""

    fold: Fold
    trials: list[TrialResult]
    best: TrialResult | None
    oos: TrialResult | None
    dsr: DeflatedSharpe | None
    span_ns: dict[str, tuple[int, int]] = field(default_factory=dict)

    def warning(self, objective: str) -> str | None:
        """The overfitting warning of this fold, or None."""
        where = f"fold {self.fold.index}: " if self.fold.index else ""
        if self.best is None:
            return (
                f"{where}no trial had a defined {objective}: none traded, or the curve is too short for the report's "
                "ratios (--objective return is defined for any run)"
            )
        defined = sum(1 for t in self.trials if t.returns.sharpe is not None)
        if self.dsr is None:
            return f"{where}the deflated Sharpe ratio of the best trial is undefined: its returns tell nothing"
        if not self.dsr.significant:
            return (
                f"{where}the best in-sample result is not significant after {defined} trials (deflated Sharpe "
                f"ratio {self.dsr.value:.2f} < 0.95): likely overfit"
            )
        return None


def run_folds(
    candles: Sequence[Candle],
    folds: Sequence[Fold],
    plan: SearchPlan,
    runner: TrialRunner,
    on_progress: Callable[[Progress], None] = lambda _p: None,
) -> list[FoldResult]:
    """Search each fold in turn and test its choice out of sample (on the same runner)."""
    per_fold = planned_trials(plan.space, plan.sampler, plan.trials)
    total = per_fold * len(folds)
    done = 0
    best: Decimal | None = None
    results = []
    for position, fold in enumerate(folds):

        def heard(result: TrialResult, fold_index: int = fold.index) -> None:
            nonlocal done, best
            done += 1
            if result.value is not None and (best is None or result.value > best):
                best = result.value
            on_progress(Progress(done, total, best, fold_index, len(folds)))

        outcome = search(
            plan.space,
            fold.train,
            runner=runner,
            sampler=plan.sampler,
            seed=plan.seed + fold.index,
            trials=plan.trials,
            batch=plan.batch,
            fold=fold.index,
            first_number=position * per_fold,
            on_done=heard,
        )
        oos = None
        if fold.test is not None and outcome.best_params is not None:
            task = TrialTask(-1, fold.index, outcome.best_params, fold.test)
            (oos,) = run_round(runner, [task], lambda _r: None)
        results.append(
            FoldResult(
                fold,
                outcome.trials,
                outcome.best,
                oos,
                _dsr(outcome.trials, outcome.best),
                _spans(candles, fold),
            )
        )
    return results


def _dsr(trials: Sequence[TrialResult], best: TrialResult | None) -> DeflatedSharpe | None:
    if best is None:
        return None
    sharpes = [t.returns.sharpe for t in trials if t.returns.sharpe is not None]
    stats = best.returns
    return deflated_sharpe(stats.sharpe, stats.count, stats.skew, stats.kurtosis, sharpes)


def _spans(candles: Sequence[Candle], fold: Fold) -> dict[str, tuple[int, int]]:
    """Each window's first open and last close (ns)."""
    spans = {}
    for name, window in (("in_sample", fold.train), ("out_of_sample", fold.test)):
        if window is not None:
            first, last = candles[window.start], candles[window.stop - 1]
            spans[name] = (first.ts_ns, last.ts_ns + last.interval_s * 1_000_000_000)
    return spans
