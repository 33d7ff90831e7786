"""Saved Kraken REST responses: ``/0/public/OHLC`` and ``/0/public/Trades``.

Both are ``{"error": [], "result": {"<PAIR>": [rows...], "last": ...}}``. OHLC rows are
``[int time, "open", "high", "low", "close", "vwap", "volume", int count]`` and the last one is the still-open
candle (its time is after ``last``). Trades rows are ``["price", "volume", time, "b"|"s", "m"|"l", "misc",
trade_id]`` where ``time`` is a JSON float in seconds: it is parsed as Decimal from its text and turned into
integer nanoseconds exactly, never through a binary float.
"""

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from engine.domain.market_data import NS_PER_SECOND, Candle, TradeTick
from engine.domain.money import MoneyError, parse_decimal
from engine.exchanges.replay.errors import ReplayConfigError, ReplayFormatError, ReplayOrderError
from engine.exchanges.replay.ohlcvt_csv import infer_interval_s

__all__ = ["load_kraken_result", "parse_ohlc_json", "parse_trades_json"]

_SIDES: dict[object, Literal["buy", "sell"]] = {"b": "buy", "s": "sell"}


def load_kraken_result(
    text: str | bytes, *, pair: str | None = None, source: str = "<text>"
) -> tuple[str, list[Any], Any]:
    """Decode a Kraken REST response and pick one pair's rows.

    Returns:
        ``(key, rows, last)``: the result key the rows came from, the rows, and ``result["last"]`` (or None).

    Raises:
        ReplayFormatError: not JSON, a Kraken error response, no ``result`` object, or no single pair to pick
            (``pair`` names the key to take when the result holds several).
    """
    try:
        doc = json.loads(text, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReplayFormatError(source, f"not valid JSON: {exc}") from exc
    if not isinstance(doc, Mapping):
        raise ReplayFormatError(source, 'expected a Kraken response {"error": [...], "result": {...}}')
    errors = doc.get("error")
    if errors:
        raise ReplayFormatError(source, f"the saved response is a Kraken error: {errors}")
    result = doc.get("result")
    if not isinstance(result, Mapping):
        raise ReplayFormatError(source, 'no "result" object in the response')
    keys = [k for k, v in result.items() if k != "last" and isinstance(v, list)]
    if pair is not None and pair in keys:
        key = pair
    elif len(keys) == 1:
        key = keys[0]
    else:
        raise ReplayFormatError(source, f'expected one pair\'s rows in "result", found {keys or "none"}')
    return key, result[key], result.get("last")


def parse_ohlc_json(
    text: str | bytes,
    *,
    pair: str | None = None,
    interval_s: int | None = None,
    drop_open: bool = True,
    source: str = "<text>",
) -> list[Candle]:
    """Parse a saved ``/0/public/OHLC`` response into candles in time order.

    Args:
        text: the response body.
        pair: the pair name put on the candles (and the result key to read if it is one); defaults to the key.
        interval_s: the bar length; inferred from the most common gap between rows when ``None``.
        drop_open: drop the still-open candle: the rows after ``result["last"]``, else the final row.
        source: the file name used in error messages.

    Raises:
        ReplayFormatError: malformed response or row (with its 1-based row index).
        ReplayOrderError: a row's time is not after the previous row's.
        ReplayConfigError: ``interval_s`` is given and not positive.
    """
    key, rows, last = load_kraken_result(text, pair=pair, source=source)
    label = pair or key
    prev_ts = -1
    for index, row in enumerate(rows, 1):
        if not isinstance(row, list) or len(row) < 8 or not _is_int(row[0]) or not _is_int(row[7]):
            detail = f"expected [time, o, h, l, c, vwap, volume, count], got {row!r}"
            raise ReplayFormatError(source, detail, row=index)
        if row[0] <= prev_ts:
            raise ReplayOrderError(source, f"time {row[0]} is not after the previous row's {prev_ts}", row=index)
        prev_ts = row[0]
    if drop_open and rows:
        rows = [r for r in rows if r[0] <= last] if _is_int(last) else rows[:-1]
    if interval_s is None:
        interval_s = infer_interval_s([r[0] for r in rows])
        if interval_s is None:
            raise ReplayFormatError(source, "cannot infer the bar interval from fewer than two rows; pass it")
    elif isinstance(interval_s, bool) or not isinstance(interval_s, int) or interval_s <= 0:
        raise ReplayConfigError(f"interval_s must be a positive int, got {interval_s!r}")
    candles: list[Candle] = []
    for index, row in enumerate(rows, 1):
        try:
            o = parse_decimal(row[1], field="open")
            h = parse_decimal(row[2], field="high")
            lo = parse_decimal(row[3], field="low")
            c = parse_decimal(row[4], field="close")
            vol = parse_decimal(row[6], field="volume")
        except MoneyError as exc:
            raise ReplayFormatError(source, str(exc), row=index) from exc
        if not (lo <= o <= h and lo <= c <= h and vol >= 0 and row[7] >= 0):
            raise ReplayFormatError(source, f"inconsistent bar {row!r}", row=index)
        candles.append(Candle(label, row[0] * NS_PER_SECOND, interval_s, o, h, lo, c, vol, row[7]))
    return candles


def parse_trades_json(text: str | bytes, *, pair: str | None = None, source: str = "<text>") -> list[TradeTick]:
    """Parse a saved ``/0/public/Trades`` response into trades in time order.

    Args:
        text: the response body.
        pair: the pair name put on the trades (and the result key to read if it is one); defaults to the key.
        source: the file name used in error messages.

    Raises:
        ReplayFormatError: malformed response or row (with its 1-based row index).
        ReplayOrderError: a trade's time is before the previous trade's (equal times are fine).
    """
    key, rows, _ = load_kraken_result(text, pair=pair, source=source)
    label = pair or key
    trades: list[TradeTick] = []
    prev_ns = -1
    for index, row in enumerate(rows, 1):
        try:
            price = parse_decimal(row[0], field="price")
            qty = parse_decimal(row[1], field="volume")
            ts_ns = _seconds_to_ns(row[2])
            side = _SIDES[row[3]]
            trade_id = row[6] if len(row) > 6 else None
            if (trade_id is not None and not _is_int(trade_id)) or price <= 0 or qty <= 0:
                raise ValueError
        except (MoneyError, LookupError, TypeError, ValueError) as exc:
            detail = f"expected [price, volume, time, b|s, m|l, misc, trade_id], got {row!r}"
            raise ReplayFormatError(source, detail, row=index) from exc
        if ts_ns < prev_ns:
            detail = f"time {ts_ns} ns is before the previous trade's {prev_ns} ns"
            raise ReplayOrderError(source, detail, row=index)
        prev_ns = ts_ns
        trades.append(TradeTick(label, ts_ns, price, qty, side, trade_id))
    return trades


def _seconds_to_ns(value: object) -> int:
    """Unix seconds (an int, or the Decimal that ``parse_float=Decimal`` made of the JSON text) to int ns."""
    if _is_int(value):
        assert isinstance(value, int)
        return value * NS_PER_SECOND
    if isinstance(value, Decimal) and value.is_finite() and value >= 0:
        # scaleb only moves the exponent, so this is exact; digits past the nanosecond are truncated.
        return int(value.scaleb(9))
    raise ValueError(f"bad time {value!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
