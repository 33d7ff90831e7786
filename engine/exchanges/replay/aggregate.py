"""Trades to candles, the way Kraken builds its own OHLC.

A trade belongs to the bar whose window ``[start, start + interval)`` holds its timestamp, windows aligned to
the unix epoch. open/close are the first/last trade's price, high/low the extremes, volume the sum of
quantities and ``trades`` the count. This reproduces Kraken's ``/0/public/OHLC`` bars exactly for windows that
the trades cover entirely (checked on the captures in the project's reference data). The first and last
candles are partial when the trades start or stop mid-window.
"""

from collections.abc import Iterable
from decimal import Decimal

from engine.domain.market_data import NS_PER_SECOND, Candle, TradeTick
from engine.exchanges.replay.errors import ReplayConfigError, ReplayOrderError

__all__ = ["aggregate_trades"]

_ZERO = Decimal(0)


def aggregate_trades(
    trades: Iterable[TradeTick],
    interval_s: int,
    *,
    fill_gaps: bool = False,
    pair: str | None = None,
) -> list[Candle]:
    """Aggregate time-ordered trades into candles of ``interval_s`` seconds.

    Args:
        trades: trades in time order (equal timestamps allowed).
        interval_s: the bar length in seconds.
        fill_gaps: emit bars for windows without trades between the first and the last trade, as Kraken does:
            open = high = low = close = the previous close, volume 0, trades 0. Otherwise they are skipped.
        pair: the pair put on the candles; defaults to each trade's own pair.

    Raises:
        ReplayConfigError: ``interval_s`` is not a positive int.
        ReplayOrderError: a trade is earlier than the one before it.
    """
    if isinstance(interval_s, bool) or not isinstance(interval_s, int) or interval_s <= 0:
        raise ReplayConfigError(f"interval_s must be a positive int, got {interval_s!r}")
    span = interval_s * NS_PER_SECOND
    candles: list[Candle] = []
    append = candles.append
    label = ""
    start = 0
    prev_ns = -1
    o = h = lo = c = vol = _ZERO
    count = 0
    for index, trade in enumerate(trades, 1):
        ts = trade.ts_ns
        price = trade.price
        if ts < prev_ns:
            raise ReplayOrderError("<trades>", f"time {ts} ns is before the previous {prev_ns} ns", row=index)
        prev_ns = ts
        if count and ts < start + span:
            if price > h:
                h = price
            elif price < lo:
                lo = price
            c = price
            vol += trade.qty
            count += 1
            continue
        if count:
            append(Candle(label, start, interval_s, o, h, lo, c, vol, count))
        new_start = ts - ts % span
        if fill_gaps and count:
            for gap_start in range(start + span, new_start, span):
                append(Candle(label, gap_start, interval_s, c, c, c, c, _ZERO, 0))
        start = new_start
        label = pair or trade.pair
        o = h = lo = c = price
        vol = trade.qty
        count = 1
    if count:
        append(Candle(label, start, interval_s, o, h, lo, c, vol, count))
    return candles
