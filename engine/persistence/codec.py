"""Exact encodings between domain values and SQLite columns.

Decimals are stored as TEXT in plain positional notation (``format(d, "f")``), never as REAL, so what is read
back compares equal to what was written. JSON columns hold Decimals as strings too; floats are refused at the
door so that no binary rounding ever reaches the database.
"""

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from engine.domain.balances import AssetBalance
from engine.domain.orders import (
    ClientOrderId,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    TradeId,
    VenueOrderId,
)
from engine.domain.positions import Position
from engine.persistence.errors import CodecError
from engine.persistence.records import EventRecord, FillValueRow, RoundTripRow, StrategyParamsRecord

__all__ = [
    "FILL_COLUMNS",
    "FILL_VALUE_COLUMNS",
    "ROUND_TRIP_COLUMNS",
    "balance_to_row",
    "dec_from_text",
    "dec_to_text",
    "fill_to_row",
    "fill_value_to_row",
    "from_json",
    "json_object",
    "opt_dec_from_text",
    "opt_dec_to_text",
    "order_to_row",
    "position_to_row",
    "round_trip_to_row",
    "row_to_balance",
    "row_to_event",
    "row_to_fill",
    "row_to_fill_value",
    "row_to_order",
    "row_to_params_record",
    "row_to_position",
    "row_to_round_trip",
    "to_json",
]

Row = Mapping[str, Any]


def dec_to_text(value: Decimal) -> str:
    """Encode a finite Decimal (or int) as plain positional text, e.g. ``Decimal("1E-8") -> "0.00000001"``.

    Raises:
        CodecError: for floats, booleans, NaN, infinities and non-numbers.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise CodecError(f"{value!r} ({type(value).__name__}) cannot be stored exactly; use Decimal")
    if isinstance(value, int):
        return str(value)
    if not value.is_finite():
        raise CodecError(f"{value!r} is not finite")
    return format(value, "f")


def dec_from_text(text: object) -> Decimal:
    """Decode a TEXT column written by :func:`dec_to_text`.

    Raises:
        CodecError: the column holds something other than decimal text (e.g. a REAL written by hand).
    """
    if not isinstance(text, str):
        raise CodecError(f"expected decimal TEXT, found {type(text).__name__} {text!r}")
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise CodecError(f"{text!r} is not a decimal") from exc


def opt_dec_to_text(value: Decimal | None) -> str | None:
    return None if value is None else dec_to_text(value)


def opt_dec_from_text(text: object) -> Decimal | None:
    return None if text is None else dec_from_text(text)


def _jsonable(value: object, path: str) -> object:
    # Walk the structure ourselves: json.dumps would write floats without asking.
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, Decimal):
        return dec_to_text(value)
    if isinstance(value, Enum):
        return _jsonable(value.value, path)
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CodecError(f"{path}: JSON object keys must be str, not {key!r}")
            out[key] = _jsonable(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_jsonable(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        # Sorted so that equal sets always encode to the same text.
        return sorted((_jsonable(item, f"{path}[]") for item in value), key=str)
    raise CodecError(f"{path}: {type(value).__name__} {value!r} cannot be stored as JSON exactly")


def to_json(value: object) -> str:
    """Encode JSON-like data; Decimals become strings, sets sorted lists, enums their values.

    Raises:
        CodecError: for floats, NaN, non-str keys and other types without an exact encoding.
    """
    return json.dumps(_jsonable(value, "$"), separators=(",", ":"), ensure_ascii=False)


def from_json(text: object) -> Any:
    """Decode a JSON column. Decimals written by :func:`to_json` come back as strings (the schema owner parses
    them); a stray JSON float is read as Decimal, never as float."""
    if not isinstance(text, str):
        raise CodecError(f"expected JSON TEXT, found {type(text).__name__}")
    return json.loads(text, parse_float=Decimal)


def _trade_ids(text: object) -> set[TradeId]:
    items = from_json(text)
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise CodecError(f"trade_ids must be a JSON list of strings, found {text!r}")
    return {TradeId(i) for i in items}


def order_to_row(order: Order) -> dict[str, object]:
    return {
        "client_id": order.client_id,
        "pair": order.pair,
        "side": order.side.value,
        "order_type": order.order_type.value,
        "qty": dec_to_text(order.qty),
        "limit_price": opt_dec_to_text(order.limit_price),
        "strategy": order.strategy,
        "status": order.status.value,
        "venue_order_id": order.venue_order_id,
        "filled_qty": dec_to_text(order.filled_qty),
        "filled_cost": dec_to_text(order.filled_cost),
        "fees": dec_to_text(order.fees),
        "reason": order.reason,
        "created_ts_ns": order.created_ts_ns,
        "updated_ts_ns": order.updated_ts_ns,
        "trade_ids": to_json(order.trade_ids),
        "expires_ns": order.expires_ns,
        "reprice_of": order.reprice_of,
    }


def row_to_order(row: Row) -> Order:
    venue = row["venue_order_id"]
    return Order(
        client_id=ClientOrderId(row["client_id"]),
        pair=row["pair"],
        side=OrderSide(row["side"]),
        order_type=OrderType(row["order_type"]),
        qty=dec_from_text(row["qty"]),
        limit_price=opt_dec_from_text(row["limit_price"]),
        created_ts_ns=row["created_ts_ns"],
        strategy=row["strategy"],
        status=OrderStatus(row["status"]),
        venue_order_id=None if venue is None else VenueOrderId(venue),
        filled_qty=dec_from_text(row["filled_qty"]),
        filled_cost=dec_from_text(row["filled_cost"]),
        fees=dec_from_text(row["fees"]),
        reason=row["reason"],
        updated_ts_ns=row["updated_ts_ns"],
        trade_ids=_trade_ids(row["trade_ids"]),
        expires_ns=row["expires_ns"],
        reprice_of=row["reprice_of"],
    )


def fill_to_row(fill: Fill) -> tuple[object, ...]:
    """A positional row in :data:`FILL_COLUMNS` order (tuples are cheaper than dicts on the fill hot path)."""
    return (
        fill.trade_id,
        fill.client_id,
        fill.pair,
        fill.side.value,
        dec_to_text(fill.qty),
        dec_to_text(fill.price),
        dec_to_text(fill.fee),
        fill.fee_asset,
        fill.ts_ns,
        fill.liquidity,
        fill.strategy,
        fill.venue_order_id,
    )


ORDER_COLUMNS = (
    "client_id",
    "pair",
    "side",
    "order_type",
    "qty",
    "limit_price",
    "strategy",
    "status",
    "venue_order_id",
    "filled_qty",
    "filled_cost",
    "fees",
    "reason",
    "created_ts_ns",
    "updated_ts_ns",
    "trade_ids",
    "expires_ns",
    "reprice_of",
)
POSITION_COLUMNS = (
    "strategy",
    "pair",
    "qty",
    "avg_entry",
    "realized_pnl",
    "fees",
    "opened_ts_ns",
    "updated_ts_ns",
    "trade_ids",
)
BALANCE_COLUMNS = ("asset", "total", "held")
FILL_COLUMNS = (
    "trade_id",
    "client_id",
    "pair",
    "side",
    "qty",
    "price",
    "fee",
    "fee_asset",
    "ts_ns",
    "liquidity",
    "strategy",
    "venue_order_id",
)


def row_to_fill(row: Row) -> Fill:
    venue = row["venue_order_id"]
    return Fill(
        trade_id=TradeId(row["trade_id"]),
        client_id=ClientOrderId(row["client_id"]),
        pair=row["pair"],
        side=OrderSide(row["side"]),
        qty=dec_from_text(row["qty"]),
        price=dec_from_text(row["price"]),
        fee=dec_from_text(row["fee"]),
        fee_asset=row["fee_asset"],
        ts_ns=row["ts_ns"],
        liquidity=row["liquidity"],
        strategy=row["strategy"],
        venue_order_id=None if venue is None else VenueOrderId(venue),
    )


def balance_to_row(asset: str, balance: AssetBalance) -> dict[str, object]:
    return {"asset": asset, "total": dec_to_text(balance.total), "held": dec_to_text(balance.held)}


def row_to_balance(row: Row) -> AssetBalance:
    return AssetBalance(total=dec_from_text(row["total"]), held=dec_from_text(row["held"]))


def position_to_row(pos: Position) -> dict[str, object]:
    return {
        "strategy": pos.strategy,
        "pair": pos.pair,
        "qty": dec_to_text(pos.qty),
        "avg_entry": dec_to_text(pos.avg_entry),
        "realized_pnl": dec_to_text(pos.realized_pnl),
        "fees": dec_to_text(pos.fees),
        "opened_ts_ns": pos.opened_ts_ns,
        "updated_ts_ns": pos.updated_ts_ns,
        "trade_ids": to_json(pos.trade_ids),
    }


def row_to_position(row: Row) -> Position:
    return Position(
        pair=row["pair"],
        strategy=row["strategy"],
        qty=dec_from_text(row["qty"]),
        avg_entry=dec_from_text(row["avg_entry"]),
        realized_pnl=dec_from_text(row["realized_pnl"]),
        fees=dec_from_text(row["fees"]),
        opened_ts_ns=row["opened_ts_ns"],
        updated_ts_ns=row["updated_ts_ns"],
        trade_ids=_trade_ids(row["trade_ids"]),
    )


ROUND_TRIP_COLUMNS = (
    "pair",
    "strategy",
    "entry_ts_ns",
    "exit_ts_ns",
    "qty",
    "entry_price",
    "exit_price",
    "pnl",
    "fees",
    "pnl_value",
    "fees_value",
    "value_currency",
)
FILL_VALUE_COLUMNS = ("trade_id", "fee_value", "realized_value", "value_currency")


def round_trip_to_row(trip: RoundTripRow) -> dict[str, object]:
    """Columns of a new ``round_trips`` row (the id is assigned by SQLite), in :data:`ROUND_TRIP_COLUMNS` order."""
    return {
        "pair": trip.pair,
        "strategy": trip.strategy,
        "entry_ts_ns": trip.entry_ts_ns,
        "exit_ts_ns": trip.exit_ts_ns,
        "qty": dec_to_text(trip.qty),
        "entry_price": dec_to_text(trip.entry_price),
        "exit_price": dec_to_text(trip.exit_price),
        "pnl": dec_to_text(trip.pnl),
        "fees": dec_to_text(trip.fees),
        "pnl_value": opt_dec_to_text(trip.pnl_value),
        "fees_value": opt_dec_to_text(trip.fees_value),
        "value_currency": trip.value_currency,
    }


def row_to_round_trip(r: Row) -> RoundTripRow:
    return RoundTripRow(
        pair=r["pair"],
        strategy=r["strategy"],
        entry_ts_ns=r["entry_ts_ns"],
        exit_ts_ns=r["exit_ts_ns"],
        qty=dec_from_text(r["qty"]),
        entry_price=dec_from_text(r["entry_price"]),
        exit_price=dec_from_text(r["exit_price"]),
        pnl=dec_from_text(r["pnl"]),
        fees=dec_from_text(r["fees"]),
        id=r["id"],
        pnl_value=opt_dec_from_text(r["pnl_value"]),
        fees_value=opt_dec_from_text(r["fees_value"]),
        value_currency=r["value_currency"],
    )


def fill_value_to_row(value: FillValueRow) -> tuple[object, ...]:
    """A positional ``fill_values`` row in :data:`FILL_VALUE_COLUMNS` order."""
    return (
        value.trade_id,
        opt_dec_to_text(value.fee_value),
        opt_dec_to_text(value.realized_value),
        value.value_currency,
    )


def row_to_fill_value(r: Row) -> FillValueRow:
    return FillValueRow(
        trade_id=r["trade_id"],
        fee_value=opt_dec_from_text(r["fee_value"]),
        realized_value=opt_dec_from_text(r["realized_value"]),
        value_currency=r["value_currency"],
    )


def json_object(text: object, what: str) -> dict[str, Any]:
    value = from_json(text)
    if not isinstance(value, dict):
        raise CodecError(f"{what} must be a JSON object, found {type(value).__name__}")
    return value


def row_to_params_record(r: Row) -> StrategyParamsRecord:
    return StrategyParamsRecord(
        strategy=r["strategy"],
        version=r["version"],
        params=json_object(r["params"], "strategy params"),
        enabled=bool(r["enabled"]),
        ts_ns=r["ts_ns"],
        source=r["source"],
        note=r["note"],
    )


def row_to_event(r: Row) -> EventRecord:
    return EventRecord(
        id=r["id"],
        ts_ns=r["ts_ns"],
        kind=r["kind"],
        source=r["source"],
        payload=json_object(r["payload"], "event payload"),
        wall_ts_ns=r["wall_ts_ns"],
    )
