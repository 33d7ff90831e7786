"""Hand-computed checks of the full report, trade statistics, exposure and grouping."""

import itertools
import json
import math
import statistics
import time
from decimal import Decimal

import pytest

from engine.portfolio.equity import DAY_NS
from engine.portfolio.performance import (
    ClosedTrade,
    EquityPoint,
    PerformanceError,
    compute_group_reports,
    compute_report,
    compute_trade_report,
    exposure_fraction,
    group_trades,
)

T0 = 1_704_067_200 * 1_000_000_000  # 2024-01-01T00:00:00Z
HOUR_NS = 3_600 * 1_000_000_000
ZERO = Decimal(0)


def trade(
    pnl: str, entry: int = 0, exit_: int = 0, *, strategy: str = "s1", pair: str = "BTC/USD", fees: str = "1"
) -> ClosedTrade:
    return ClosedTrade(
        pair=pair,
        strategy=strategy,
        entry_ts_ns=entry,
        exit_ts_ns=exit_,
        qty=Decimal("0.5"),
        entry_price=Decimal(100),
        exit_price=Decimal(100) + Decimal(pnl) * 2,
        pnl=Decimal(pnl),
        fees=Decimal(fees),
    )


MIXED = [trade("30"), trade("-10"), trade("0"), trade("20"), trade("-20")]


def test_trade_statistics_by_hand() -> None:
    report = compute_trade_report(MIXED)
    assert (report.trade_count, report.wins, report.losses) == (5, 2, 2)
    assert report.win_rate == Decimal("0.4")
    assert report.gross_profit == Decimal(50)
    assert report.gross_loss == Decimal(30)
    assert report.profit_factor == Decimal("1.6667")
    assert report.realized_pnl == Decimal(20)
    assert report.expectancy == Decimal(4)
    assert report.avg_win == Decimal(25)
    assert report.avg_loss == Decimal(-15)
    assert report.best_trade == Decimal(30)
    assert report.worst_trade == Decimal(-20)
    assert report.fees_paid == Decimal(5)
    # No equity curve: every curve-derived field is undefined.
    assert report.start_equity is None and report.max_drawdown is None and report.sharpe is None
    assert report.exposure is None


def test_profit_factor_none_without_losses_and_zero_without_wins() -> None:
    assert compute_trade_report([trade("5"), trade("0")]).profit_factor is None
    assert compute_trade_report([trade("-5")]).profit_factor == Decimal(0)


def test_zero_trades_zero_curve_no_division_errors() -> None:
    report = compute_report([], [], ZERO)
    assert report.trade_count == 0
    assert report.win_rate is None and report.expectancy is None and report.profit_factor is None
    assert report.avg_win is None and report.avg_loss is None and report.best_trade is None
    assert report.end_equity is None and report.total_return is None and report.exposure is None
    assert report.realized_pnl == ZERO


def test_exposure_merges_overlaps_and_clips_to_span() -> None:
    trades = [
        trade("1", 10, 30),
        trade("1", 20, 40),
        trade("1", 50, 60),
        trade("1", 90, 120),
        trade("1", 200, 300),
    ]
    # Covered: [10, 40] + [50, 60] + [90, 100] = 50 of 100.
    assert exposure_fraction(trades, 0, 100) == Decimal("0.5")
    assert exposure_fraction(trades, 5, 5) is None
    assert exposure_fraction([], 0, 100) == ZERO


def test_full_report_by_hand() -> None:
    values = ["100", "120", "90", "110", "80", "130", "117"]
    curve = [EquityPoint(T0 + i * DAY_NS, Decimal(v)) for i, v in enumerate(values)]
    trades = [trade("10", T0, T0 + DAY_NS), trade("-3", T0 + 3 * DAY_NS, T0 + 6 * DAY_NS)]
    report = compute_report(curve, trades, fees_paid=Decimal("2.5"))
    assert report.start_equity == Decimal(100)
    assert report.end_equity == Decimal(117)
    assert report.total_return == Decimal("0.17")
    assert report.max_drawdown is not None
    assert report.max_drawdown.quantize(Decimal("1e-12")) == Decimal("0.333333333333")
    assert report.max_drawdown_abs == Decimal(40)
    assert report.realized_pnl == Decimal(7)
    assert report.fees_paid == Decimal("2.5")
    assert report.exposure == Decimal("0.6666666666666666666666666666666667")
    assert report.return_interval == "1d"
    assert report.return_count == 6
    assert report.periods_per_year == Decimal(365) and report.span_days == Decimal(6)
    # Six daily returns are too few for an annualised figure (30 needed): n/a, and the note says why.
    assert report.sharpe is None and report.sortino is None and report.cagr is None
    assert report.annualised_note == (
        "Sharpe, Sortino and CAGR n/a: 6 returns at 1d, fewer than the 30 an annualised figure needs"
    )


def test_full_report_over_a_month_by_hand() -> None:
    values = [100 + (i * 37) % 23 - (i % 5) * 2 + i for i in range(31)]  # 31 daily closes: 30 returns
    curve = [EquityPoint(T0 + i * DAY_NS, Decimal(v)) for i, v in enumerate(values)]
    report = compute_report(curve, [], fees_paid=ZERO)
    assert (report.return_interval, report.return_count, report.annualised_note) == ("1d", 30, "")
    floats = [float(v) for v in values]
    returns = [b / a - 1 for a, b in itertools.pairwise(floats)]
    expected = statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(365)
    assert report.sharpe is not None
    assert float(report.sharpe) == pytest.approx(expected, abs=1e-4)
    assert report.cagr is not None
    assert float(report.cagr) == pytest.approx((floats[-1] / floats[0]) ** (365 / 30) - 1, rel=1e-12)


def test_starting_equity_is_return_base_and_first_peak() -> None:
    curve = [EquityPoint(T0 + i * DAY_NS, Decimal(v)) for i, v in enumerate(["150", "160", "180"])]
    report = compute_report(curve, [], ZERO, starting_equity=Decimal(200))
    assert report.start_equity == Decimal(200)
    assert report.total_return == Decimal("-0.1")
    assert report.max_drawdown == Decimal("0.25")
    assert report.max_drawdown_abs == Decimal(50)
    # Daily closes 200 (opening), 160 (first midnight; 150 was intra-day), 180 (last point).
    assert report.return_count == 2


def test_to_dict_is_json_safe_plain_strings() -> None:
    curve = [EquityPoint(T0, Decimal("1E+4")), EquityPoint(T0 + HOUR_NS, Decimal("10500.00"))]
    report = compute_report(curve, [trade("500")], Decimal("1.50"))
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["start_equity"] == "10000"
    assert data["end_equity"] == "10500"
    assert data["total_return"] == "0.05"
    assert data["fees_paid"] == "1.5"
    assert data["trade_count"] == 1
    assert data["sharpe"] is None  # a single return
    assert data["return_interval"] == "3600s"
    assert set(data) >= {"max_drawdown", "sortino", "profit_factor", "exposure", "best_trade"}


def test_group_trades_and_group_reports() -> None:
    trades = [
        trade("5", 0, 10, strategy="a", pair="BTC/USD"),
        trade("-2", 20, 30, strategy="b", pair="ETH/USD"),
        trade("3", 40, 60, strategy="a", pair="ETH/USD"),
    ]
    by_strategy = group_trades(trades, "strategy")
    assert list(by_strategy) == ["a", "b"]
    assert by_strategy["a"] == [trades[0], trades[2]]
    by_pair = group_trades(trades, "pair")
    assert [len(v) for v in by_pair.values()] == [1, 2]
    reports = compute_group_reports(trades, "strategy", span_ns=(0, 100))
    assert reports["a"].realized_pnl == Decimal(8)
    assert reports["a"].exposure == Decimal("0.3")
    assert reports["b"].losses == 1
    with pytest.raises(PerformanceError):
        group_trades(trades, "side")  # type: ignore[arg-type]


def test_invalid_inputs_raise_performance_error() -> None:
    with pytest.raises(PerformanceError):
        trade("1", 10, 5)
    with pytest.raises(PerformanceError):
        compute_report([EquityPoint(2, Decimal(1)), EquityPoint(1, Decimal(1))], [], ZERO)
    with pytest.raises(PerformanceError):
        compute_report([], [], 0.0)  # type: ignore[arg-type]
    assert issubclass(PerformanceError, ValueError)


def test_large_curve_is_linear() -> None:
    n = 100_000
    curve = [EquityPoint(T0 + i * HOUR_NS, Decimal(10_000 + (i * 7919) % 1000 - i % 500)) for i in range(n)]
    trades = [trade("1", T0 + i * HOUR_NS, T0 + (i + 5) * HOUR_NS) for i in range(0, n, 10)]
    started = time.perf_counter()
    report = compute_report(curve, trades, ZERO)
    elapsed = time.perf_counter() - started
    assert report.return_interval == "1d"
    assert report.return_count == math.ceil((n - 1) / 24)
    assert report.exposure is not None
    assert float(report.exposure) == pytest.approx(50_000 / 99_999, abs=1e-12)
    # A quadratic pass over 1e5 points would take minutes; a linear one well under a second.
    assert elapsed < 10
