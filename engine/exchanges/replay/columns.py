"""Candles kept column by column and turned into :class:`Candle` objects only when they are read.

A replayed file of 50k candles held as 50k ``Candle`` objects costs the process more than their memory: each one
is tracked by the cyclic garbage collector, so every full collection during the run walks all of them (tens of
milliseconds each on a 50k-candle backtest). Columns of Decimals and ints are seven lists whose items the
collector never visits; a candle object exists only while the engine looks at it.

Reading the same index twice gives two equal, distinct objects.
"""

from collections.abc import Iterator, Sequence
from decimal import Decimal
from itertools import islice, repeat
from typing import overload

from engine.domain.market_data import Candle, make_candle

__all__ = ["CandleColumns"]

_new_tuple = tuple.__new__


class CandleColumns(Sequence[Candle]):
    """Closed candles of one pair and interval, in time order, stored as parallel columns.

    Attributes:
        pair: the pair of every candle.
        interval_s: the bar length of every candle.
        ts_ns, open, high, low, close, volume, trades: one entry per candle (do not mutate).
    """

    __slots__ = ("close", "high", "interval_s", "low", "open", "pair", "trades", "ts_ns", "volume")

    def __init__(
        self,
        pair: str,
        interval_s: int,
        ts_ns: list[int],
        open: list[Decimal],
        high: list[Decimal],
        low: list[Decimal],
        close: list[Decimal],
        volume: list[Decimal],
        trades: list[int],
    ) -> None:
        size = len(ts_ns)
        if any(len(column) != size for column in (open, high, low, close, volume, trades)):
            raise ValueError("candle columns must have the same length")
        self.pair = pair
        self.interval_s = interval_s
        self.ts_ns = ts_ns
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.trades = trades

    @classmethod
    def from_candles(cls, candles: Sequence[Candle], *, pair: str, interval_s: int) -> "CandleColumns":
        """Columns holding ``candles`` (which must all be of ``pair`` and ``interval_s``)."""
        if any(c.pair != pair or c.interval_s != interval_s for c in candles):
            raise ValueError(f"every candle must be of {pair} and {interval_s} s")
        return cls(
            pair,
            interval_s,
            [c.ts_ns for c in candles],
            [c.open for c in candles],
            [c.high for c in candles],
            [c.low for c in candles],
            [c.close for c in candles],
            [c.volume for c in candles],
            [c.trades for c in candles],
        )

    def __len__(self) -> int:
        return len(self.ts_ns)

    @overload
    def __getitem__(self, index: int) -> Candle: ...

    @overload
    def __getitem__(self, index: slice) -> list[Candle]: ...

    def __getitem__(self, index: int | slice) -> Candle | list[Candle]:
        if isinstance(index, slice):
            return [self._at(i) for i in range(*index.indices(len(self)))]
        return self._at(index)

    def _at(self, i: int) -> Candle:
        return make_candle(
            self.pair,
            self.ts_ns[i],
            self.interval_s,
            self.open[i],
            self.high[i],
            self.low[i],
            self.close[i],
            self.volume[i],
            self.trades[i],
        )

    def __iter__(self) -> Iterator[Candle]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[Candle]:
        """The candles from index ``start`` on (``start`` in ``0..len(self)``), made one at a time."""
        # zip builds each row and tuple.__new__ types it as a Candle: no Python frame per candle at all.
        rows = zip(
            repeat(self.pair),
            islice(self.ts_ns, start, None),
            repeat(self.interval_s),
            islice(self.open, start, None),
            islice(self.high, start, None),
            islice(self.low, start, None),
            islice(self.close, start, None),
            islice(self.volume, start, None),
            islice(self.trades, start, None),
        )
        return map(_new_tuple, repeat(Candle), rows)

    def close_times_ns(self) -> list[int]:
        """When each candle becomes known (its close), index for index."""
        step = self.interval_s * 1_000_000_000
        return [ts + step for ts in self.ts_ns]

    def __repr__(self) -> str:
        return f"CandleColumns({self.pair!r}, {self.interval_s} s, {len(self)} candles)"
