"""The metrics of real runs (``get_performance``, ``trading-mcp backtest --json``) recomputed here with numpy from
the run's own equity curve: one point per timestamp (a two-pair run records two), daily UTC closes, Sharpe,
Sortino and CAGR, and n/a where the run is too short for an annualised figure."""

import bisect
import json
import math
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from engine.runtime.app import Engine, RunOptions
from engine.runtime.backtest_run import BacktestSpec, run_backtest
from engine.runtime.cli import main
from engine.runtime.config import Config, config_from_mapping

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
DAY_S = 86_400
OPENING = 10_000.0  # the default paper account: 10,000 USD


def write_hourly(path: Path, base: float, days: int, phase: float) -> Path:
    """Hourly candles (Kraken OHLCVT CSV) swinging around a slow rise, so an EMA cross trades both ways."""
    rows, previous, t0 = [], base, 1_704_067_200  # 2024-01-01T00:00Z
    for k in range(days * 24):
        swing = 1 + 0.06 * math.sin(2 * math.pi * k / 53 + phase) + 0.03 * math.sin(2 * math.pi * k / 11)
        close = base * swing * (1 + 0.002 * k / 24)
        high, low = max(previous, close) * 1.001, min(previous, close) * 0.999
        rows.append(f"{t0 + 3600 * k},{previous:.2f},{high:.2f},{low:.2f},{close:.2f},5,10\n")
        previous = close
    path.write_text("".join(rows))
    return path


def two_pair_config(btc: Path, eth: Path) -> Config:
    strategies = [
        {"name": name, "kind": "ema_cross", "pair": pair, "params": {"fast": 3, "slow": 8}}
        for name, pair in (("btc", "BTC/USD"), ("eth", "ETH/USD"))
    ]
    feeds = [{"file": str(btc), "pair": "BTC/USD"}, {"file": str(eth), "pair": "ETH/USD"}]
    return config_from_mapping({"market": {"speed": "max", "feeds": feeds}, "strategies": strategies})


async def run(config: Config) -> tuple[list[tuple[int, Any]], dict[str, Any]]:
    """Run ``config`` to the end of its data; its raw equity curve and ``get_performance``'s metrics."""
    engine = Engine.from_config(config, None, options=RunOptions(durable_intents=False, record_every_candle=False))
    with anyio.fail_after(60):
        async with engine.serve() as facade:
            await engine.done.wait()
            metrics = (await facade.performance()).metrics
    return engine.equity_curve.rows(), metrics


def plain_figures(rows: list[tuple[int, Any]], opening: float) -> dict[str, Any]:
    """The report's figures from the raw curve, computed here: the last equity of each timestamp, daily UTC closes
    (the last equity at or before each midnight between the first and the last point), then numpy."""
    last: dict[int, float] = {}
    for ts_ns, equity in rows:
        last[ts_ns] = float(equity)  # a later point of the same timestamp replaces the earlier one
    stamps, values = list(last), list(last.values())
    closes = [opening]
    boundary = (stamps[0] // (DAY_S * 10**9) + 1) * DAY_S * 10**9
    while boundary < stamps[-1]:
        closes.append(values[bisect.bisect_right(stamps, boundary) - 1])
        boundary += DAY_S * 10**9
    closes.append(values[-1])
    returns = np.diff(closes) / np.array(closes[:-1])
    span_days = (stamps[-1] - stamps[0]) / (DAY_S * 10**9)
    peaks = np.maximum.accumulate([opening, *values])
    return {
        "points": len(stamps),
        "returns": len(returns),
        "sharpe": returns.mean() / returns.std(ddof=1) * math.sqrt(365),
        "sortino": returns.mean() / math.sqrt(np.mean(np.minimum(returns, 0) ** 2)) * math.sqrt(365),
        "cagr": (values[-1] / opening) ** (365 / span_days) - 1,
        "span_days": span_days,
        "max_drawdown": float(np.max((peaks - [opening, *values]) / peaks)),
        "total_return": values[-1] / opening - 1,
    }


def assert_matches(metrics: dict[str, Any], plain: dict[str, Any]) -> None:
    assert metrics["annualised_note"] == ""
    assert (metrics["return_interval"], metrics["periods_per_year"]) == ("1d", "365")
    assert metrics["return_count"] == plain["returns"]
    assert float(metrics["sharpe"]) == pytest.approx(plain["sharpe"], abs=1e-4)  # 4 places
    assert float(metrics["sortino"]) == pytest.approx(plain["sortino"], abs=1e-4)
    assert float(metrics["cagr"]) == pytest.approx(plain["cagr"], rel=1e-9)
    assert float(metrics["span_days"]) == pytest.approx(plain["span_days"], rel=1e-12)
    assert float(metrics["max_drawdown"]) == pytest.approx(plain["max_drawdown"], rel=1e-9)
    assert float(metrics["total_return"]) == pytest.approx(plain["total_return"], rel=1e-9)


@pytest.mark.anyio
async def test_a_two_pair_run_is_measured_on_one_equity_point_per_timestamp(tmp_path: Path) -> None:
    btc = write_hourly(tmp_path / "btc.csv", 40_000, 40, 0.0)
    eth = write_hourly(tmp_path / "eth.csv", 2_500, 40, 1.3)
    rows, metrics = await run(two_pair_config(btc, eth))
    plain = plain_figures(rows, OPENING)
    assert len(rows) == 2 * plain["points"] == 2 * 40 * 24  # each candle time recorded once per pair
    assert metrics["trade_count"] > 20  # both strategies traded: the curve moves both ways
    assert_matches(metrics, plain)


@pytest.mark.anyio
async def test_a_short_two_pair_run_samples_its_own_interval_and_has_no_annualised_figures() -> None:
    # The sample twice, as two pairs: every minute's equity is recorded twice. Counted twice, half the gaps are 0 s:
    # their median was 0, so the run had no return interval at all (and returns between repeats were zero).
    rows, metrics = await run(two_pair_config(SAMPLE, SAMPLE))
    distinct = len({ts for ts, _ in rows})
    assert len(rows) == 2 * distinct
    assert (metrics["return_interval"], metrics["periods_per_year"]) == ("60s", "525600")
    assert metrics["return_count"] == distinct  # from the opening equity to each minute's last point
    assert metrics["sharpe"] is None and metrics["sortino"] is None and metrics["cagr"] is None
    span = (rows[-1][0] - rows[0][0]) / (DAY_S * 10**9)
    assert metrics["annualised_note"] == (
        f"Sharpe, Sortino and CAGR n/a: the run spans {span:.2f} days, under the 2 an annualised figure needs"
    )


def test_backtest_json_reports_cagr_and_the_annualisation(tmp_path: Path) -> None:
    data = write_hourly(tmp_path / "XBTUSD_60.csv", 40_000, 45, 0.4)
    out = StringIO()
    argv = ["backtest", "--data", str(data), "--strategy", "ema_cross", "--param", "fast=3", "--param", "slow=8"]
    with redirect_stdout(out):
        assert main([*argv, "--no-progress", "--json"]) == 0
    printed = json.loads(out.getvalue())
    # The same run through the path the CLI takes, for its equity curve.
    outcome = run_backtest(Config(), BacktestSpec(data, "ema_cross", {"fast": "3", "slow": "8"}))
    assert printed["metrics"] == outcome.performance.metrics
    assert printed["return_interval"] == "1d" and printed["window"]["candles"] == 45 * 24
    assert_matches(printed["metrics"], plain_figures(outcome.engine.equity_curve.rows(), OPENING))


def test_a_month_is_too_short_by_a_day(tmp_path: Path) -> None:
    # 29 days of hourly candles: 29 daily returns (the partial first and last days included), one short of 30.
    data = write_hourly(tmp_path / "XBTUSD_60.csv", 40_000, 29, 0.4)
    metrics = run_backtest(Config(), BacktestSpec(data, "ema_cross", {"fast": "3", "slow": "8"})).performance.metrics
    assert metrics["return_count"] == 29
    assert metrics["sharpe"] is None and metrics["cagr"] is None
    assert metrics["annualised_note"] == (
        "Sharpe, Sortino and CAGR n/a: 29 returns at 1d, fewer than the 30 an annualised figure needs"
    )
