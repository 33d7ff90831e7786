"""A state file read with plain ``sqlite3`` and ``decimal.Decimal``, independently of the engine's Store.

The crash tests judge the engine by its state file, so they must not read that file through the code under test:
a codec bug would then agree with itself. This module knows only the storage conventions (Decimals as TEXT,
timestamps as INTEGER nanoseconds, kv values as JSON) and copies the file (with its ``-wal``) before opening it,
so that reading never checkpoints or otherwise changes the file the next restart will open.
"""

import json
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

__all__ = [
    "BalanceRow",
    "EquityPoint",
    "FillRow",
    "OrderRow",
    "PositionRow",
    "RoundTripRow",
    "StateFile",
    "StateReadError",
    "order_number",
    "read_state",
    "trade_key",
]


class StateReadError(Exception):
    """The file is not a state file this checker can read (a column that is not decimal text, bad JSON)."""


@dataclass(frozen=True)
class OrderRow:
    client_id: str
    pair: str
    side: str
    order_type: str
    qty: Decimal
    limit_price: Decimal | None
    strategy: str
    status: str
    filled_qty: Decimal
    filled_cost: Decimal
    fees: Decimal
    created_ts_ns: int
    trade_ids: tuple[str, ...]


@dataclass(frozen=True)
class FillRow:
    trade_id: str
    client_id: str
    pair: str
    side: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    ts_ns: int
    liquidity: str
    strategy: str


@dataclass(frozen=True)
class BalanceRow:
    asset: str
    total: Decimal
    held: Decimal


@dataclass(frozen=True)
class PositionRow:
    strategy: str
    pair: str
    qty: Decimal
    avg_entry: Decimal
    realized_pnl: Decimal
    fees: Decimal
    opened_ts_ns: int | None


@dataclass(frozen=True)
class RoundTripRow:
    pair: str
    strategy: str
    entry_ts_ns: int
    exit_ts_ns: int
    qty: Decimal
    entry_price: Decimal
    exit_price: Decimal
    pnl: Decimal
    fees: Decimal


@dataclass(frozen=True)
class EquityPoint:
    id: int
    ts_ns: int
    equity: Decimal


@dataclass(frozen=True)
class StateFile:
    """Everything the checks read, as plain values. ``empty`` is a file killed before its schema was written."""

    path: Path
    orders: tuple[OrderRow, ...] = ()
    fills: tuple[FillRow, ...] = ()
    balances: tuple[BalanceRow, ...] = ()
    positions: tuple[PositionRow, ...] = ()
    round_trips: tuple[RoundTripRow, ...] = ()
    equity: tuple[EquityPoint, ...] = ()
    kv: dict[str, Any] = field(default_factory=dict)
    empty: bool = False


def order_number(client_id: str) -> int | None:
    """The sequence number of ``<prefix>-<9 digits>``: the prefix is random per state file, the number is not."""
    _, _, tail = client_id.rpartition("-")
    return int(tail) if len(tail) == 9 and tail.isdigit() else None


def trade_key(trade_id: str, client_id: str) -> str:
    """A trade id with its order's random prefix replaced by the order number (``7-1`` for ``ab12cd-000000007-1``),
    so that the fills of two state files can be matched."""
    number = order_number(client_id)
    if number is not None and trade_id.startswith(client_id):
        return f"{number}{trade_id[len(client_id) :]}"
    return trade_id


def _dec(value: object, where: str) -> Decimal:
    if not isinstance(value, str):
        raise StateReadError(f"{where}: expected decimal TEXT, found {type(value).__name__} {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise StateReadError(f"{where}: {value!r} is not a decimal") from None
    if not number.is_finite():
        raise StateReadError(f"{where}: {value!r} is not finite")
    return number


def _opt_dec(value: object, where: str) -> Decimal | None:
    return None if value is None else _dec(value, where)


def _json(value: object, where: str) -> Any:
    if not isinstance(value, str):
        raise StateReadError(f"{where}: expected JSON TEXT, found {type(value).__name__}")
    try:
        return json.loads(value, parse_float=Decimal)
    except ValueError:
        raise StateReadError(f"{where}: not JSON: {value[:60]!r}") from None


def _trade_ids(value: object, where: str) -> tuple[str, ...]:
    items = _json(value, where)
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise StateReadError(f"{where}: trade_ids must be a JSON list of strings, found {value!r}")
    return tuple(items)


def _order(r: sqlite3.Row) -> OrderRow:
    where = f"order {r['client_id']}"
    return OrderRow(
        client_id=r["client_id"],
        pair=r["pair"],
        side=r["side"],
        order_type=r["order_type"],
        qty=_dec(r["qty"], f"{where} qty"),
        limit_price=_opt_dec(r["limit_price"], f"{where} limit_price"),
        strategy=r["strategy"],
        status=r["status"],
        filled_qty=_dec(r["filled_qty"], f"{where} filled_qty"),
        filled_cost=_dec(r["filled_cost"], f"{where} filled_cost"),
        fees=_dec(r["fees"], f"{where} fees"),
        created_ts_ns=r["created_ts_ns"],
        trade_ids=_trade_ids(r["trade_ids"], f"{where} trade_ids"),
    )


def _fill(r: sqlite3.Row) -> FillRow:
    where = f"fill {r['trade_id']}"
    return FillRow(
        trade_id=r["trade_id"],
        client_id=r["client_id"],
        pair=r["pair"],
        side=r["side"],
        qty=_dec(r["qty"], f"{where} qty"),
        price=_dec(r["price"], f"{where} price"),
        fee=_dec(r["fee"], f"{where} fee"),
        fee_asset=r["fee_asset"],
        ts_ns=r["ts_ns"],
        liquidity=r["liquidity"],
        strategy=r["strategy"],
    )


def _position(r: sqlite3.Row) -> PositionRow:
    where = f"position {r['strategy']}/{r['pair']}"
    return PositionRow(
        strategy=r["strategy"],
        pair=r["pair"],
        qty=_dec(r["qty"], f"{where} qty"),
        avg_entry=_dec(r["avg_entry"], f"{where} avg_entry"),
        realized_pnl=_dec(r["realized_pnl"], f"{where} realized_pnl"),
        fees=_dec(r["fees"], f"{where} fees"),
        opened_ts_ns=r["opened_ts_ns"],
    )


def _round_trip(r: sqlite3.Row) -> RoundTripRow:
    where = f"round trip {r['id']}"
    return RoundTripRow(
        pair=r["pair"],
        strategy=r["strategy"],
        entry_ts_ns=r["entry_ts_ns"],
        exit_ts_ns=r["exit_ts_ns"],
        qty=_dec(r["qty"], f"{where} qty"),
        entry_price=_dec(r["entry_price"], f"{where} entry_price"),
        exit_price=_dec(r["exit_price"], f"{where} exit_price"),
        pnl=_dec(r["pnl"], f"{where} pnl"),
        fees=_dec(r["fees"], f"{where} fees"),
    )


def _read(conn: sqlite3.Connection, path: Path) -> StateFile:
    tables = {r["name"] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    needed = {"orders", "fills", "balances", "positions", "round_trips", "equity", "kv"}
    if not tables & needed:
        return StateFile(path=path, empty=True)
    missing = needed - tables
    if missing:
        raise StateReadError(f"tables missing: {', '.join(sorted(missing))}")
    return StateFile(
        path=path,
        orders=tuple(_order(r) for r in conn.execute("SELECT * FROM orders ORDER BY created_ts_ns, client_id")),
        fills=tuple(_fill(r) for r in conn.execute("SELECT * FROM fills ORDER BY ts_ns, trade_id")),
        balances=tuple(
            BalanceRow(r["asset"], _dec(r["total"], f"balance {r['asset']}"), _dec(r["held"], f"held {r['asset']}"))
            for r in conn.execute("SELECT * FROM balances ORDER BY asset")
        ),
        positions=tuple(_position(r) for r in conn.execute("SELECT * FROM positions ORDER BY strategy, pair")),
        round_trips=tuple(_round_trip(r) for r in conn.execute("SELECT * FROM round_trips ORDER BY id")),
        equity=tuple(
            EquityPoint(r["id"], r["ts_ns"], _dec(r["equity"], f"equity point {r['id']}"))
            for r in conn.execute("SELECT id, ts_ns, equity FROM equity ORDER BY id")
        ),
        kv={r["key"]: _json(r["value"], f"kv {r['key']}") for r in conn.execute("SELECT key, value FROM kv")},
    )


def read_state(path: Path) -> StateFile:
    """Read a state file (and its WAL) from a private copy; a missing file reads as an empty state.

    Raises:
        StateReadError: a column that is not what the storage conventions say, or a file SQLite cannot read.
    """
    if not path.exists():
        return StateFile(path=path, empty=True)
    with tempfile.TemporaryDirectory(prefix="ledger-") as tmp:
        copy = Path(tmp) / path.name
        for suffix in ("", "-wal"):
            source = path.with_name(path.name + suffix)
            if source.exists():
                shutil.copyfile(source, copy.with_name(copy.name + suffix))
        conn = sqlite3.connect(copy)
        conn.row_factory = sqlite3.Row
        try:
            return _read(conn, path)
        except sqlite3.DatabaseError as exc:
            raise StateReadError(f"SQLite cannot read {path.name}: {exc}") from None
        finally:
            conn.close()
