"""Trades to candles, one trade at a time, the way Kraken builds its ``/0/public/OHLC`` bars.

A trade belongs to the interval ``[start, start + interval)`` that holds its time, intervals aligned to the unix
epoch. A candle's open and close are its first and last trade's price, high and low the extremes, volume the sum
of the quantities and ``trades`` the count. An interval without a trade after one with a trade is a gap filler,
as Kraken's OHLC shows it: open = high = low = close = the previous close, volume 0, count 0. Before the first
trade there is no previous close, so nothing is filled there.

:class:`CandleBuilder` is sans-I/O and resumable: it is fed trades in time order (:meth:`CandleBuilder.add`) and
told when no later trade can fall into an interval any more (:meth:`CandleBuilder.close_through`); it hands back
only complete candles, and its whole state (:class:`BuilderState`) can be saved and restored between runs.
Prices and volumes stay the Decimals they were parsed as, so their text (Kraken's digits) survives.

Checked against real data: the 273 one-minute bars of the shipped Kraken OHLC capture that lie inside the span
of the shipped Trades capture are reproduced exactly (``tests/market/test_candles_from_trades.py``).
"""

from dataclasses import dataclass
from decimal import Decimal

from engine.domain.market_data import NS_PER_SECOND, Candle

__all__ = ["BuilderState", "CandleBuilder", "OpenBar", "TradeOrderError"]


class TradeOrderError(ValueError):
    """A trade falls into an interval that was already handed out (trades must come in time order)."""


@dataclass(frozen=True, slots=True)
class OpenBar:
    """The interval being built: trades seen so far, not yet known to be complete."""

    start_ns: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trades: int


@dataclass(frozen=True, slots=True)
class BuilderState:
    """Everything a :class:`CandleBuilder` needs to go on where it stopped.

    Attributes:
        next_start_ns: the start of the first interval not handed out yet (the open bar's, when there is one).
        last_close: the close of the last candle handed out or of the open bar; None before any trade (then gaps
            are not filled: there is no price to fill them with).
        bar: the open bar, or None.
    """

    next_start_ns: int
    last_close: Decimal | None = None
    bar: OpenBar | None = None


class CandleBuilder:
    """Builds ``interval_s`` candles from trades in time order; hands out complete intervals only.

    Args:
        pair: the name put on the candles.
        interval_s: the candle length in seconds.
        state: where to begin: ``BuilderState(first_start_ns)`` for a new series (trades before it are refused),
            or a state saved from :attr:`state`.
        zero_volume: the volume of a gap filler (``Decimal("0E-8")`` prints as Kraken's ``0.00000000``).

    Raises:
        ValueError: ``interval_s`` is not positive or the state's start is not on an interval boundary.
    """

    def __init__(self, pair: str, interval_s: int, state: BuilderState, *, zero_volume: Decimal = Decimal(0)) -> None:
        if isinstance(interval_s, bool) or not isinstance(interval_s, int) or interval_s <= 0:
            raise ValueError(f"interval_s must be a positive int, got {interval_s!r}")
        self.pair = pair
        self.interval_s = interval_s
        self._span = interval_s * NS_PER_SECOND
        if state.next_start_ns % self._span:
            raise ValueError(f"{state.next_start_ns} ns is not the start of a {interval_s} s interval")
        self._next = state.next_start_ns
        self._last_close = state.last_close
        self._bar = state.bar
        self._zero = zero_volume

    @property
    def state(self) -> BuilderState:
        """The builder's state now (save it to resume later)."""
        return BuilderState(self._next, self._last_close, self._bar)

    def add(self, ts_ns: int, price: Decimal, qty: Decimal) -> list[Candle]:
        """Take one trade; return the candles it completes (the open bar and any gap fillers before this trade).

        Raises:
            TradeOrderError: the trade's interval was already handed out.
        """
        return self.add_bar(ts_ns, price, price, price, price, qty, 1)

    def add_bar(
        self, ts_ns: int, open: Decimal, high: Decimal, low: Decimal, close: Decimal, volume: Decimal, trades: int
    ) -> list[Candle]:
        """Take a closed bar of a shorter interval that divides this one, opened at ``ts_ns`` (a trade is the bar
        ``(ts, price, price, price, price, qty, 1)``); return the candles it completes, as :meth:`add` does.
        Used by :mod:`engine.market.higher_candles` to build 1 h candles out of 1 min ones the same way.

        Raises:
            TradeOrderError: the bar's interval was already handed out.
        """
        start = ts_ns - ts_ns % self._span
        bar = self._bar
        done: list[Candle] = []
        if bar is not None and start == bar.start_ns:
            self._bar = OpenBar(
                start,
                bar.open,
                high if high > bar.high else bar.high,
                low if low < bar.low else bar.low,
                close,
                bar.volume + volume,
                bar.trades + trades,
            )
            self._last_close = close
            return done
        if start < self._next:
            raise TradeOrderError(
                f"a trade at {ts_ns} ns falls into an interval already complete (next is {self._next} ns)"
            )
        if bar is not None:
            done.append(self._candle(bar))
            self._next = bar.start_ns + self._span
        done.extend(self._fill(start))
        self._next = start
        self._bar = OpenBar(start, open, high, low, close, volume, trades)
        self._last_close = close
        return done

    def close_through(self, ts_ns: int) -> list[Candle]:
        """Every interval that ends at or before ``ts_ns`` is complete (no later trade can fall into it): hand
        out the open bar if it ends by then and gap fillers up to ``ts_ns``."""
        done: list[Candle] = []
        bar = self._bar
        if bar is not None:
            if bar.start_ns + self._span > ts_ns:
                return done
            done.append(self._candle(bar))
            self._bar = None
            self._next = bar.start_ns + self._span
        last_start = ts_ns - ts_ns % self._span  # the interval that is still open at ts_ns
        done.extend(self._fill(last_start))
        if self._last_close is not None:
            self._next = max(self._next, last_start)
        return done

    def _fill(self, before_ns: int) -> list[Candle]:
        """Gap fillers for every interval from the next one up to (not including) ``before_ns``."""
        close = self._last_close
        if close is None or before_ns <= self._next:
            return []
        fillers = [
            Candle(self.pair, start, self.interval_s, close, close, close, close, self._zero, 0)
            for start in range(self._next, before_ns, self._span)
        ]
        self._next = before_ns
        return fillers

    def _candle(self, bar: OpenBar) -> Candle:
        return Candle(
            self.pair, bar.start_ns, self.interval_s, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades
        )
