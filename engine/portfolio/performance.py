"""Performance reports: equity-curve and round-trip statistics for a run, a strategy or a pair.

Pure functions over immutable inputs; nothing here touches a clock, a file or the network.

Sharpe / Sortino convention (shown to users with every ratio; details in :mod:`engine.portfolio.equity`):
equity resampled to daily UTC closes (last equity at or before each UTC midnight, forward-filled),
simple daily returns, risk-free rate 0, annualised with ``sqrt(365)`` because crypto trades every day;
Sharpe uses the sample standard deviation, Sortino the downside deviation ``sqrt(mean(min(r, 0)^2))``
over all returns.
Curves spanning less than two days fall back to their native median sampling interval, annualised with
``sqrt(seconds_per_year / interval)``; ``PerformanceReport.return_interval`` says which (``"1d"``,
``"3600s"``...) and ``periods_per_year`` the factor P behind ``sqrt(P)``. The curve has one point per timestamp,
the last (a multi-pair run records equity once per candle per pair): repeated timestamps never make a return, a
drawdown or the opening equity.

CAGR: ``(end_equity / start_equity) ** (365 days / span) - 1``, ``span`` from the curve's first to its last
timestamp (``span_days``).

When annualised figures are n/a: Sharpe, Sortino and CAGR are ``None`` unless the curve spans at least two days
**and** has at least 30 returns at its sampling (:data:`MIN_ANNUALISED_RETURNS`), i.e. about a month of daily
closes; ``annualised_note`` then says why (empty when all three hold). The reason is the error of the estimate:
an annualised Sharpe ratio's standard error is about ``sqrt((1 + SR^2 / 2) / years)`` whatever the sampling, so
12 hours of one-minute returns (720 of them) give ±27, and 30 daily returns still ±3.5; a return compounded to a
year from a few hours or days is an extrapolation, not a measurement. Fewer than 30 returns also leave the
deviation itself unreliable. (The bare formulas in :mod:`engine.portfolio.equity` still answer for any two
returns.)

Trade statistics: a win is ``pnl > 0``, a loss ``pnl < 0`` (break-even trades count in neither, but do count
in ``trade_count``, ``win_rate`` and ``expectancy``). ``pnl`` is net of fees; it is the account-currency
``pnl_value`` whenever that is known.

Currencies: a round trip's ``pnl``, ``fees`` and prices are in its pair's own quote asset (BTC for ETHXBT); its
``pnl_value`` and ``fees_value`` are the same figures in the account currency, each fill valued when it was booked
(see :class:`ClosedTrade`). Every money figure of a report (``realized_pnl``, ``fees_paid``, gross profit and loss,
profit factor, expectancy, averages, best and worst) adds up those account-currency values, never quote amounts of
different pairs. A trade whose value is unknown (a fill could not be priced when booked, or a row stored before
values were recorded) is left out of those figures and listed instead: ``unvalued_trades`` counts it and
``unvalued_pnl`` / ``unvalued_fees`` hold its amounts per pair, in that pair's quote asset. It still counts in
``trade_count``, ``wins`` / ``losses`` (by the sign of its quote PnL), ``win_rate`` and ``exposure``; the
averages divide by the valued trades only. For a pair quoted in the account currency the values are the quote
figures themselves, so such reports are exactly what they were before values existed.

Per-group reports (:func:`compute_group_reports`) have no equity curve of their own: a strategy's slice of a
shared account has no meaningful equity, so every curve-derived field (equity, return, drawdown, ratios) is
``None`` there, and exposure is measured against the run's span when one is given.

Money and fractions are full-precision Decimals (34 digits); round them for display only.

Errors: :class:`~engine.portfolio.equity.PerformanceError` (a ``ValueError``) for malformed input.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, localcontext
from typing import Literal

from engine.domain.money import ZERO, to_plain_str
from engine.portfolio.equity import (
    CTX,
    DAY_NS,
    NATIVE_FALLBACK_SPAN_NS,
    NS_PER_SECOND,
    SECONDS_PER_YEAR,
    EquityPoint,
    PerformanceError,
    ReturnSeries,
    RunningDrawdown,
    one_point_per_timestamp,
    require_amount,
    return_series,
    round_ratio,
    sharpe_ratio,
    sortino_ratio,
)

__all__ = [
    "MIN_ANNUALISED_RETURNS",
    "MIN_ANNUALISED_SPAN_NS",
    "ClosedTrade",
    "EquityPoint",
    "GroupKey",
    "PerformanceError",
    "PerformanceReport",
    "RunningDrawdown",
    "compute_group_reports",
    "compute_report",
    "compute_trade_report",
    "exposure_fraction",
    "group_trades",
]

GroupKey = Literal["strategy", "pair"]

MIN_ANNUALISED_RETURNS = 30
"""Fewest returns (at the reported sampling) behind a Sharpe, Sortino or CAGR figure."""
MIN_ANNUALISED_SPAN_NS = NATIVE_FALLBACK_SPAN_NS
"""Shortest curve (two days) with annualised figures: shorter ones are sampled at their native interval, whose
many returns do not make a year's estimate any less extrapolated."""
_NS_PER_YEAR = Decimal(SECONDS_PER_YEAR * NS_PER_SECOND)
_NO_CURVE_NOTE = (
    "Sharpe, Sortino and CAGR n/a: no equity curve (a strategy's or a pair's share of the account has none)"
)


# The default of ClosedTrade's value fields: "the quote figures themselves". A NaN, so never a legitimate value
# (require_amount refuses NaN); recognised by identity and replaced in __post_init__.
_SAME_AS_QUOTE = Decimal("NaN")


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """One completed round trip; timestamps are UTC ns.

    Attributes:
        qty, entry_price, exit_price: in the pair's own terms (prices in its quote asset).
        pnl: net of ``fees``, in the pair's quote asset (BTC for ETHXBT).
        fees: in the pair's quote asset.
        pnl_value: ``pnl`` in the account currency: the sum over the trip's fills of each fill's realized PnL
            minus its fee, each converted at the marks when that fill was booked. ``None`` when unknown (a fill
            could not be priced then, or the trip was stored before values were recorded).
        fees_value: ``fees`` in the account currency, the same way; ``None`` exactly when ``pnl_value`` is.
        value_currency: the account currency of the two value fields (``None``: not stated).

    Left out, the value fields are ``pnl`` and ``fees`` themselves (the same objects): the trip of a pair quoted
    in the account currency. Pass ``None`` for both to say they are unknown.
    """

    pair: str
    strategy: str
    entry_ts_ns: int
    exit_ts_ns: int
    qty: Decimal
    entry_price: Decimal
    exit_price: Decimal
    pnl: Decimal
    fees: Decimal
    pnl_value: Decimal | None = _SAME_AS_QUOTE
    fees_value: Decimal | None = _SAME_AS_QUOTE
    value_currency: str | None = None

    def __post_init__(self) -> None:
        for name in ("qty", "entry_price", "exit_price", "pnl", "fees"):
            require_amount(getattr(self, name), name)
        if self.exit_ts_ns < self.entry_ts_ns:
            raise PerformanceError(f"trade exits ({self.exit_ts_ns}) before it enters ({self.entry_ts_ns})")
        if self.pnl_value is _SAME_AS_QUOTE:
            object.__setattr__(self, "pnl_value", self.pnl)
        if self.fees_value is _SAME_AS_QUOTE:
            object.__setattr__(self, "fees_value", self.fees)
        if (self.pnl_value is None) != (self.fees_value is None):
            raise PerformanceError("pnl_value and fees_value are known together or not at all")
        if self.pnl_value is not None:
            require_amount(self.pnl_value, "pnl_value")
            require_amount(self.fees_value, "fees_value")


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    """Summary statistics of a run (or of one group of its trades).

    Fractions are plain fractions (0.25 means 25 %). ``None`` means undefined or not applicable.

    Attributes:
        start_equity: opening equity (the given starting equity, else the curve's first point).
        end_equity: the curve's last equity.
        total_return: ``end_equity / start_equity - 1``; ``None`` if start is not positive.
        realized_pnl: sum of the valued closed trades' ``pnl_value`` (net of their fees), account currency.
        fees_paid: all fees paid in the run that could be valued, account currency (for a group: the sum of its
            valued trades' ``fees_value``).
        max_drawdown: largest peak-to-trough fall as a positive fraction of the peak.
        max_drawdown_abs: largest peak-to-trough fall in the account currency.
        sharpe: annualised Sharpe ratio (see module docstring), 4 places.
        sortino: annualised Sortino ratio, 4 places.
        return_interval: sampling of the returns behind the ratios: ``"1d"`` or the native median gap,
            e.g. ``"3600s"``.
        return_count: how many returns the ratios were computed from.
        trade_count: number of closed trades.
        wins: trades with ``pnl > 0``.
        losses: trades with ``pnl < 0``.
        win_rate: ``wins / trade_count``.
        gross_profit: sum of winning pnl (positive).
        gross_loss: sum of losing pnl, as a positive amount.
        profit_factor: ``gross_profit / gross_loss``, 4 places; ``None`` if there are no losses.
        expectancy: mean pnl per trade.
        avg_win: mean pnl of winning trades.
        avg_loss: mean pnl of losing trades (negative).
        exposure: fraction of the span with at least one position open (overlapping trades merged).
        best_trade: highest single-trade pnl.
        worst_trade: lowest single-trade pnl.
        unvalued_trades: closed trades whose account-currency value is unknown: left out of every money figure
            above (but counted in ``trade_count``, ``wins``, ``losses``, ``win_rate`` and ``exposure``).
        unvalued_pnl: pair -> the summed ``pnl`` of those trades, in the pair's quote asset (empty when none).
        unvalued_fees: pair -> their summed ``fees``, in the pair's quote asset.
        cagr: compound annual growth rate, ``(end_equity / start_equity) ** (365 days / span) - 1``.
        periods_per_year: P, the annualisation of the ratios (``sqrt(P)``): 365 for daily returns, else the
            returns a year of the native interval holds (525600 for ``"60s"``).
        span_days: the curve's span, first to last timestamp, in days (the CAGR's ``span``).
        annualised_note: why Sharpe, Sortino or CAGR is ``None`` (see the module docstring); empty when all hold.

    Money figures are in the account currency (see the module docstring).
    """

    start_equity: Decimal | None
    end_equity: Decimal | None
    total_return: Decimal | None
    realized_pnl: Decimal
    fees_paid: Decimal
    max_drawdown: Decimal | None
    max_drawdown_abs: Decimal | None
    sharpe: Decimal | None
    sortino: Decimal | None
    return_interval: str | None
    return_count: int
    trade_count: int
    wins: int
    losses: int
    win_rate: Decimal | None
    gross_profit: Decimal
    gross_loss: Decimal
    profit_factor: Decimal | None
    expectancy: Decimal | None
    avg_win: Decimal | None
    avg_loss: Decimal | None
    exposure: Decimal | None
    best_trade: Decimal | None
    worst_trade: Decimal | None
    unvalued_trades: int = 0
    unvalued_pnl: Mapping[str, Decimal] = field(default_factory=dict)
    unvalued_fees: Mapping[str, Decimal] = field(default_factory=dict)
    cagr: Decimal | None = None
    periods_per_year: Decimal | None = None
    span_days: Decimal | None = None
    annualised_note: str = ""

    def to_dict(self) -> dict[str, str | int | None]:
        """JSON-safe mapping of the scalar metrics: Decimals as plain strings (no exponent), counts as ints,
        undefined as None.

        The unvalued figures (:meth:`unvalued_dict`) are not in it: its keys are the same whatever the pairs.
        """
        result: dict[str, str | int | None] = {}
        for f in fields(self):
            if f.name in _UNVALUED_FIELDS:
                continue
            value = getattr(self, f.name)
            result[f.name] = to_plain_str(value) if isinstance(value, Decimal) else value
        return result

    def unvalued_dict(self) -> dict[str, dict[str, str]]:
        """``unvalued_pnl`` and ``unvalued_fees`` (pair -> plain string, in the pair's quote asset)."""
        return {
            "pnl": {pair: to_plain_str(v) for pair, v in self.unvalued_pnl.items()},
            "fees": {pair: to_plain_str(v) for pair, v in self.unvalued_fees.items()},
        }


_UNVALUED_FIELDS = frozenset({"unvalued_trades", "unvalued_pnl", "unvalued_fees"})


@dataclass(frozen=True, slots=True)
class _TradeStats:
    trade_count: int
    wins: int
    losses: int
    realized_pnl: Decimal
    fees: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    best: Decimal | None
    worst: Decimal | None
    # Of the counts above, the trades whose account-currency value is known (the money figures' divisors).
    valued_count: int
    valued_wins: int
    valued_losses: int
    unvalued_pnl: dict[str, Decimal]
    unvalued_fees: dict[str, Decimal]


def _trade_stats(trades: Iterable[ClosedTrade]) -> _TradeStats:
    """One pass over the trades: counts over all of them, money over the valued ones, in the account currency.

    Raises:
        PerformanceError: two trades' values are in different currencies (they cannot be added up).
    """
    count = wins = losses = 0
    valued = valued_wins = valued_losses = 0
    realized = fees = profit = loss = ZERO
    best: Decimal | None = None
    worst: Decimal | None = None
    currency: str | None = None
    unvalued_pnl: dict[str, Decimal] = {}
    unvalued_fees: dict[str, Decimal] = {}
    with localcontext(CTX):
        for trade in trades:
            count += 1
            pnl = trade.pnl_value
            trade_fees = trade.fees_value
            if pnl is None or trade_fees is None:
                # Unknown in the account currency: counted by its sign, its amounts listed per pair.
                pair = trade.pair
                unvalued_pnl[pair] = unvalued_pnl.get(pair, ZERO) + trade.pnl
                unvalued_fees[pair] = unvalued_fees.get(pair, ZERO) + trade.fees
                if trade.pnl > ZERO:
                    wins += 1
                elif trade.pnl < ZERO:
                    losses += 1
                continue
            if trade.value_currency is not None and trade.value_currency != currency:
                if currency is not None:
                    raise PerformanceError(f"trades valued in {currency} and {trade.value_currency} cannot be added up")
                currency = trade.value_currency
            valued += 1
            realized += pnl
            fees += trade_fees
            if pnl > ZERO:
                wins += 1
                valued_wins += 1
                profit += pnl
            elif pnl < ZERO:
                losses += 1
                valued_losses += 1
                loss -= pnl
            if best is None or pnl > best:
                best = pnl
            if worst is None or pnl < worst:
                worst = pnl
    return _TradeStats(
        count,
        wins,
        losses,
        realized,
        fees,
        profit,
        loss,
        best,
        worst,
        valued,
        valued_wins,
        valued_losses,
        unvalued_pnl,
        unvalued_fees,
    )


def exposure_fraction(trades: Iterable[ClosedTrade], start_ns: int, end_ns: int) -> Decimal | None:
    """Fraction of ``[start_ns, end_ns]`` covered by at least one trade's ``[entry, exit]`` span.

    Spans are clipped to the window and overlaps merged, so concurrent positions count once.
    O(n log n) in trades. ``None`` if the window is empty.
    """
    if end_ns <= start_ns:
        return None
    spans = sorted(
        (max(t.entry_ts_ns, start_ns), min(t.exit_ts_ns, end_ns))
        for t in trades
        if t.exit_ts_ns > start_ns and t.entry_ts_ns < end_ns
    )
    covered = 0
    run_start: int | None = None
    run_end = start_ns
    for entry, exit_ in spans:
        if run_start is None or entry > run_end:
            if run_start is not None:
                covered += run_end - run_start
            run_start, run_end = entry, exit_
        elif exit_ > run_end:
            run_end = exit_
    if run_start is not None:
        covered += run_end - run_start
    return CTX.divide(Decimal(covered), Decimal(end_ns - start_ns))


@dataclass(frozen=True, slots=True)
class _Annualised:
    """The curve's annualised figures and the sampling behind them (see the module docstring)."""

    sharpe: Decimal | None = None
    sortino: Decimal | None = None
    cagr: Decimal | None = None
    interval: str | None = None
    return_count: int = 0
    periods_per_year: Decimal | None = None
    span_days: Decimal | None = None
    note: str = _NO_CURVE_NOTE


def _annualised(series: ReturnSeries | None, span_ns: int, start: Decimal, end: Decimal) -> _Annualised:
    """Sharpe, Sortino and CAGR where they hold (the rule is in the module docstring), else ``None`` and why."""
    returns = () if series is None else series.returns
    per_year = None if series is None else series.periods_per_year
    interval = None if series is None else series.interval
    sampled = _Annualised(
        interval=interval,
        return_count=len(returns),
        periods_per_year=per_year,
        span_days=CTX.divide(Decimal(span_ns), Decimal(DAY_NS)),
    )
    not_held = "Sharpe, Sortino and CAGR n/a"
    if span_ns < MIN_ANNUALISED_SPAN_NS:
        days = f"{span_ns / DAY_NS:.2f}"
        return replace(sampled, note=f"{not_held}: the run spans {days} days, under the 2 an annualised figure needs")
    if per_year is None or not returns:
        return replace(sampled, note=f"{not_held}: the equity was not always positive, so returns are undefined")
    if len(returns) < MIN_ANNUALISED_RETURNS:
        few = f"{len(returns)} returns at {interval}, fewer than the {MIN_ANNUALISED_RETURNS}"
        return replace(sampled, note=f"{not_held}: {few} an annualised figure needs")
    sharpe = sharpe_ratio(returns, per_year)
    sortino = sortino_ratio(returns, per_year)
    notes = []
    if sharpe is None:
        notes.append("Sharpe n/a: the returns never vary")
    if sortino is None:
        notes.append("Sortino n/a: no return was negative")
    cagr: Decimal | None = None
    if start > ZERO and end > ZERO:
        with localcontext(CTX):
            cagr = (end / start) ** (_NS_PER_YEAR / Decimal(span_ns)) - 1
    elif start > ZERO:
        cagr = Decimal(-1)  # all of it lost
    else:
        notes.append("CAGR n/a: the opening equity is not positive")
    return replace(sampled, sharpe=sharpe, sortino=sortino, cagr=cagr, note="; ".join(notes))


def _report(
    stats: _TradeStats,
    *,
    fees_paid: Decimal,
    exposure: Decimal | None,
    start_equity: Decimal | None = None,
    end_equity: Decimal | None = None,
    total_return: Decimal | None = None,
    drawdown: RunningDrawdown | None = None,
    annualised: _Annualised = _Annualised(),
) -> PerformanceReport:
    with localcontext(CTX):
        count = stats.trade_count
        return PerformanceReport(
            start_equity=start_equity,
            end_equity=end_equity,
            total_return=total_return,
            realized_pnl=stats.realized_pnl,
            fees_paid=fees_paid,
            max_drawdown=None if drawdown is None else drawdown.max_drawdown,
            max_drawdown_abs=None if drawdown is None else drawdown.max_drawdown_abs,
            sharpe=annualised.sharpe,
            sortino=annualised.sortino,
            return_interval=annualised.interval,
            return_count=annualised.return_count,
            trade_count=count,
            wins=stats.wins,
            losses=stats.losses,
            win_rate=Decimal(stats.wins) / count if count else None,
            gross_profit=stats.gross_profit,
            gross_loss=stats.gross_loss,
            profit_factor=round_ratio(stats.gross_profit / stats.gross_loss) if stats.valued_losses else None,
            expectancy=stats.realized_pnl / stats.valued_count if stats.valued_count else None,
            avg_win=stats.gross_profit / stats.valued_wins if stats.valued_wins else None,
            avg_loss=-stats.gross_loss / stats.valued_losses if stats.valued_losses else None,
            exposure=exposure,
            best_trade=stats.best,
            worst_trade=stats.worst,
            unvalued_trades=count - stats.valued_count,
            unvalued_pnl=stats.unvalued_pnl,
            unvalued_fees=stats.unvalued_fees,
            cagr=annualised.cagr,
            periods_per_year=annualised.periods_per_year,
            span_days=annualised.span_days,
            annualised_note=annualised.note,
        )


def compute_report(
    curve: Sequence[EquityPoint],
    trades: Sequence[ClosedTrade],
    fees_paid: Decimal,
    starting_equity: Decimal | None = None,
) -> PerformanceReport:
    """Full report for a run: equity curve statistics plus trade statistics.

    Linear in the curve (plus sorting the trades for exposure): 50,000+ points take well under a second.

    Args:
        curve: equity points sorted by ``ts_ns``; may be empty. Of points sharing a timestamp only the last
            counts (a multi-pair run records equity once per candle per pair).
        trades: the run's closed round trips.
        fees_paid: all fees paid in the run, including those of positions still open, in the account currency
            (the portfolio's ``fees_paid``: each fee valued when paid; fees that could not be valued are not in
            it, the portfolio lists them).
        starting_equity: equity before the first point (e.g. starting capital). It opens the return series,
            is the first drawdown peak and the base of ``total_return``.

    Raises:
        PerformanceError: unsorted curve or a non-Decimal amount.
    """
    require_amount(fees_paid, "fees_paid")
    if starting_equity is not None:
        require_amount(starting_equity, "starting_equity")
    stats = _trade_stats(trades)
    curve = one_point_per_timestamp(curve)  # the account's equity at each time: the last point given for it
    if not curve:
        return _report(stats, fees_paid=fees_paid, exposure=None, start_equity=starting_equity)
    drawdown = RunningDrawdown(starting_equity)
    for point in curve:
        drawdown.update(point.equity)
    start = curve[0].equity if starting_equity is None else starting_equity
    end = curve[-1].equity
    total_return = CTX.subtract(CTX.divide(end, start), Decimal(1)) if start > ZERO else None
    span_ns = curve[-1].ts_ns - curve[0].ts_ns
    return _report(
        stats,
        fees_paid=fees_paid,
        exposure=exposure_fraction(trades, curve[0].ts_ns, curve[-1].ts_ns),
        start_equity=start,
        end_equity=end,
        total_return=total_return,
        drawdown=drawdown,
        annualised=_annualised(return_series(curve, starting_equity), span_ns, start, end),
    )


def compute_trade_report(trades: Sequence[ClosedTrade], *, span_ns: tuple[int, int] | None = None) -> PerformanceReport:
    """Trade-only report (no equity curve): curve-derived fields are ``None``.

    Args:
        trades: the trades to summarise (e.g. one strategy's).
        span_ns: ``(start, end)`` of the run, so exposure is comparable with the whole-run report;
            without it exposure is ``None``.
    """
    stats = _trade_stats(trades)
    exposure = None if span_ns is None else exposure_fraction(trades, span_ns[0], span_ns[1])
    return _report(stats, fees_paid=stats.fees, exposure=exposure)


def group_trades(trades: Iterable[ClosedTrade], key: GroupKey) -> dict[str, list[ClosedTrade]]:
    """Split trades by ``"strategy"`` or ``"pair"``; groups in first-seen order, trades in input order.

    Raises:
        PerformanceError: for any other key.
    """
    if key not in ("strategy", "pair"):
        raise PerformanceError(f"cannot group trades by {key!r}; use 'strategy' or 'pair'")
    groups: dict[str, list[ClosedTrade]] = {}
    for trade in trades:
        groups.setdefault(trade.strategy if key == "strategy" else trade.pair, []).append(trade)
    return groups


def compute_group_reports(
    trades: Iterable[ClosedTrade], key: GroupKey, *, span_ns: tuple[int, int] | None = None
) -> dict[str, PerformanceReport]:
    """One :func:`compute_trade_report` per strategy or per pair (see :func:`group_trades`)."""
    groups = group_trades(trades, key)
    return {name: compute_trade_report(group, span_ns=span_ns) for name, group in groups.items()}
