"""A trial is ``trading-mcp backtest`` over its window: its objective and metrics are what ``backtest --json``
reports for the same parameters on a file holding only that window's candles.

The sample spans 12 hours: the objectives used here (return, calmar) are defined on it whether or not the report
shows annualised ratios for so short a curve; the ratios are compared all the same (equal, or both undefined)."""

import json
from datetime import datetime
from decimal import Decimal, localcontext
from pathlib import Path

import pytest
from research.optimize_data import SAMPLE, backtest_metrics, cli_json, sample_rows, usdt_config, write_csv

COMPARED = ("sharpe", "sortino", "total_return", "max_drawdown", "trade_count", "fees_paid", "end_equity")


def _seconds(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def test_each_trials_objective_is_the_metric_backtest_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = usdt_config(tmp_path)
    trials_out = tmp_path / "trials.json"
    argv = ["optimize", "--data", str(SAMPLE), "--pair", "XBTUSDT", "--strategy", "ema_cross", "--config", str(config)]
    argv += ["--param", "fast=3:9:6", "--param", "slow=20:40:20", "--sampler", "grid", "--db", str(tmp_path / "r.db")]
    summary = cli_json([*argv, "--objective", "return", "--no-progress", "--trials-out", str(trials_out)], capsys)
    trials = json.loads(trials_out.read_text())
    assert summary["trials"] == len(trials) == 4
    combinations = {(t["params"]["fast"], t["params"]["slow"]) for t in trials}
    assert combinations == {("3", "20"), ("3", "40"), ("9", "20"), ("9", "40")}
    compared = 0
    for trial in trials:
        assert trial["state"] == "complete"
        reported = backtest_metrics(SAMPLE, trial["params"], capsys, "--pair", "XBTUSDT", "--config", str(config))
        assert trial["objective"] == reported["total_return"]
        for key in COMPARED:
            assert trial["metrics"][key] == reported[key], key
        compared += 1
    assert compared == 4
    best = max(trials, key=lambda t: Decimal(t["objective"]))
    assert summary["best"]["params"] == best["params"] and summary["best"]["objective"] == best["objective"]


def test_an_out_of_sample_figure_is_the_backtest_of_that_window_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = usdt_config(tmp_path)
    argv = ["optimize", "--data", str(SAMPLE), "--pair", "XBTUSDT", "--strategy", "ema_cross", "--config", str(config)]
    argv += ["--param", "fast=3:9:6", "--param", "slow=20:40:20", "--sampler", "grid", "--walk-forward", "1"]
    argv += ["--objective", "calmar", "--db", str(tmp_path / "r.db"), "--no-progress"]
    summary = cli_json(argv, capsys)
    rows = sample_rows()
    assert summary["candles"] == len(rows) == 720
    (fold,) = summary["folds"]
    oos, ins = fold["out_of_sample"], fold["in_sample"]
    # the test's own cut: candles 360..720 (two blocks of 360), written to a file of their own
    assert (oos["candles"], ins["candles"]) == (360, 360)
    window = [r for r in rows if r[0] >= _seconds(oos["from"]) and r[0] + 60 <= _seconds(oos["to"])]
    assert window == rows[360:]
    csv = write_csv(tmp_path / "XBTUSDT_1.csv", window)
    reported = backtest_metrics(csv, oos["params"], capsys, "--pair", "XBTUSDT", "--config", str(config))
    for key in ("sharpe", "sortino", "total_return", "max_drawdown", "trade_count"):
        assert oos["metrics"][key] == reported[key], key
    # calmar = annual return / max drawdown, the annual return compounded over the window's span (6 hours here)
    total, drawdown = Decimal(reported["total_return"]), Decimal(reported["max_drawdown"])
    span_s = _seconds(oos["to"]) - _seconds(oos["from"])
    assert span_s == 360 * 60
    with localcontext() as ctx:
        ctx.prec = 34
        annual = (1 + total) ** (Decimal(365 * 86400) / Decimal(span_s)) - 1
        calmar = annual / drawdown
    assert Decimal(oos["metrics"]["annual_return"]) == pytest.approx(annual, abs=Decimal("0.0001"))
    assert Decimal(oos["objective"]) == pytest.approx(calmar, abs=Decimal("0.0001"))
    assert oos["metrics"]["calmar"] == oos["objective"]
