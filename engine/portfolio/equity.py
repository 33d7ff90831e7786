"""Equity-curve maths: incremental drawdown, daily resampling and annualised Sharpe / Sortino ratios.

Return convention (state it wherever a Sharpe or Sortino number is shown):

* One equity point per timestamp, the last given for it (:func:`one_point_per_timestamp`): a multi-pair run
  records equity once per candle per pair, so pairs whose candles close together repeat a timestamp, and only the
  equity after all of them is the account's at that time. Returns are never taken between repeated timestamps.
* The curve is resampled to **daily UTC closes**: the close of a day is the last equity at or before the
  UTC midnight that ends it (a point stamped exactly 00:00 belongs to the day ending there, like a candle
  close), forward-filled over days without points. The series opens with the curve's first equity (or the
  given opening equity) and ends with its last equity, so the partial first and last days are kept and the
  returns compound exactly to the total return.
* Returns are simple returns ``close[i] / close[i-1] - 1``; the risk-free rate is 0.
* Sharpe = ``mean(r) / stdev(r) * sqrt(P)`` with the *sample* standard deviation (n - 1).
  Sortino = ``mean(r) / dd * sqrt(P)`` with downside deviation ``dd = sqrt(mean(min(r, 0)^2))`` over all
  returns. ``P = 365`` for daily returns: crypto trades every day.
* If the curve spans less than two days, the curve's own points are used instead: returns between
  consecutive points, ``P = seconds_per_year / median_gap`` with a 365-day year. The interval used is
  reported (``"1d"`` or e.g. ``"3600s"``).
* A ratio is ``None`` when undefined: fewer than two returns, zero deviation, or a non-positive equity that
  makes a simple return meaningless. Ratios are rounded half-even to 4 places. A report asks more before it shows
  one (too few returns to mean anything: see :mod:`engine.portfolio.performance`).

All arithmetic runs in a private 34-digit decimal context so a caller's context cannot change results.

Errors::

    ValueError
    └── PerformanceError   bad input (unsorted curve, float or non-finite amount, trade exiting before entry):
                           a caller bug; fix the data, never retry.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

from engine.domain.money import ZERO, to_plain_str

__all__ = [
    "DAILY_PERIODS_PER_YEAR",
    "DAY_NS",
    "NATIVE_FALLBACK_SPAN_NS",
    "SECONDS_PER_YEAR",
    "EquityPoint",
    "PerformanceError",
    "ReturnSeries",
    "RunningDrawdown",
    "daily_closes",
    "one_point_per_timestamp",
    "return_series",
    "round_ratio",
    "sharpe_ratio",
    "sortino_ratio",
]

NS_PER_SECOND = 1_000_000_000
DAY_NS = 86_400 * NS_PER_SECOND
SECONDS_PER_YEAR = 365 * 86_400
DAILY_PERIODS_PER_YEAR = Decimal(365)
NATIVE_FALLBACK_SPAN_NS = 2 * DAY_NS
"""Curves spanning less than this use their native sampling interval instead of daily closes."""

# Wider than the default 28 digits so quantising large ratios to 4 places stays exact; private so a caller's
# thread-local context never changes a report.
CTX = Context(prec=34)
_RATIO_QUANTUM = Decimal("0.0001")
ONE = Decimal(1)


class PerformanceError(ValueError):
    """Input to a performance computation is malformed (a caller bug, not a market condition)."""


def require_amount(value: object, field: str) -> Decimal:
    """Return ``value`` if it is a finite Decimal, else raise :class:`PerformanceError` (floats refused)."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise PerformanceError(f"{field}: {value!r} must be a finite Decimal")
    return value


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """Total account equity (quote currency) marked at ``ts_ns`` (UTC epoch nanoseconds)."""

    ts_ns: int
    equity: Decimal

    def __post_init__(self) -> None:
        require_amount(self.equity, "equity")


def round_ratio(value: Decimal) -> Decimal:
    """Round a ratio half-even to 4 places; absurdly large values (> 1e24) are returned unrounded."""
    if value.adjusted() >= 24:
        return value
    return value.quantize(_RATIO_QUANTUM, rounding=ROUND_HALF_EVEN, context=CTX)


class RunningDrawdown:
    """O(1)-per-update drawdown tracker for a live equity stream.

    Drawdown at a point is ``(peak - equity) / peak`` where ``peak`` is the highest equity seen so far (the
    starting equity counts); it exceeds 1 only if equity goes negative. The fraction is reported as 0 while
    the peak is not positive (undefined there); the absolute drawdown ``peak - equity`` is always tracked.
    The maximum fraction and the maximum absolute drawdown are tracked separately: they can occur at
    different points.
    """

    __slots__ = ("_current", "_current_abs", "_max", "_max_abs", "_peak")

    def __init__(self, starting_equity: Decimal | None = None) -> None:
        """Start empty, or with ``starting_equity`` as the first peak."""
        self._peak: Decimal | None = None
        self._current = ZERO
        self._current_abs = ZERO
        self._max = ZERO
        self._max_abs = ZERO
        if starting_equity is not None:
            self.update(starting_equity)

    def update(self, equity: Decimal) -> Decimal:
        """Feed the latest equity; return the current drawdown as a non-negative fraction of the peak."""
        require_amount(equity, "equity")
        peak = self._peak
        if peak is None or equity > peak:
            self._peak = equity
            self._current = ZERO
            self._current_abs = ZERO
            return ZERO
        drop = CTX.subtract(peak, equity)
        self._current_abs = drop
        self._current = CTX.divide(drop, peak) if peak > ZERO else ZERO
        if drop > self._max_abs:
            self._max_abs = drop
        if self._current > self._max:
            self._max = self._current
        return self._current

    @property
    def peak(self) -> Decimal | None:
        """Highest equity seen, or ``None`` before the first update."""
        return self._peak

    @property
    def current(self) -> Decimal:
        """Current drawdown as a fraction of the peak (0 at a new high)."""
        return self._current

    @property
    def current_abs(self) -> Decimal:
        """Current drawdown in quote currency (``peak - equity``)."""
        return self._current_abs

    @property
    def max_drawdown(self) -> Decimal:
        """Largest drawdown fraction seen so far."""
        return self._max

    @property
    def max_drawdown_abs(self) -> Decimal:
        """Largest absolute drawdown seen so far (quote currency)."""
        return self._max_abs


@dataclass(frozen=True, slots=True)
class ReturnSeries:
    """Simple returns plus the sampling they were taken at.

    Attributes:
        returns: simple returns, oldest first.
        interval: ``"1d"`` for daily UTC closes, else the native median gap such as ``"3600s"``.
        periods_per_year: annualisation factor P (ratios are scaled by ``sqrt(P)``).
    """

    returns: tuple[Decimal, ...]
    interval: str
    periods_per_year: Decimal


def _check_sorted(previous_ts: int, ts: int) -> None:
    if ts < previous_ts:
        raise PerformanceError(f"equity curve not sorted by time: {ts} after {previous_ts}")


def one_point_per_timestamp(curve: Sequence[EquityPoint]) -> list[EquityPoint]:
    """``curve`` (sorted by time) with one point per timestamp: the last one given for it. Linear.

    Raises:
        PerformanceError: if the curve is not sorted by ``ts_ns``.
    """
    kept: list[EquityPoint] = []
    for point in curve:
        if kept and point.ts_ns <= kept[-1].ts_ns:
            _check_sorted(kept[-1].ts_ns, point.ts_ns)
            kept[-1] = point
        else:
            kept.append(point)
    return kept


def daily_closes(curve: Sequence[EquityPoint], opening: Decimal | None = None) -> list[Decimal]:
    """Resample ``curve`` (sorted by time) to daily UTC closes, opening value first.

    The first value is ``opening`` if given, else the first point's equity; then one close per UTC midnight
    after the first point and before the last (last equity at or before it, forward-filled); then the last
    equity (the close of the final, possibly partial, day). Linear in points plus days.

    Raises:
        PerformanceError: if the curve is not sorted by ``ts_ns``.
    """
    if not curve:
        return []
    first = curve[0]
    closes = [first.equity if opening is None else opening]
    next_boundary = (first.ts_ns // DAY_NS + 1) * DAY_NS
    last_ts = first.ts_ns
    last_equity = first.equity
    for index in range(1, len(curve)):
        point = curve[index]
        _check_sorted(last_ts, point.ts_ns)
        while point.ts_ns > next_boundary:
            closes.append(last_equity)
            next_boundary += DAY_NS
        last_ts = point.ts_ns
        last_equity = point.equity
    closes.append(last_equity)
    return closes


def _simple_returns(values: Sequence[Decimal]) -> tuple[Decimal, ...] | None:
    """Consecutive simple returns, or ``None`` if a base value is not positive."""
    returns: list[Decimal] = []
    for index in range(1, len(values)):
        base = values[index - 1]
        if base <= ZERO:
            return None
        returns.append(CTX.subtract(CTX.divide(values[index], base), ONE))
    return tuple(returns)


def _median_gap_ns(curve: Sequence[EquityPoint]) -> Decimal:
    gaps = sorted(curve[i].ts_ns - curve[i - 1].ts_ns for i in range(1, len(curve)))
    middle = len(gaps) // 2
    if len(gaps) % 2:
        return Decimal(gaps[middle])
    return CTX.divide(Decimal(gaps[middle - 1] + gaps[middle]), Decimal(2))


def return_series(curve: Sequence[EquityPoint], opening: Decimal | None = None) -> ReturnSeries | None:
    """Pick the return sampling described in the module docstring and compute the returns.

    Args:
        curve: equity points sorted by time; of repeated timestamps only the last point counts.
        opening: equity just before the first point (e.g. the starting capital); opens the series.

    Returns:
        The series, or ``None`` when no interval can be defined (fewer than two points in total, or a native
        median gap of zero). ``returns`` is empty when a non-positive equity makes simple returns meaningless.

    Raises:
        PerformanceError: if the curve is not sorted by ``ts_ns``.
    """
    curve = one_point_per_timestamp(curve)
    if not curve or (len(curve) < 2 and opening is None):
        return None
    span = curve[-1].ts_ns - curve[0].ts_ns
    if span >= NATIVE_FALLBACK_SPAN_NS:
        closes = daily_closes(curve, opening)
        return ReturnSeries(_simple_returns(closes) or (), "1d", DAILY_PERIODS_PER_YEAR)
    for index in range(1, len(curve)):
        _check_sorted(curve[index - 1].ts_ns, curve[index].ts_ns)
    if len(curve) < 2:
        return None
    gap_ns = _median_gap_ns(curve)
    if gap_ns <= ZERO:
        return None
    values = [point.equity for point in curve]
    if opening is not None:
        values.insert(0, opening)
    per_year = CTX.divide(Decimal(SECONDS_PER_YEAR * NS_PER_SECOND), gap_ns)
    interval = to_plain_str(CTX.divide(gap_ns, Decimal(NS_PER_SECOND))) + "s"
    return ReturnSeries(_simple_returns(values) or (), interval, per_year)


def _mean(values: Sequence[Decimal]) -> Decimal:
    with localcontext(CTX):
        return sum(values, ZERO) / len(values)


def sharpe_ratio(returns: Sequence[Decimal], periods_per_year: Decimal) -> Decimal | None:
    """Annualised Sharpe ratio (risk-free 0, sample stdev), 4 places; ``None`` if undefined."""
    if len(returns) < 2:
        return None
    with localcontext(CTX):
        mean = _mean(returns)
        squares = sum(((r - mean) * (r - mean) for r in returns), ZERO)
        deviation = (squares / (len(returns) - 1)).sqrt()
        if deviation == ZERO:
            return None
        return round_ratio(mean / deviation * periods_per_year.sqrt())


def sortino_ratio(returns: Sequence[Decimal], periods_per_year: Decimal) -> Decimal | None:
    """Annualised Sortino ratio (downside deviation over all returns), 4 places; ``None`` if undefined."""
    if len(returns) < 2:
        return None
    with localcontext(CTX):
        downside = sum((r * r for r in returns if r < ZERO), ZERO)
        deviation = (downside / len(returns)).sqrt()
        if deviation == ZERO:
            return None
        return round_ratio(_mean(returns) / deviation * periods_per_year.sqrt())
