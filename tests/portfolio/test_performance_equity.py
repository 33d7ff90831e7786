"""Hand-computed checks of drawdown, daily resampling and the Sharpe / Sortino convention."""

import itertools
import math
import statistics
from decimal import Decimal

import pytest

from engine.portfolio.equity import (
    DAY_NS,
    EquityPoint,
    PerformanceError,
    RunningDrawdown,
    daily_closes,
    return_series,
    sharpe_ratio,
    sortino_ratio,
)

HOUR_NS = 3_600 * 1_000_000_000
T0 = 1_704_067_200 * 1_000_000_000  # 2024-01-01T00:00:00Z


def curve_of(*pairs: tuple[int, str]) -> list[EquityPoint]:
    return [EquityPoint(ts, Decimal(value)) for ts, value in pairs]


def test_running_drawdown_tracks_peak_current_and_max() -> None:
    dd = RunningDrawdown()
    seen = [dd.update(Decimal(v)) for v in ("100", "120", "90", "110", "80", "130", "117")]
    assert seen[:3] == [Decimal(0), Decimal(0), Decimal("0.25")]
    assert seen[4] == Decimal("0.3333333333333333333333333333333333")  # 40 / 120 at 34 digits
    assert seen[6] == Decimal("0.1")
    assert dd.peak == Decimal(130)
    assert dd.current == Decimal("0.1")
    assert dd.current_abs == Decimal(13)
    assert dd.max_drawdown.quantize(Decimal("1e-20")) == Decimal("0.33333333333333333333")
    assert dd.max_drawdown_abs == Decimal(40)


def test_running_drawdown_fraction_and_abs_maxima_are_independent() -> None:
    dd = RunningDrawdown(Decimal(100))
    for value in ("50", "1000", "900"):
        dd.update(Decimal(value))
    assert dd.max_drawdown == Decimal("0.5")
    assert dd.max_drawdown_abs == Decimal(100)


def test_running_drawdown_starting_equity_is_first_peak() -> None:
    dd = RunningDrawdown(Decimal(200))
    assert dd.update(Decimal(150)) == Decimal("0.25")


def test_running_drawdown_refuses_float() -> None:
    with pytest.raises(PerformanceError):
        RunningDrawdown().update(1.5)  # type: ignore[arg-type]


def test_equity_point_refuses_float_and_nan() -> None:
    with pytest.raises(PerformanceError):
        EquityPoint(0, 100.0)  # type: ignore[arg-type]
    with pytest.raises(PerformanceError):
        EquityPoint(0, Decimal("NaN"))


def test_daily_closes_forward_fill_and_partial_last_day() -> None:
    curve = curve_of((T0, "100"), (T0 + 12 * HOUR_NS, "110"), (T0 + 3 * DAY_NS + 6 * HOUR_NS, "121"))
    # Midnights of day 1, 2 and 3 all close at 110 (forward-filled); the partial day 4 closes at 121.
    assert daily_closes(curve) == [Decimal(v) for v in ("100", "110", "110", "110", "121")]
    assert daily_closes(curve, opening=Decimal(90))[0] == Decimal(90)


def test_point_at_midnight_closes_the_day_ending_there() -> None:
    curve = curve_of((T0 + HOUR_NS, "100"), (T0 + DAY_NS, "105"), (T0 + DAY_NS + 1, "999"), (T0 + 2 * DAY_NS, "1"))
    assert daily_closes(curve) == [Decimal(v) for v in ("100", "105", "1")]


def test_daily_closes_rejects_unsorted_curve() -> None:
    with pytest.raises(PerformanceError):
        daily_closes(curve_of((T0, "1"), (T0 - 1, "2")))


def test_daily_sharpe_and_sortino_match_float_formula() -> None:
    values = ["100", "110", "99", "108.9", "119.79", "113.8005"]
    curve = curve_of(*((T0 + i * DAY_NS, v) for i, v in enumerate(values)))
    series = return_series(curve)
    assert series is not None
    assert series.interval == "1d"
    floats = [float(v) for v in values]
    returns = [b / a - 1 for a, b in itertools.pairwise(floats)]
    expected_sharpe = statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(365)
    downside = math.sqrt(statistics.mean([min(r, 0.0) ** 2 for r in returns]))
    expected_sortino = statistics.mean(returns) / downside * math.sqrt(365)
    sharpe = sharpe_ratio(series.returns, series.periods_per_year)
    sortino = sortino_ratio(series.returns, series.periods_per_year)
    assert sharpe is not None and sortino is not None
    assert float(sharpe) == pytest.approx(expected_sharpe, abs=1e-4)
    assert float(sortino) == pytest.approx(expected_sortino, abs=1e-4)
    assert sharpe.as_tuple().exponent == -4


def test_exact_hand_values() -> None:
    # Returns 0.1, -0.1, 0.1, 0.1: mean 0.05, sample stdev 0.1, downside deviation sqrt(0.01 / 4) = 0.05.
    returns = [Decimal(r) for r in ("0.1", "-0.1", "0.1", "0.1")]
    assert sharpe_ratio(returns, Decimal(365)) == Decimal("9.5525")  # 0.5 * sqrt(365)
    assert sortino_ratio(returns, Decimal(365)) == Decimal("19.1050")  # sqrt(365)


def test_ratios_undefined_cases() -> None:
    assert sharpe_ratio([Decimal("0.1")], Decimal(365)) is None
    assert sharpe_ratio([Decimal("0.1"), Decimal("0.1")], Decimal(365)) is None  # zero deviation
    assert sortino_ratio([Decimal("0.1"), Decimal("0.2")], Decimal(365)) is None  # no downside
    assert sortino_ratio([], Decimal(365)) is None


def test_short_curve_falls_back_to_native_interval() -> None:
    values = ["100", "101", "100.5", "102", "101", "103"]
    curve = curve_of(*((T0 + i * HOUR_NS, v) for i, v in enumerate(values)))
    series = return_series(curve)
    assert series is not None
    assert series.interval == "3600s"
    assert series.periods_per_year == Decimal(8760)
    floats = [float(v) for v in values]
    returns = [b / a - 1 for a, b in itertools.pairwise(floats)]
    expected = statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(8760)
    sharpe = sharpe_ratio(series.returns, series.periods_per_year)
    assert sharpe is not None
    assert float(sharpe) == pytest.approx(expected, abs=1e-4)


def test_native_interval_uses_median_gap() -> None:
    # Gaps 60, 60, 7200 s: the median, 60 s, is the interval; the opening value adds one return.
    curve = curve_of((T0, "1"), (T0 + 60 * 10**9, "2"), (T0 + 120 * 10**9, "3"), (T0 + 7_320 * 10**9, "4"))
    series = return_series(curve, opening=Decimal(1))
    assert series is not None
    assert series.interval == "60s"
    assert len(series.returns) == 4


def test_return_series_undefined_for_single_point_or_zero_gap() -> None:
    assert return_series(curve_of((T0, "1"))) is None
    assert return_series([]) is None
    assert return_series(curve_of((T0, "1"), (T0, "2"))) is None


def test_non_positive_equity_gives_no_returns() -> None:
    curve = curve_of(*((T0 + i * DAY_NS, v) for i, v in enumerate(["100", "0", "50"])))
    series = return_series(curve)
    assert series is not None
    assert series.returns == ()
