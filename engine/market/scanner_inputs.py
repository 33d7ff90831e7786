"""The scanner's inputs from what Kraken and the replay give: Ticker entries, candles, instruments.

Kraken's Ticker entry (``/0/public/Ticker``; ``../shared/kraken/REFERENCE.md`` §2 and the OpenAPI schema
``AssetTickerInfo``), every number sent as text::

    a = [ask price, whole-lot volume, lot volume]     b = [bid price, whole-lot volume, lot volume]
    c = [last trade price, its lot volume]            v = [volume today, volume last 24 h]   (base currency)
    p = [VWAP today, VWAP last 24 h]                  t = [trades today, trades last 24 h]   (integers)
    l = [low today, low last 24 h]                    h = [high today, high last 24 h]
    o = today's opening price (00:00 UTC)

"Today" starts at midnight UTC; the scanner uses the rolling last 24 h. The lot volume at the best level (the
third item of ``a`` and ``b``) is the quantity there; the whole-lot volume is that quantity in whole lots.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from engine.domain.instrument import Instrument, normalize_asset
from engine.domain.market_data import NS_PER_SECOND, Candle
from engine.exchanges.replay.columns import CandleColumns
from engine.market.scanner import CandleSeries, MarketInput, ScanError, TickerStats

__all__ = [
    "QUOTE_CODES",
    "TickerError",
    "candles_from_events",
    "guess_base_quote",
    "instrument_index",
    "markets_from_tickers",
    "ticker_stats",
]

QUOTE_CODES = (
    "USDT",
    "USDC",
    "PYUSD",
    "RLUSD",
    "USDG",
    "USDQ",
    "EURQ",
    "ZUSD",
    "ZEUR",
    "ZGBP",
    "ZCAD",
    "ZJPY",
    "XXBT",
    "XETH",
    "USD",
    "EUR",
    "GBP",
    "CAD",
    "JPY",
    "CHF",
    "AUD",
    "AED",
    "DAI",
    "XBT",
    "BTC",
    "ETH",
    "DOT",
    "POL",
)
"""Quote currencies a pair name may end with when no catalogue knows it (legacy spellings included)."""


class TickerError(ScanError):
    """A Ticker entry is malformed; the message names the field."""


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise TickerError(f"{where}: expected a number, got {value!r:.40}")
    try:
        number = float(value)
    except ValueError:
        raise TickerError(f"{where}: {value!r:.40} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise TickerError(f"{where}: {value!r:.40} is not a finite, non-negative number")
    return number


def _items(entry: Mapping[str, Any], key: str, size: int, where: str) -> Sequence[Any]:
    value = entry.get(key)
    if not isinstance(value, list | tuple) or len(value) < size:
        raise TickerError(f"{where}.{key}: expected a list of at least {size} items, got {value!r:.60}")
    return value


def ticker_stats(entry: object, where: str = "Ticker") -> TickerStats:
    """One Ticker entry (Kraken's fields, see the module's docstring) as numbers.

    Raises:
        TickerError: a field is missing or not a finite, non-negative number.
    """
    if not isinstance(entry, Mapping):
        raise TickerError(f"{where}: expected an object")
    a, b = _items(entry, "a", 3, where), _items(entry, "b", 3, where)
    c = _items(entry, "c", 1, where)
    v, p, t = _items(entry, "v", 2, where), _items(entry, "p", 2, where), _items(entry, "t", 2, where)
    low, high = _items(entry, "l", 2, where), _items(entry, "h", 2, where)
    trades = t[1]
    if isinstance(trades, bool) or not isinstance(trades, int) or trades < 0:
        raise TickerError(f"{where}.t[1]: expected a whole number of trades, got {trades!r:.40}")
    return TickerStats(
        ask=_number(a[0], f"{where}.a[0]"),
        ask_volume=_number(a[2], f"{where}.a[2]"),
        bid=_number(b[0], f"{where}.b[0]"),
        bid_volume=_number(b[2], f"{where}.b[2]"),
        last=_number(c[0], f"{where}.c[0]"),
        volume_24h=_number(v[1], f"{where}.v[1]"),
        vwap_24h=_number(p[1], f"{where}.p[1]"),
        trades_24h=trades,
        low_24h=_number(low[1], f"{where}.l[1]"),
        high_24h=_number(high[1], f"{where}.h[1]"),
        open_today=_number(entry.get("o"), f"{where}.o"),
    )


def candles_from_events(candles: Sequence[Candle], keep: int | None = None) -> CandleSeries:
    """The last ``keep`` (default all) of ``candles`` (one pair, one interval, oldest first) as float64 columns.

    Raises:
        ScanError: there are no candles.
    """
    if not candles:
        raise ScanError("no candles")
    start = 0 if keep is None else max(0, len(candles) - keep)
    if isinstance(candles, CandleColumns):
        interval = candles.interval_s
        opens: Sequence[int] = candles.ts_ns[start:]
        highs: Sequence[Decimal] = candles.high[start:]
        lows: Sequence[Decimal] = candles.low[start:]
        closes: Sequence[Decimal] = candles.close[start:]
        volumes: Sequence[Decimal] = candles.volume[start:]
    else:
        tail = list(candles[start:])
        interval = tail[-1].interval_s
        opens = [c.ts_ns for c in tail]
        highs, lows = [c.high for c in tail], [c.low for c in tail]
        closes, volumes = [c.close for c in tail], [c.volume for c in tail]
    return CandleSeries(
        interval_s=interval,
        close_ns=np.asarray(opens, dtype=np.int64) + interval * NS_PER_SECOND,
        high=np.asarray(highs, dtype=np.float64),
        low=np.asarray(lows, dtype=np.float64),
        close=np.asarray(closes, dtype=np.float64),
        volume=np.asarray(volumes, dtype=np.float64),
    )


def _compact(name: str) -> str:
    return "".join(ch for ch in name.upper() if ch.isalnum())


def instrument_index(instruments: Iterable[Instrument]) -> dict[str, Instrument]:
    """Instruments under every name Kraken gives them (REST key, altname, v1 and v2 names), compacted."""
    index: dict[str, Instrument] = {}
    for inst in instruments:
        names = (inst.rest_name, inst.pair, inst.ws_symbol, getattr(inst, "altname", ""), getattr(inst, "wsname", ""))
        for name in names:
            if name:
                index.setdefault(_compact(name), inst)
    return index


def guess_base_quote(name: str) -> tuple[str, str] | None:
    """Base and quote of a pair name no catalogue knows, from the quote it ends with (``FOOUSD`` → FOO, USD;
    ``XFOOZEUR`` → XFOO, EUR), or None when it ends with no known quote or leaves no base."""
    text = name.upper()
    if "/" in text:
        base, _, quote = text.partition("/")
        return (normalize_asset(base), normalize_asset(quote)) if base and quote else None
    for quote in sorted(QUOTE_CODES, key=len, reverse=True):
        if text.endswith(quote) and len(text) > len(quote):
            return normalize_asset(text[: -len(quote)]), normalize_asset(quote)
    return None


def markets_from_tickers(
    tickers: Mapping[str, object],
    instruments: Mapping[str, Instrument],
    candles: Mapping[str, CandleSeries] | None = None,
) -> tuple[dict[str, MarketInput], list[str]]:
    """One :class:`MarketInput` per Ticker entry, named and typed by its instrument.

    Args:
        tickers: Kraken's Ticker ``result`` (REST pair key → entry).
        instruments: instruments by any of their names (see :func:`instrument_index`).
        candles: candles by REST pair key, for the pairs that have them.

    Returns:
        The inputs by REST pair key, and a line for each entry left out (malformed, or a name that tells no quote).
    """
    candles = candles or {}
    markets: dict[str, MarketInput] = {}
    problems: list[str] = []
    for key, entry in tickers.items():
        try:
            stats = ticker_stats(entry, f"Ticker.{key}")
        except TickerError as exc:
            problems.append(str(exc))
            continue
        inst = instruments.get(_compact(key))
        if inst is not None:
            markets[key] = MarketInput(inst.pair, inst.base, inst.quote, inst.status, stats, candles.get(key))
            continue
        guessed = guess_base_quote(key)
        if guessed is None:
            problems.append(f"Ticker.{key}: no catalogue knows this pair and its quote cannot be told from the name")
            continue
        base, quote = guessed
        markets[key] = MarketInput(f"{base}/{quote}", base, quote, None, stats, candles.get(key))
    return markets, problems
