"""Market data as the engine sees it: trades, candles, tickers and L2 book snapshots.

Immutable values with Decimal prices and integer nanosecond timestamps (UTC epoch). Every source (replayed files,
Kraken WebSocket v2, Kraken REST) produces these and nothing else reaches strategies.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, NamedTuple

__all__ = [
    "NS_PER_SECOND",
    "BookLevel",
    "BookSnapshot",
    "Candle",
    "MarketEvent",
    "Ticker",
    "TradeTick",
    "event_time_ns",
    "make_candle",
]

NS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True, slots=True)
class TradeTick:
    """One public trade. ``side`` is the taker's side."""

    pair: str
    ts_ns: int
    price: Decimal
    qty: Decimal
    side: Literal["buy", "sell"]
    trade_id: int | None = None


class Candle(NamedTuple):
    """An OHLCV bar that opened at ``ts_ns`` and lasted ``interval_s`` seconds (closed unless said otherwise).

    A named tuple: immutable, compared and hashed by value, read by field name like the other market events.
    A backtest makes one per candle, and a tuple is built by C code (:func:`make_candle`, or
    ``tuple.__new__(Candle, fields)`` over many rows) several times cheaper than a frozen dataclass, whose
    ``__init__`` stores each field through ``object.__setattr__``.
    """

    pair: str
    ts_ns: int
    interval_s: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trades: int = 0

    @property
    def close_ns(self) -> int:
        return self.ts_ns + self.interval_s * NS_PER_SECOND


_new_tuple = tuple.__new__


def make_candle(
    pair: str,
    ts_ns: int,
    interval_s: int,
    open: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: Decimal,
    trades: int,
) -> Candle:
    """``Candle(pair, ts_ns, ...)`` without the named tuple's Python-level ``__new__`` (same value)."""
    return _new_tuple(Candle, (pair, ts_ns, interval_s, open, high, low, close, volume, trades))


@dataclass(frozen=True, slots=True)
class Ticker:
    """Best bid/ask and last trade price."""

    pair: str
    ts_ns: int
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    last: Decimal


@dataclass(frozen=True, slots=True)
class BookLevel:
    price: Decimal
    qty: Decimal


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """The visible L2 book: bids best (highest) first, asks best (lowest) first."""

    pair: str
    ts_ns: int
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None


MarketEvent = TradeTick | Candle | Ticker | BookSnapshot


def event_time_ns(event: MarketEvent) -> int:
    """When ``event`` becomes known: a candle's close, any other event's own timestamp."""
    if isinstance(event, Candle):
        return event.close_ns
    return event.ts_ns
