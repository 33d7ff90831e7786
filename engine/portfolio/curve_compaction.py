"""Thinning an equity curve without changing a single figure computed from it.

A backtest records one equity point per candle: 10 million candles would keep 10 million points (over a gigabyte
of ints and Decimals) only for the handful of numbers a report takes from them. :func:`compact` keeps, of every
complete UTC day (the buckets :func:`~engine.portfolio.equity.daily_closes` closes on: a point stamped exactly
00:00 belongs to the day ending there), at most eight points, in time order:

* the first and the last point of the day (the last is the day's close);
* the highest and the lowest point;
* the peak and the trough of the day's own largest drawdown, as a fraction of its peak and in money.

Every figure :func:`~engine.portfolio.performance.compute_report` derives from the curve is then unchanged:

* the daily closes, and so the return series, Sharpe, Sortino, total return and CAGR, because each day's close and
  the curve's first and last points are kept, and a curve is only compacted once it spans two days (the daily
  sampling, which stays in force since compaction keeps the span);
* the maximum drawdown, as a fraction and in money. Take the point ``j`` where the deepest fall ends and the peak
  ``P`` before it. If ``P`` lies on an earlier day it is that day's highest point (kept); the lowest point ``m`` of
  ``j``'s day is kept, and its drawdown against the kept peaks, ``1 - m / P'`` with ``P' >= P`` and ``m <= e_j``,
  is at least ``j``'s. If ``P`` lies on ``j``'s own day, the day's own deepest fall, kept, is at least as deep. A
  thinned curve never shows a deeper fall than the full one (its running peaks can only be lower), so the maxima
  are equal. The same holds for the money drawdown (``P' - m >= P - e_j``).

Only the last point per timestamp counts for those figures (a multi-pair run records equity once per candle per
pair), so repeated timestamps inside the compacted days are first reduced to their last point; the curve's very
first point is kept as it is (it is the opening equity of an account that starts holding coin). The current day,
which may still grow, is left whole. A test checks the equalities above against the full curve on generated
curves (``tests/portfolio/test_curve_compaction.py``).
"""

from collections.abc import Sequence
from decimal import Decimal, localcontext

from engine.portfolio.equity import DAY_NS, NATIVE_FALLBACK_SPAN_NS

__all__ = ["MAX_KEPT_PER_DAY", "compact", "day_of"]

MAX_KEPT_PER_DAY = 8


def day_of(ts_ns: int) -> int:
    """The UTC day a point closes (points stamped at 00:00 belong to the day ending then)."""
    return (ts_ns - 1) // DAY_NS


def compact(ts_ns: Sequence[int], equity: Sequence[Decimal]) -> tuple[list[int], list[Decimal]] | None:
    """The curve with its complete days thinned as the module describes, or ``None`` when nothing would go (the
    curve spans under two days, or its complete days already hold no more than the points kept)."""
    size = len(ts_ns)
    if size < 3 or ts_ns[-1] - ts_ns[0] < NATIVE_FALLBACK_SPAN_NS:
        return None
    current_day = day_of(ts_ns[-1])
    # Complete days: from index 1 up to (not including) the first point of the current day.
    end = size - 1
    while end > 1 and day_of(ts_ns[end - 1]) >= current_day:
        end -= 1
    if end - 1 <= MAX_KEPT_PER_DAY:
        return None
    kept_ts = [ts_ns[0]]
    kept_eq = [equity[0]]
    index = 1
    while index < end:
        day = day_of(ts_ns[index])
        stop = index
        while stop < end and day_of(ts_ns[stop]) == day:
            stop += 1
        # The day's points, one per timestamp (the last given for it).
        day_ts: list[int] = []
        day_eq: list[Decimal] = []
        for i in range(index, stop):
            if day_ts and ts_ns[i] == day_ts[-1]:
                day_eq[-1] = equity[i]
            else:
                day_ts.append(ts_ns[i])
                day_eq.append(equity[i])
        for i in _kept_of_day(day_eq):
            kept_ts.append(day_ts[i])
            kept_eq.append(day_eq[i])
        index = stop
    if len(kept_ts) >= end:
        return None
    kept_ts.extend(ts_ns[end:])
    kept_eq.extend(equity[end:])
    return kept_ts, kept_eq


def _kept_of_day(values: Sequence[Decimal]) -> list[int]:
    """The indexes the module keeps of one day's values, ascending."""
    count = len(values)
    if count <= MAX_KEPT_PER_DAY:
        return list(range(count))
    high = low = 0
    peak = 0  # the running peak's index within the day
    frac_pair = abs_pair = (0, 0)
    frac_drop, frac_top = Decimal(0), Decimal(1)  # the deepest fraction so far, as drop / top
    abs_best = Decimal(0)
    with localcontext() as exact:
        exact.prec = 200  # differences and the cross products below are exact for any equity a run can reach
        for i in range(1, count):
            value = values[i]
            if value > values[high]:
                high = i
            if value < values[low]:
                low = i
            top = values[peak]
            if value > top:
                peak = i
                continue
            drop = top - value
            if drop > abs_best:
                abs_best, abs_pair = drop, (peak, i)
            # drop / top > frac_drop / frac_top, compared without dividing (both tops are positive).
            if top > 0 and drop * frac_top > frac_drop * top:
                frac_drop, frac_top, frac_pair = drop, top, (peak, i)
    return sorted({0, count - 1, high, low, *frac_pair, *abs_pair})
