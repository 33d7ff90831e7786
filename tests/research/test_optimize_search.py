"""A seeded search is reproducible, and the number of worker processes never changes what it finds."""

from pathlib import Path
from typing import Any

import pytest
from research.optimize_data import SAMPLE, usdt_config

from engine.research.report import summary_json, trials_json
from engine.research.run import OptimizeRequest, OptimizeResult, optimize


def _request(tmp_path: Path, **changes: Any) -> OptimizeRequest:
    base: dict[str, Any] = {
        "data": SAMPLE,
        "strategy": "ema_cross",
        "params": ("fast=2:30", "slow=10:80"),
        "pair": "XBTUSDT",
        "trials": 12,
        "objective": "return",
        "config": usdt_config(tmp_path),
    }
    return OptimizeRequest(**{**base, **changes})


def _outcome(result: OptimizeResult) -> tuple[list[Any], Any]:
    """Every trial (parameters, state, objective, metrics, window seen) and the summary's best and folds."""
    summary = summary_json(result)
    return trials_json(result), (summary["best"], summary["folds"], summary["deflated_sharpe"])


def test_a_seeded_search_gives_the_same_trials_and_best_twice(tmp_path: Path) -> None:
    first = optimize(_request(tmp_path, seed=7))
    second = optimize(_request(tmp_path, seed=7))
    assert _outcome(first) == _outcome(second)
    best = first.best
    assert best is not None and best.value is not None
    # the best is the highest objective among the complete trials, the earliest on a tie
    complete = [t for t in first.trials if t.state == "complete" and t.value is not None]
    assert len(complete) >= 8
    top = max(t.value for t in complete if t.value is not None)
    assert best.value == top and best.number == min(t.number for t in complete if t.value == top)
    # another seed proposes other parameters
    other = optimize(_request(tmp_path, seed=8))
    assert [t.params for t in other.trials] != [t.params for t in first.trials]


@pytest.mark.parametrize("sampler", ["grid", "tpe"])
def test_two_workers_find_what_one_finds_for_the_same_seed(tmp_path: Path, sampler: str) -> None:
    params = ("fast=2:8:2", "slow=12:30:6") if sampler == "grid" else ("fast=2:30", "slow=10:80")
    one = optimize(_request(tmp_path, sampler=sampler, params=params, trials=16, workers=1, seed=3))
    two = optimize(_request(tmp_path, sampler=sampler, params=params, trials=16, workers=2, seed=3))
    assert _outcome(one) == _outcome(two)
    assert len(one.trials) == 16
    if sampler == "grid":  # the whole grid, each combination once
        assert sorted((t.params["fast"], t.params["slow"]) for t in one.trials) == sorted(
            (str(f), str(s)) for f in (2, 4, 6, 8) for s in (12, 18, 24, 30)
        )
