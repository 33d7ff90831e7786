"""Property tests: the report agrees with brute-force references and stays within its bounds."""

import bisect
from decimal import Context, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.portfolio.equity import DAY_NS, EquityPoint, RunningDrawdown, daily_closes, return_series
from engine.portfolio.performance import ClosedTrade, compute_report, compute_trade_report, exposure_fraction

T0 = 1_704_067_200 * 1_000_000_000
REF = Context(prec=34)
ZERO = Decimal(0)

positive_equity = st.integers(min_value=1, max_value=10**9).map(lambda cents: Decimal(cents).scaleb(-2))
gap_ns = st.sampled_from([0, 1, 60 * 10**9, 3_600 * 10**9, DAY_NS - 1, DAY_NS, DAY_NS + 1, 3 * DAY_NS])


@st.composite
def curves(draw: st.DrawFn, min_size: int = 1) -> list[EquityPoint]:
    values = draw(st.lists(positive_equity, min_size=min_size, max_size=40))
    start = T0 + draw(st.integers(min_value=-DAY_NS, max_value=DAY_NS))
    points = []
    ts = start
    for value in values:
        points.append(EquityPoint(ts, value))
        ts += draw(gap_ns)
    return points


pnl = st.integers(min_value=-(10**6), max_value=10**6).map(lambda cents: Decimal(cents).scaleb(-2))


@st.composite
def trades(draw: st.DrawFn) -> list[ClosedTrade]:
    result = []
    for _ in range(draw(st.integers(min_value=0, max_value=20))):
        entry = draw(st.integers(min_value=-10, max_value=60))
        exit_ = entry + draw(st.integers(min_value=0, max_value=30))
        value = draw(pnl)
        result.append(ClosedTrade("BTC/USD", "s", entry, exit_, Decimal(1), Decimal(100), Decimal(100), value, ZERO))
    return result


def brute_max_drawdown(values: list[Decimal]) -> tuple[Decimal, Decimal]:
    fraction = absolute = ZERO
    for i, peak in enumerate(values):
        for later in values[i:]:
            if later < peak:
                fraction = max(fraction, REF.divide(peak - later, peak))
                absolute = max(absolute, peak - later)
    return fraction, absolute


def last_per_timestamp(curve: list[EquityPoint]) -> list[Decimal]:
    """The equity at each distinct time, the last point given for it (the curves draw gaps of 0)."""
    by_time: dict[int, Decimal] = {}
    for point in curve:
        by_time[point.ts_ns] = point.equity
    return list(by_time.values())


@given(curves())
def test_max_drawdown_in_unit_interval_and_matches_brute_force(curve: list[EquityPoint]) -> None:
    report = compute_report(curve, [], ZERO)
    assert report.max_drawdown is not None
    assert ZERO <= report.max_drawdown < 1
    assert (report.max_drawdown, report.max_drawdown_abs) == brute_max_drawdown(last_per_timestamp(curve))


@given(st.lists(positive_equity, min_size=1, max_size=50))
def test_running_drawdown_current_is_fall_from_running_max(values: list[Decimal]) -> None:
    tracker = RunningDrawdown()
    for index, value in enumerate(values):
        peak = max(values[: index + 1])
        assert tracker.update(value) == REF.divide(peak - value, peak)


@given(curves(), st.none() | positive_equity)
def test_total_return_consistent_with_start_and_end(curve: list[EquityPoint], opening: Decimal | None) -> None:
    report = compute_report(curve, [], ZERO, starting_equity=opening)
    start = last_per_timestamp(curve)[0] if opening is None else opening
    assert report.start_equity == start
    assert report.end_equity == curve[-1].equity
    assert report.total_return is not None
    assert abs((report.total_return + 1) * start - curve[-1].equity) < Decimal("1e-20")


@given(curves(min_size=2), st.none() | positive_equity)
def test_returns_compound_to_total_return(curve: list[EquityPoint], opening: Decimal | None) -> None:
    series = return_series(curve, opening)
    report = compute_report(curve, [], ZERO, starting_equity=opening)
    if series is None:
        assert report.sharpe is None and report.return_interval is None
        return
    growth = Decimal(1)
    for r in series.returns:
        growth = REF.multiply(growth, r + 1)
    assert report.total_return is not None
    assert abs(growth - 1 - report.total_return) <= Decimal("1e-24") * max(Decimal(1), growth)
    assert report.return_interval == series.interval


@given(curves(min_size=2))
def test_daily_closes_match_bisect_reference(curve: list[EquityPoint]) -> None:
    stamps = [p.ts_ns for p in curve]
    first, last = stamps[0], stamps[-1]
    expected = [curve[0].equity]
    boundary = (first // DAY_NS + 1) * DAY_NS
    while boundary < last:
        expected.append(curve[bisect.bisect_right(stamps, boundary) - 1].equity)
        boundary += DAY_NS
    expected.append(curve[-1].equity)
    assert daily_closes(curve) == expected


@given(trades())
@settings(max_examples=200)
def test_trade_stats_bounds(sample: list[ClosedTrade]) -> None:
    report = compute_trade_report(sample, span_ns=(0, 50))
    assert report.trade_count == len(sample)
    assert report.wins + report.losses <= report.trade_count
    if sample:
        assert report.win_rate is not None and ZERO <= report.win_rate <= 1
        assert report.expectancy is not None
        assert report.best_trade == max(t.pnl for t in sample)
    else:
        assert report.win_rate is None and report.expectancy is None and report.profit_factor is None
    assert report.profit_factor is None or report.profit_factor >= 0
    assert report.realized_pnl == report.gross_profit - report.gross_loss


@given(trades())
def test_exposure_matches_unit_cell_reference(sample: list[ClosedTrade]) -> None:
    covered = sum(1 for cell in range(50) if any(t.entry_ts_ns <= cell and cell + 1 <= t.exit_ts_ns for t in sample))
    exposure = exposure_fraction(sample, 0, 50)
    assert exposure == REF.divide(Decimal(covered), Decimal(50))
    assert exposure is not None and ZERO <= exposure <= 1
