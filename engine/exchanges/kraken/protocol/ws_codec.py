"""WebSocket v2 codec: decoding of incoming text into typed messages, plus the request builders.

:func:`decode` parses with ``json.loads(parse_float=Decimal)`` (integers stay ints, so a 20-digit
``connection_id`` is exact) and dispatches on ``channel`` or ``method``. A channel or method it does not
model comes back as :class:`UnknownMessage`; text that is not JSON, or a known message missing a required
field, raises :class:`~engine.exchanges.kraken.protocol.errors.KrakenProtocolError`. The ``book`` channel is
checked first and decoded without the generic field helpers because it carries most of the traffic.
"""

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from engine.exchanges.kraken.protocol.errors import KrakenProtocolError
from engine.exchanges.kraken.protocol.fields import (
    opt_int,
    opt_str,
    to_decimal,
)
from engine.exchanges.kraken.protocol.timestamps import rfc3339_to_ns
from engine.exchanges.kraken.protocol.ws_channels import CHANNEL_DECODERS, Names, opt_ts
from engine.exchanges.kraken.protocol.ws_messages import (
    BookData,
    BookMsg,
    MethodResponse,
    Pong,
    PriceQty,
    SubscribeAck,
    UnknownMessage,
    WsMessage,
)
from engine.exchanges.kraken.protocol.ws_requests import (
    add_order,
    amend_order,
    batch_add,
    batch_cancel,
    cancel_all,
    cancel_all_orders_after,
    cancel_order,
    dumps,
    edit_order,
    ping,
    request,
    subscribe_balances,
    subscribe_book,
    subscribe_executions,
    subscribe_instrument,
    subscribe_ohlc,
    subscribe_ticker,
    subscribe_trade,
    unsubscribe,
)

__all__ = [
    "TRADING_METHODS",
    "add_order",
    "amend_order",
    "batch_add",
    "batch_cancel",
    "cancel_all",
    "cancel_all_orders_after",
    "cancel_order",
    "decode",
    "dumps",
    "edit_order",
    "ping",
    "request",
    "subscribe_balances",
    "subscribe_book",
    "subscribe_executions",
    "subscribe_instrument",
    "subscribe_ohlc",
    "subscribe_ticker",
    "subscribe_trade",
    "unsubscribe",
]

TRADING_METHODS = frozenset(
    {
        "add_order",
        "amend_order",
        "edit_order",
        "cancel_order",
        "cancel_all",
        "cancel_all_orders_after",
        "batch_add",
        "batch_cancel",
    }
)

# One decoder for all calls: json.loads(parse_float=...) would build a new one per message.
_DECODER = json.JSONDecoder(parse_float=Decimal)
_RAW_DECODE = _DECODER.raw_decode
_NO_NAMES: Names = {}


def decode(text: str | bytes, pair_by_symbol: Names | None = None) -> WsMessage:
    """Decode one WebSocket v2 message.

    Args:
        text: the frame's text.
        pair_by_symbol: maps WS symbols (``BTC/USD``) to the engine's pair names used in domain values;
            symbols not in it keep their WS name.

    Raises:
        KrakenProtocolError: for text that is not a JSON object, or a known message that is malformed.
    """
    try:
        if not isinstance(text, str):
            text = text.decode()
        # raw_decode skips decode()'s two whitespace regex matches; anything unusual goes the full way, which
        # also produces the proper error message.
        try:
            obj, end = _RAW_DECODE(text)
        except ValueError:
            obj = _DECODER.decode(text)
        else:
            if end != len(text) and not text[end:].isspace():
                obj = _DECODER.decode(text)
    except (ValueError, TypeError) as exc:
        raise KrakenProtocolError(f"websocket: not valid JSON ({exc}): {text[:80]!r}") from exc
    if not isinstance(obj, dict):
        raise KrakenProtocolError(f"websocket: expected a JSON object, got {type(obj).__name__}")
    channel = obj.get("channel")
    method = obj.get("method")
    try:
        if channel == "book":
            return _book(obj)
        if channel is not None:
            handler = CHANNEL_DECODERS.get(channel)
            return UnknownMessage(obj) if handler is None else handler(obj, pair_by_symbol or _NO_NAMES)
        if method is not None:
            return _method(obj, method)
    except KrakenProtocolError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise KrakenProtocolError(f"{channel or method}: malformed message ({exc!r})") from exc
    return UnknownMessage(obj)


# ----- book (hot path) -----


def _levels(raw: list[Any]) -> list[PriceQty]:
    out: list[PriceQty] = []
    for level in raw:
        price = level["price"]
        qty = level["qty"]
        # Whole numbers arrive as int (parse_int); fractions already as Decimal.
        if type(price) is not Decimal:
            price = Decimal(price) if type(price) is int else to_decimal(price, "book.price")
        if type(qty) is not Decimal:
            qty = Decimal(qty) if type(qty) is int else to_decimal(qty, "book.qty")
        out.append((price, qty))
    return out


def _book(obj: Mapping[str, Any]) -> BookMsg:
    kind = obj["type"]
    if kind != "update" and kind != "snapshot":
        raise KrakenProtocolError(f"book.type: expected 'snapshot' or 'update', got {kind!r}")
    books = []
    for entry in obj["data"]:
        checksum = entry["checksum"]
        if type(checksum) is not int:
            raise KrakenProtocolError(f"book.checksum: expected an integer, got {checksum!r}")
        stamp = entry.get("timestamp")
        books.append(
            BookData(
                entry["symbol"],
                _levels(entry["bids"]),
                _levels(entry["asks"]),
                checksum,
                None if stamp is None else rfc3339_to_ns(stamp),
            )
        )
    return BookMsg(kind, tuple(books))


# ----- method responses -----


def _warnings(result: object) -> tuple[str, ...]:
    if isinstance(result, Mapping):
        raw = result.get("warnings")
        if isinstance(raw, list):
            return tuple(str(w) for w in raw)
    return ()


def _method(obj: Mapping[str, Any], method: object) -> WsMessage:
    req_id = opt_int(obj, "req_id", str(method))
    time_in = opt_ts(obj, "time_in", str(method))
    time_out = opt_ts(obj, "time_out", str(method))
    if method == "pong":
        return Pong(req_id, time_in, time_out)
    success = obj.get("success")
    if not isinstance(success, bool):
        raise KrakenProtocolError(f"{method}.success: expected true/false, got {success!r}")
    error = opt_str(obj, "error", str(method))
    result = obj.get("result")
    if method == "subscribe" or method == "unsubscribe":
        details: Mapping[str, Any] = result if isinstance(result, Mapping) else {}
        symbol = details.get("symbol", obj.get("symbol"))
        channel = details.get("channel", obj.get("channel"))
        return SubscribeAck(
            method=method,
            success=success,
            channel=channel if isinstance(channel, str) else None,
            symbol=symbol if isinstance(symbol, str) else None,
            req_id=req_id,
            error=error,
            result=details,
            warnings=_warnings(result),
        )
    if method in TRADING_METHODS:
        return MethodResponse(str(method), success, result, error, req_id, time_in, time_out, _warnings(result))
    return UnknownMessage(obj)
