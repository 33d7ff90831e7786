"""Walk-forward never looks ahead: each fold optimises on the candles before its test window only.

The synthetic file (written here) changes regime from block to block, so that the parameters that pay in a fold's
test window are not those that paid before it: a search that peeked at the test window would choose differently.
Each fold's choice is checked against backtests of files that hold only the candles before the test window (they
cannot peek), and every trial's record of what it was fed is checked against the test window's start.
"""

import json
from decimal import Decimal
from pathlib import Path

import pytest
from research.optimize_data import backtest_metrics, cli_json, synthetic_rows, write_csv

from engine.research.errors import OptimizeError
from engine.research.objective import Window
from engine.research.walk_forward import Fold, split_folds

SLOWS = ("4", "40")  # with fast = 2: EMA(2)/EMA(4) rides fast swings, EMA(2)/EMA(40) holds trends


def test_folds_are_anchored_consecutive_blocks() -> None:
    assert split_folds(100, 0) == [Fold(0, Window(0, 100), None)]
    assert split_folds(103, 4) == [
        Fold(1, Window(0, 20), Window(20, 40)),
        Fold(2, Window(0, 40), Window(40, 60)),
        Fold(3, Window(0, 60), Window(60, 80)),
        Fold(4, Window(0, 80), Window(80, 103)),  # the last block takes the remainder
    ]
    with pytest.raises(OptimizeError, match="blocks of 19, fewer than 20"):
        split_folds(99, 4)
    with pytest.raises(OptimizeError, match="--walk-forward -1"):
        split_folds(99, -1)


def _best_slow(data: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """The slow EMA whose backtest of ``data`` has the higher total return (each computed by ``backtest``)."""
    returns = {slow: backtest_metrics(data, {"fast": "2", "slow": slow}, capsys)["total_return"] for slow in SLOWS}
    assert all(r is not None for r in returns.values())
    assert len(set(returns.values())) == 2  # never a tie
    return max(SLOWS, key=lambda slow: Decimal(returns[slow]))


def test_each_fold_chooses_from_its_in_sample_candles_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = synthetic_rows("ABA")  # three blocks of 200 one-minute candles
    data = write_csv(tmp_path / "XBTUSD_1.csv", rows)
    trials_out = tmp_path / "trials.json"
    argv = ["optimize", "--data", str(data), "--pair", "XBTUSD", "--strategy", "ema_cross", "--walk-forward", "2"]
    argv += ["--param", "fast=2", "--param", "slow=4:40:36", "--sampler", "grid", "--objective", "return"]
    argv += ["--db", str(tmp_path / "r.db")]
    summary = cli_json([*argv, "--no-progress", "--trials-out", str(trials_out)], capsys)
    trials = json.loads(trials_out.read_text())
    folds = summary["folds"]
    assert [f["fold"] for f in folds] == [1, 2] and len(trials) == 4
    chosen = [f["in_sample"]["params"]["slow"] for f in folds]
    for k, fold in enumerate(folds, start=1):
        test_start = rows[200 * k][0]
        assert (fold["in_sample"]["candles"], fold["out_of_sample"]["candles"]) == (200 * k, 200)
        # what every trial of the fold was fed ended where the test window begins
        mine = [t for t in trials if t["fold"] == k]
        assert len(mine) == 2
        for t in mine:
            assert t["saw"]["candles"] == 200 * k
            assert t["saw"]["to"] == fold["out_of_sample"]["from"]
            assert _epoch(t["saw"]["to"]) == test_start
        # the choice is the best of backtests that only hold the in-sample candles ...
        before = write_csv(tmp_path / f"fold{k}_in" / "XBTUSD_1.csv", rows[: 200 * k])
        assert chosen[k - 1] == _best_slow(before, capsys)
        # ... which is not what the test window alone would have chosen: peeking would have changed the choice
        after = write_csv(tmp_path / f"fold{k}_out" / "XBTUSD_1.csv", rows[200 * k : 200 * (k + 1)])
        assert chosen[k - 1] != _best_slow(after, capsys)
    # fold 1 learnt block A (fast swings) and chose EMA(4); the data it was not shown favours EMA(40), both alone
    # and together with block A
    assert chosen == ["4", "40"]
    both = write_csv(tmp_path / "fold1_all" / "XBTUSD_1.csv", rows[:400])
    assert _best_slow(both, capsys) == "40"


def _epoch(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())
