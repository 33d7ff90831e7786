"""Kraken Spot REST, sans-I/O: request building and public (market data) response parsing.

A :class:`RestRequest` says what to send; the HTTP client sends it and hands the response text back to a
``parse_*`` function, which returns engine domain values (Decimal amounts, nanosecond timestamps) or raises a
:class:`~engine.exchanges.kraken.protocol.errors.KrakenError`. Parsers accept the raw text, bytes, or an
envelope already decoded with ``json.loads(..., parse_float=Decimal)``. Private (account) parsers live in
:mod:`engine.exchanges.kraken.protocol.rest_account`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.domain.instrument import Instrument, InstrumentError
from engine.domain.market_data import NS_PER_SECOND, BookLevel, BookSnapshot, Candle, Ticker, TradeTick
from engine.exchanges.kraken.protocol.errors import KrakenProtocolError, raise_for_envelope
from engine.exchanges.kraken.protocol.fields import (
    get_int,
    get_str,
    load_json,
    opt_int,
    to_decimal,
    to_rfc3339_ns,
    to_seconds_ns,
)
from engine.exchanges.kraken.protocol.signing import encode_form, encode_json, sign

__all__ = [
    "API_URL",
    "OhlcResult",
    "Response",
    "RestRequest",
    "ServerTime",
    "SystemStatus",
    "TradesResult",
    "envelope_result",
    "parse_asset_pairs",
    "parse_depth",
    "parse_ohlc",
    "parse_system_status",
    "parse_ticker",
    "parse_tickers",
    "parse_time",
    "parse_trades",
    "private_request",
    "public_request",
]

API_URL = "https://api.kraken.com"

Response = str | bytes | Mapping[str, Any]
"""What parsers accept: response text/bytes, or the decoded envelope (numbers as Decimal, never float)."""


@dataclass(frozen=True, slots=True)
class RestRequest:
    """One HTTP request to send as is.

    Attributes:
        method: ``GET`` (public) or ``POST`` (private).
        path: from ``/0`` on, e.g. ``/0/private/AddOrder`` (the part that is signed).
        endpoint: the bare endpoint name (``AddOrder``), for rate limiting and logs.
        query: the query string without ``?`` (public calls).
        body: the exact body string that was signed (private calls).
        headers: ``API-Key``, ``API-Sign`` and ``Content-Type`` for private calls.
        nonce: the nonce inside ``body`` (private calls).
    """

    method: Literal["GET", "POST"]
    path: str
    endpoint: str
    query: str = ""
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    nonce: int | None = None

    def url(self, base: str = API_URL) -> str:
        """The full URL, with the query string for GET requests."""
        return f"{base.rstrip('/')}{self.path}" + (f"?{self.query}" if self.query else "")


def _check_endpoint(endpoint: str) -> None:
    if not endpoint.isascii() or not endpoint.isalnum():
        raise ValueError(f"not a Kraken endpoint name: {endpoint!r}")


def public_request(endpoint: str, params: Mapping[str, object] | None = None) -> RestRequest:
    """A GET to ``/0/public/<endpoint>`` with ``params`` form-encoded into the query string."""
    _check_endpoint(endpoint)
    return RestRequest("GET", f"/0/public/{endpoint}", endpoint, query=encode_form(params or {}))


def private_request(
    endpoint: str,
    params: Mapping[str, object] | None,
    key: str,
    secret_b64: str,
    nonce: int,
    json_body: bool = True,
) -> RestRequest:
    """A signed POST to ``/0/private/<endpoint>``; ``nonce`` goes first and the body is signed as sent.

    Raises:
        KrakenFatalError: when ``secret_b64`` is not valid base64.
        TypeError: when a parameter is a float or has no exact text form.
    """
    _check_endpoint(endpoint)
    if params and "nonce" in params:
        raise ValueError("pass the nonce as the nonce argument, not in params")
    payload: dict[str, object] = {"nonce": nonce, **(params or {})}
    body = encode_json(payload) if json_body else encode_form(payload)
    path = f"/0/private/{endpoint}"
    headers = {
        "API-Key": key,
        "API-Sign": sign(secret_b64, path, nonce, body),
        "Content-Type": "application/json" if json_body else "application/x-www-form-urlencoded",
    }
    return RestRequest("POST", path, endpoint, body=body, headers=headers, nonce=nonce)


def envelope_result(response: Response, where: str) -> dict[str, Any]:
    """Decode ``response`` if needed and return the envelope's ``result`` (raising Kraken's error if any)."""
    payload = load_json(response, where) if isinstance(response, str | bytes) else response
    try:
        return raise_for_envelope(payload)
    except KrakenProtocolError as exc:
        raise KrakenProtocolError(f"{where}: {exc}", exc.errors) from exc


def _single_pair(result: Mapping[str, Any], where: str) -> tuple[str, Any]:
    keys = [k for k in result if k != "last"]
    if len(keys) != 1:
        raise KrakenProtocolError(f"{where}.result: expected exactly one pair, got {keys!r}")
    return keys[0], result[keys[0]]


def _row(value: object, size: int, where: str) -> Sequence[Any]:
    if not isinstance(value, list) or len(value) < size:
        raise KrakenProtocolError(f"{where}: expected an array of at least {size} items, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ServerTime:
    """Kraken's clock: ``unixtime`` in seconds and the RFC1123 text."""

    unixtime: int
    rfc1123: str

    @property
    def ts_ns(self) -> int:
        return self.unixtime * NS_PER_SECOND


@dataclass(frozen=True, slots=True)
class SystemStatus:
    """``status`` is ``online``, ``maintenance``, ``cancel_only`` or ``post_only``."""

    status: str
    ts_ns: int


def parse_time(response: Response) -> ServerTime:
    """Parse ``/0/public/Time``."""
    result = envelope_result(response, "Time")
    return ServerTime(get_int(result, "unixtime", "Time"), get_str(result, "rfc1123", "Time"))


def parse_system_status(response: Response) -> SystemStatus:
    """Parse ``/0/public/SystemStatus``."""
    result = envelope_result(response, "SystemStatus")
    ts_ns = to_rfc3339_ns(result.get("timestamp"), "SystemStatus.timestamp")
    return SystemStatus(get_str(result, "status", "SystemStatus"), ts_ns)


def parse_asset_pairs(response: Response) -> dict[str, Instrument]:
    """Parse ``/0/public/AssetPairs`` (``info=info``) into instruments keyed by canonical name (``BTC/USDT``).

    The WebSocket v2 symbol is built from the normalised assets (``XXBT``/``USDT`` -> ``BTC/USDT``), not from
    ``wsname``, which uses v1 naming (``XBT/USDT``) that v2 rejects.
    """
    result = envelope_result(response, "AssetPairs")
    instruments: dict[str, Instrument] = {}
    for rest_name, info in result.items():
        if not isinstance(info, Mapping):
            raise KrakenProtocolError(f"AssetPairs.{rest_name}: expected an object")
        try:
            instrument = Instrument.from_kraken(rest_name, info)
        except InstrumentError as exc:
            raise KrakenProtocolError(f"AssetPairs.{rest_name}: {exc}") from exc
        instruments[instrument.pair] = instrument
    return instruments


def _ticker(name: str, entry: object, ts_ns: int, where: str) -> Ticker:
    if not isinstance(entry, Mapping):
        raise KrakenProtocolError(f"{where}: expected an object")
    # a/b = [price, whole-lot volume, lot volume]; the lot volume is the quantity.
    ask = _row(entry.get("a"), 3, f"{where}.a")
    bid = _row(entry.get("b"), 3, f"{where}.b")
    last = _row(entry.get("c"), 1, f"{where}.c")
    return Ticker(
        pair=name,
        ts_ns=ts_ns,
        bid=to_decimal(bid[0], f"{where}.b[0]"),
        bid_qty=to_decimal(bid[2], f"{where}.b[2]"),
        ask=to_decimal(ask[0], f"{where}.a[0]"),
        ask_qty=to_decimal(ask[2], f"{where}.a[2]"),
        last=to_decimal(last[0], f"{where}.c[0]"),
    )


def parse_tickers(response: Response, *, ts_ns: int) -> dict[str, Ticker]:
    """Parse ``/0/public/Ticker`` for any number of pairs, keyed (and named) by Kraken's REST pair key.

    Args:
        response: the response.
        ts_ns: the receive time; Kraken's ticker carries no timestamp.
    """
    result = envelope_result(response, "Ticker")
    return {name: _ticker(name, entry, ts_ns, f"Ticker.{name}") for name, entry in result.items()}


def parse_ticker(response: Response, *, ts_ns: int, pair: str | None = None) -> Ticker:
    """Parse a one-pair ``/0/public/Ticker`` response, naming it ``pair`` (default: Kraken's key)."""
    result = envelope_result(response, "Ticker")
    name, entry = _single_pair(result, "Ticker")
    return _ticker(pair or name, entry, ts_ns, f"Ticker.{name}")


@dataclass(frozen=True, slots=True)
class OhlcResult:
    """Committed candles, the still-open one (the last row), and ``last`` (``since`` for the next poll)."""

    candles: list[Candle]
    current: Candle | None
    last: int


def parse_ohlc(response: Response, *, interval_min: int, pair: str | None = None) -> OhlcResult:
    """Parse ``/0/public/OHLC`` rows ``[time, open, high, low, close, vwap, volume, count]``.

    Args:
        response: the response.
        interval_min: the requested interval in minutes (rows do not carry it).
        pair: the name given to candles (default: Kraken's key).
    """
    result = envelope_result(response, "OHLC")
    name, rows = _single_pair(result, "OHLC")
    if not isinstance(rows, list):
        raise KrakenProtocolError(f"OHLC.{name}: expected an array of rows")
    label = pair or name
    candles: list[Candle] = []
    for i, raw in enumerate(rows):
        where = f"OHLC.{name}[{i}]"
        row = _row(raw, 8, where)
        candles.append(
            Candle(
                pair=label,
                ts_ns=to_seconds_ns(row[0], f"{where}[0]"),
                interval_s=interval_min * 60,
                open=to_decimal(row[1], f"{where}.open"),
                high=to_decimal(row[2], f"{where}.high"),
                low=to_decimal(row[3], f"{where}.low"),
                close=to_decimal(row[4], f"{where}.close"),
                volume=to_decimal(row[6], f"{where}.volume"),
                trades=int(to_decimal(row[7], f"{where}.count")),
            )
        )
    last = opt_int(result, "last", "OHLC")
    if last is None:
        raise KrakenProtocolError("OHLC.last: missing")
    current = candles.pop() if candles else None
    return OhlcResult(candles, current, last)


def _levels(raw: object, where: str) -> tuple[tuple[BookLevel, ...], int]:
    if not isinstance(raw, list):
        raise KrakenProtocolError(f"{where}: expected an array")
    levels: list[BookLevel] = []
    newest = 0
    for i, item in enumerate(raw):
        row = _row(item, 3, f"{where}[{i}]")
        levels.append(BookLevel(to_decimal(row[0], f"{where}[{i}].price"), to_decimal(row[1], f"{where}[{i}].qty")))
        newest = max(newest, to_seconds_ns(row[2], f"{where}[{i}].timestamp"))
    return tuple(levels), newest


def parse_depth(response: Response, *, pair: str | None = None, ts_ns: int | None = None) -> BookSnapshot:
    """Parse ``/0/public/Depth`` into a book snapshot (bids and asks best first, as Kraken sends them).

    ``ts_ns`` defaults to the newest level timestamp.
    """
    result = envelope_result(response, "Depth")
    name, entry = _single_pair(result, "Depth")
    if not isinstance(entry, Mapping):
        raise KrakenProtocolError(f"Depth.{name}: expected an object")
    bids, bids_ts = _levels(entry.get("bids"), f"Depth.{name}.bids")
    asks, asks_ts = _levels(entry.get("asks"), f"Depth.{name}.asks")
    return BookSnapshot(pair or name, ts_ns if ts_ns is not None else max(bids_ts, asks_ts), bids, asks)


@dataclass(frozen=True, slots=True)
class TradesResult:
    """Public trades, oldest first, and ``last`` (nanoseconds; the ``since`` for the next poll)."""

    trades: list[TradeTick]
    last: int


_SIDES: dict[str, Literal["buy", "sell"]] = {"b": "buy", "s": "sell"}


def parse_trades(response: Response, *, pair: str | None = None) -> TradesResult:
    """Parse ``/0/public/Trades`` rows ``[price, volume, time, b|s, m|l, misc, trade_id]``."""
    result = envelope_result(response, "Trades")
    name, rows = _single_pair(result, "Trades")
    if not isinstance(rows, list):
        raise KrakenProtocolError(f"Trades.{name}: expected an array of rows")
    label = pair or name
    trades: list[TradeTick] = []
    for i, raw in enumerate(rows):
        where = f"Trades.{name}[{i}]"
        row = _row(raw, 4, where)
        side = _SIDES.get(row[3]) if isinstance(row[3], str) else None
        if side is None:
            raise KrakenProtocolError(f"{where}.side: expected 'b' or 's', got {row[3]!r}")
        trade_id = row[6] if len(row) > 6 and isinstance(row[6], int) and not isinstance(row[6], bool) else None
        trades.append(
            TradeTick(
                pair=label,
                ts_ns=to_seconds_ns(row[2], f"{where}.time"),
                price=to_decimal(row[0], f"{where}.price"),
                qty=to_decimal(row[1], f"{where}.volume"),
                side=side,
                trade_id=trade_id,
            )
        )
    last = opt_int(result, "last", "Trades")
    if last is None:
        raise KrakenProtocolError("Trades.last: missing")
    return TradesResult(trades, last)
