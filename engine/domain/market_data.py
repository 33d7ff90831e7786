"""Market data as the engine sees it: trades, candles, tickers and L2 book snapshots.

Immutable values with Decimal prices and integer nanosecond timestamps (UTC epoch). Every source (replayed files,
Kraken WebSocket v2, Kraken REST) produces these and nothing else reaches strategies.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

__all__ = [
    "NS_PER_SECOND",
    "BookLevel",
    "BookSnapshot",
    "Candle",
    "MarketEvent",
    "Ticker",
    "TradeTick",
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


@dataclass(frozen=True, slots=True)
class Candle:
    """An OHLCV bar that opened at ``ts_ns`` and lasted ``interval_s`` seconds (closed unless said otherwise)."""

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


# The member descriptors behind Candle's slots, bound once: make_candle stores through them directly.
_CANDLE_NEW = object.__new__
(
    _set_pair,
    _set_ts_ns,
    _set_interval_s,
    _set_open,
    _set_high,
    _set_low,
    _set_close,
    _set_volume,
    _set_trades,
) = (Candle.__dict__[name].__set__ for name in Candle.__dataclass_fields__)


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
    """``Candle(pair, ts_ns, ...)`` built without the dataclass ``__init__``: the same frozen value, about twice
    as fast to make. For loaders that turn whole files into candles (the replay's hot path).

    A frozen dataclass's ``__init__`` stores each field through ``object.__setattr__`` (a generic lookup per
    field); here each slot's descriptor is called directly.
    """
    candle = _CANDLE_NEW(Candle)
    _set_pair(candle, pair)
    _set_ts_ns(candle, ts_ns)
    _set_interval_s(candle, interval_s)
    _set_open(candle, open)
    _set_high(candle, high)
    _set_low(candle, low)
    _set_close(candle, close)
    _set_volume(candle, volume)
    _set_trades(candle, trades)
    return candle


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
