"""A compacted equity curve gives the same report as the full one (engine.portfolio.curve_compaction).

The reference is the report computed from every point (compute_report, which the compaction does not use), and a
plain maximum-drawdown loop written here; generated curves cover repeated timestamps (several pairs), flat days,
negative equity, gaps of several days and compaction repeated while the curve grows, as the run loop does it.
"""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.portfolio.curve import EquityCurve
from engine.portfolio.curve_compaction import MAX_KEPT_PER_DAY, compact, day_of
from engine.portfolio.equity import DAY_NS, EquityPoint
from engine.portfolio.performance import compute_report

HOUR_NS = 3_600 * 1_000_000_000
REPORTED = ("max_drawdown", "max_drawdown_abs", "total_return", "sharpe", "sortino", "cagr", "return_interval")


def _figures(ts: list[int], eq: list[Decimal], opening: Decimal | None) -> dict[str, object]:
    curve = [EquityPoint(t, e) for t, e in zip(ts, eq, strict=True)]
    report = compute_report(curve, [], Decimal(0), starting_equity=opening).to_dict()
    return {name: report.get(name) for name in REPORTED}


def _plain_max_drawdown(ts: list[int], eq: list[Decimal]) -> tuple[Decimal, Decimal]:
    """Largest fall from a running peak, as a fraction and in money, over the last point per timestamp."""
    last: dict[int, Decimal] = {}
    for t, e in zip(ts, eq, strict=True):
        last[t] = e
    peak: Decimal | None = None
    frac = money = Decimal(0)
    for t in sorted(last):
        value = last[t]
        if peak is None or value > peak:
            peak = value
            continue
        money = max(money, peak - value)
        if peak > 0:
            frac = max(frac, (peak - value) / peak)
    return frac, money


steps = st.lists(
    st.tuples(
        st.sampled_from([0, 60, 300, 900, 1_800, 3_600, 3_600, 86_400, 3 * 86_400]),  # seconds to the next point
        st.integers(min_value=-3_000, max_value=3_000),  # equity change in cents
    ),
    min_size=2,
    max_size=400,
)


def _curve(start_s: int, base: int, moves: list[tuple[int, int]]) -> tuple[list[int], list[Decimal]]:
    ts, eq = [], []
    now, cents = start_s * 1_000_000_000, base * 100
    for gap, change in moves:
        now += gap * 1_000_000_000
        cents += change
        ts.append(now)
        eq.append(Decimal(cents).scaleb(-2))
    return ts, eq


@settings(max_examples=300, deadline=None)
@given(
    start_s=st.integers(min_value=0, max_value=2_000_000_000),
    base=st.integers(min_value=10, max_value=20_000),
    moves=steps,
    opening=st.sampled_from([None, "10000", "500"]),
)
def test_a_compacted_curve_reports_the_same_figures(
    start_s: int, base: int, moves: list[tuple[int, int]], opening: str | None
) -> None:
    ts, eq = _curve(start_s, base, moves)
    open_eq = None if opening is None else Decimal(opening)
    thinned = compact(ts, eq)
    if thinned is None:
        return
    kept_ts, kept_eq = thinned
    assert len(kept_ts) < len(ts)
    assert _figures(kept_ts, kept_eq, open_eq) == _figures(ts, eq, open_eq)
    assert _plain_max_drawdown(kept_ts, kept_eq) == _plain_max_drawdown(ts, eq)
    # The first point (the opening equity of a coin-holding account) and the current day stay as they were.
    assert (kept_ts[0], kept_eq[0]) == (ts[0], eq[0])
    today = day_of(ts[-1])
    assert [(t, e) for t, e in zip(ts, eq, strict=True) if day_of(t) == today and t != ts[0]] == [
        (t, e) for t, e in zip(kept_ts, kept_eq, strict=True) if day_of(t) == today and t != ts[0]
    ]
    days = {day_of(t) for t in kept_ts[1:] if day_of(t) != today}
    assert sum(1 for t in kept_ts[1:] if day_of(t) != today) <= MAX_KEPT_PER_DAY * len(days)


@settings(max_examples=100, deadline=None)
@given(base=st.integers(min_value=100, max_value=5_000), moves=steps, cuts=st.lists(st.integers(1, 400), max_size=6))
def test_compacting_again_as_the_curve_grows_changes_nothing_either(
    base: int, moves: list[tuple[int, int]], cuts: list[int]
) -> None:
    ts, eq = _curve(1_700_000_000, base, moves)
    curve = EquityCurve()
    fed = 0
    for cut in sorted(cuts):
        for i in range(fed, min(cut, len(ts))):
            curve.append(ts[i], eq[i])
        fed = max(fed, min(cut, len(ts)))
        curve.compact()
    for i in range(fed, len(ts)):
        curve.append(ts[i], eq[i])
    curve.compact()
    assert _figures(curve.ts_ns, curve.equity, Decimal(base)) == _figures(ts, eq, Decimal(base))
    assert _plain_max_drawdown(curve.ts_ns, curve.equity) == _plain_max_drawdown(ts, eq)


def test_a_year_of_hourly_points_keeps_a_few_per_day() -> None:
    ts = [1_700_006_400 * 1_000_000_000 + i * HOUR_NS for i in range(24 * 365)]
    eq = [Decimal(10_000 + (i * 7919) % 1_000) for i in range(len(ts))]
    thinned = compact(ts, eq)
    assert thinned is not None
    kept_ts, kept_eq = thinned
    days = (ts[-1] - ts[0]) // DAY_NS + 1
    assert len(kept_ts) <= MAX_KEPT_PER_DAY * days + 24
    assert _figures(kept_ts, kept_eq, None) == _figures(ts, eq, None)


def test_a_fall_inside_one_day_is_kept_whole() -> None:
    # Day 2 opens low, rises to 100, falls to 80, ends at a new high: its first, last, highest and lowest points
    # alone (90, 120, 80) would show a fall from 90, not the 20 % fall from 100.
    day2 = [90, 95, 100, 99, 90, 85, 80, 82, 110, 115, 120]
    values = [50] * 10 + day2 + [120] * 10
    ts = [i * HOUR_NS for i in range(1, 11)] + [DAY_NS + i * HOUR_NS for i in range(1, 12)]
    ts += [3 * DAY_NS + i * HOUR_NS for i in range(1, 11)]
    eq = [Decimal(v) for v in values]
    thinned = compact(ts, eq)
    assert thinned is not None
    assert _plain_max_drawdown(*thinned) == _plain_max_drawdown(ts, eq) == (Decimal("0.2"), Decimal(20))


def test_the_deepest_fraction_and_the_deepest_amount_are_kept_apart() -> None:
    # Day 2: 100 -> 75 is the deepest fall as a fraction (25 %), 200 -> 160 the deepest in money (40).
    day2 = [50, 60, 70, 80, 90, 100, 75, 200, 160, 210]
    values = [40] * 10 + day2 + [210] * 10
    ts = [i * HOUR_NS for i in range(1, 11)] + [DAY_NS + i * HOUR_NS for i in range(1, 11)]
    ts += [3 * DAY_NS + i * HOUR_NS for i in range(1, 11)]
    eq = [Decimal(v) for v in values]
    thinned = compact(ts, eq)
    assert thinned is not None
    assert _plain_max_drawdown(*thinned) == _plain_max_drawdown(ts, eq) == (Decimal("0.25"), Decimal(40))


def test_a_curve_under_two_days_is_left_whole() -> None:
    ts = [i * HOUR_NS for i in range(1, 47)]
    eq = [Decimal(100 + i % 5) for i in range(len(ts))]
    assert compact(ts, eq) is None
