"""WebSocket v2 requests: JSON text for subscriptions, ping and order entry.

Kraken v2 takes prices and quantities as JSON *numbers* and keeps whatever digits are sent, so Decimals are
written as bare numbers with every digit (``26500.4``, never ``"26500.4"`` and never through a float) by the
small encoder :func:`dumps`. Optional parameters left at ``None`` are not sent, so Kraken's defaults apply
(snapshot true except for ``trade``; snap_orders true, snap_trades false, order_status true, ratecounter
false). Every builder returns the text to send; ``req_id`` is echoed back by Kraken.
"""

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal

from engine.exchanges.kraken.protocol.book import BOOK_DEPTHS
from engine.exchanges.kraken.protocol.signing import plain_decimal

__all__ = [
    "OHLC_INTERVALS",
    "add_order",
    "amend_order",
    "batch_add",
    "batch_cancel",
    "cancel_all",
    "cancel_all_orders_after",
    "cancel_order",
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

OHLC_INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)


def _encode(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, Decimal):
        out.append(plain_decimal(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(str(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        # Floats included: an amount must never reach the exchange through binary floating point.
        raise TypeError(f"cannot encode {type(value).__name__} {value!r} as exact JSON")


def dumps(value: object) -> str:
    """Compact JSON with Decimals as bare numbers at full precision.

    Raises:
        TypeError: for floats and types JSON cannot hold; ValueError for NaN/infinite Decimals.
    """
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def _clean(params: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in params.items() if value is not None}


def request(method: str, params: Mapping[str, object] | None = None, req_id: int | None = None) -> str:
    """``{"method": ..., "params": {...}, "req_id": ...}``; ``None`` params are left out."""
    message: dict[str, object] = {"method": method}
    if params is not None:
        message["params"] = _clean(params)
    if req_id is not None:
        message["req_id"] = req_id
    return dumps(message)


def ping(req_id: int | None = None) -> str:
    """Application-level ping; Kraken answers ``pong`` with the same ``req_id``."""
    return request("ping", None, req_id)


def subscribe_ticker(
    symbols: Sequence[str],
    *,
    event_trigger: str | None = None,
    snapshot: bool | None = None,
    req_id: int | None = None,
) -> str:
    """Subscribe to ``ticker``; ``event_trigger`` is ``bbo`` or ``trades`` (Kraken's default)."""
    params = {
        "channel": "ticker",
        "symbol": list(symbols),
        "event_trigger": event_trigger,
        "snapshot": snapshot,
    }
    return request("subscribe", params, req_id)


def subscribe_book(
    symbols: Sequence[str], *, depth: int = 10, snapshot: bool | None = None, req_id: int | None = None
) -> str:
    """Subscribe to ``book`` at ``depth`` (10, 25, 100, 500 or 1000)."""
    if depth not in BOOK_DEPTHS:
        raise ValueError(f"book depth must be one of {BOOK_DEPTHS}, got {depth}")
    params = {"channel": "book", "symbol": list(symbols), "depth": depth, "snapshot": snapshot}
    return request("subscribe", params, req_id)


def subscribe_trade(symbols: Sequence[str], *, snapshot: bool | None = None, req_id: int | None = None) -> str:
    """Subscribe to ``trade`` (a snapshot is the last 50 trades)."""
    return request("subscribe", {"channel": "trade", "symbol": list(symbols), "snapshot": snapshot}, req_id)


def subscribe_ohlc(
    symbols: Sequence[str], *, interval: int, snapshot: bool | None = None, req_id: int | None = None
) -> str:
    """Subscribe to ``ohlc`` candles of ``interval`` minutes."""
    if interval not in OHLC_INTERVALS:
        raise ValueError(f"ohlc interval must be one of {OHLC_INTERVALS}, got {interval}")
    params = {"channel": "ohlc", "symbol": list(symbols), "interval": interval, "snapshot": snapshot}
    return request("subscribe", params, req_id)


def subscribe_instrument(*, snapshot: bool | None = None, req_id: int | None = None) -> str:
    """Subscribe to ``instrument`` (all pairs and assets with their precisions)."""
    return request("subscribe", {"channel": "instrument", "snapshot": snapshot}, req_id)


def subscribe_executions(
    token: str,
    *,
    snap_orders: bool | None = None,
    snap_trades: bool | None = None,
    order_status: bool | None = None,
    ratecounter: bool | None = None,
    req_id: int | None = None,
) -> str:
    """Subscribe to the private ``executions`` channel (open orders snapshot, fills, order status)."""
    params = {
        "channel": "executions",
        "token": token,
        "snap_orders": snap_orders,
        "snap_trades": snap_trades,
        "order_status": order_status,
        "ratecounter": ratecounter,
    }
    return request("subscribe", params, req_id)


def subscribe_balances(token: str, *, snapshot: bool | None = None, req_id: int | None = None) -> str:
    """Subscribe to the private ``balances`` channel."""
    return request("subscribe", {"channel": "balances", "token": token, "snapshot": snapshot}, req_id)


def unsubscribe(
    channel: str,
    *,
    symbols: Sequence[str] | None = None,
    token: str | None = None,
    depth: int | None = None,
    interval: int | None = None,
    req_id: int | None = None,
) -> str:
    """Unsubscribe with the same channel parameters used to subscribe (depth for book, interval for ohlc)."""
    params = {
        "channel": channel,
        "symbol": list(symbols) if symbols is not None else None,
        "depth": depth,
        "interval": interval,
        "token": token,
    }
    return request("unsubscribe", params, req_id)


def add_order(
    token: str,
    *,
    symbol: str,
    side: str,
    order_type: str,
    order_qty: Decimal,
    limit_price: Decimal | None = None,
    cl_ord_id: str | None = None,
    order_userref: int | None = None,
    time_in_force: str | None = None,
    expire_time: str | None = None,
    post_only: bool | None = None,
    reduce_only: bool | None = None,
    validate: bool | None = None,
    deadline: str | None = None,
    extra: Mapping[str, object] | None = None,
    req_id: int | None = None,
) -> str:
    """``add_order``. ``cl_ord_id`` and ``order_userref`` are mutually exclusive; ``extra`` adds other params.
    A good-till-date order is ``time_in_force="gtd"`` with ``expire_time`` (RFC3339).

    Raises:
        ValueError: when both client ids are given.
    """
    if cl_ord_id is not None and order_userref is not None:
        raise ValueError("give cl_ord_id or order_userref, not both")
    params: dict[str, object] = {
        "order_type": order_type,
        "side": side,
        "order_qty": order_qty,
        "symbol": symbol,
        "limit_price": limit_price,
        "cl_ord_id": cl_ord_id,
        "order_userref": order_userref,
        "time_in_force": time_in_force,
        "expire_time": expire_time,
        "post_only": post_only,
        "reduce_only": reduce_only,
        "validate": validate,
        "deadline": deadline,
        **(extra or {}),
        "token": token,
    }
    return request("add_order", params, req_id)


def _one_id(order_id: str | None, cl_ord_id: str | None) -> None:
    if (order_id is None) == (cl_ord_id is None):
        raise ValueError("give exactly one of order_id and cl_ord_id")


def amend_order(
    token: str,
    *,
    order_qty: Decimal,
    order_id: str | None = None,
    cl_ord_id: str | None = None,
    limit_price: Decimal | None = None,
    display_qty: Decimal | None = None,
    post_only: bool | None = None,
    deadline: str | None = None,
    extra: Mapping[str, object] | None = None,
    req_id: int | None = None,
) -> str:
    """``amend_order`` in place (keeps queue priority when allowed) by ``order_id`` or ``cl_ord_id``."""
    _one_id(order_id, cl_ord_id)
    params: dict[str, object] = {
        "order_id": order_id,
        "cl_ord_id": cl_ord_id,
        "order_qty": order_qty,
        "limit_price": limit_price,
        "display_qty": display_qty,
        "post_only": post_only,
        "deadline": deadline,
        **(extra or {}),
        "token": token,
    }
    return request("amend_order", params, req_id)


def edit_order(
    token: str,
    *,
    order_id: str,
    symbol: str,
    order_qty: Decimal | None = None,
    limit_price: Decimal | None = None,
    extra: Mapping[str, object] | None = None,
    req_id: int | None = None,
) -> str:
    """``edit_order`` (cancel and replace under a new order id)."""
    params: dict[str, object] = {
        "order_id": order_id,
        "order_qty": order_qty,
        "limit_price": limit_price,
        "symbol": symbol,
        **(extra or {}),
        "token": token,
    }
    return request("edit_order", params, req_id)


def cancel_order(
    token: str,
    *,
    order_ids: Sequence[str] = (),
    cl_ord_ids: Sequence[str] = (),
    order_userrefs: Sequence[int] = (),
    req_id: int | None = None,
) -> str:
    """``cancel_order`` for any mix of ids; Kraken answers once per order.

    Raises:
        ValueError: when no id is given.
    """
    if not (order_ids or cl_ord_ids or order_userrefs):
        raise ValueError("cancel_order needs at least one id")
    params: dict[str, object] = {
        "order_id": list(order_ids) or None,
        "cl_ord_id": list(cl_ord_ids) or None,
        "order_userref": list(order_userrefs) or None,
        "token": token,
    }
    return request("cancel_order", params, req_id)


def cancel_all(token: str, *, req_id: int | None = None) -> str:
    """``cancel_all`` open orders."""
    return request("cancel_all", {"token": token}, req_id)


def cancel_all_orders_after(token: str, timeout: int, *, req_id: int | None = None) -> str:
    """The dead man's switch: cancel everything ``timeout`` seconds from now unless refreshed; 0 disables.

    Raises:
        ValueError: unless 0 <= timeout < 86400.
    """
    if not 0 <= timeout < 86400:
        raise ValueError(f"timeout must be in [0, 86400), got {timeout}")
    return request("cancel_all_orders_after", {"timeout": timeout, "token": token}, req_id)


def batch_add(
    token: str,
    *,
    symbol: str,
    orders: Sequence[Mapping[str, object]],
    deadline: str | None = None,
    validate: bool | None = None,
    req_id: int | None = None,
) -> str:
    """``batch_add`` of 2 to 15 orders on one symbol (validated as a whole first).

    Raises:
        ValueError: for fewer than 2 or more than 15 orders.
    """
    if not 2 <= len(orders) <= 15:
        raise ValueError(f"batch_add takes 2 to 15 orders, got {len(orders)}")
    params: dict[str, object] = {
        "deadline": deadline,
        "orders": [_clean(order) for order in orders],
        "symbol": symbol,
        "token": token,
        "validate": validate,
    }
    return request("batch_add", params, req_id)


def batch_cancel(token: str, *, orders: Sequence[str], req_id: int | None = None) -> str:
    """``batch_cancel`` of 2 to 50 order ids (or userrefs as strings).

    Raises:
        ValueError: for fewer than 2 or more than 50 ids.
    """
    if not 2 <= len(orders) <= 50:
        raise ValueError(f"batch_cancel takes 2 to 50 orders, got {len(orders)}")
    return request("batch_cancel", {"orders": list(orders), "token": token}, req_id)
