"""Many rows of one table written by a single SQL statement, with the GIL released while SQLite works.

Why: Python's ``sqlite3`` releases the GIL around every step of every statement. ``executemany`` of N rows is N
steps, and the writer thread must win the GIL back after each; while the event loop thread is busy (a backtest
is never idle) each win takes up to the interpreter's switch interval (5 ms). A backtest's thousands of rows
then end up written after the run, one after the other. Here a table's rows travel as one JSON text
(``[[col0, col1, ...], ...]``) that SQLite expands with ``json_each`` inside one ``INSERT ... SELECT``: one step,
the GIL released throughout, so the writing overlaps the run.

Rows are encoded on the thread that owns the objects (:func:`encode_orders` and friends); the JSON text is
immutable and safe to hand to the writer thread. Values are the codec's (``str``, ``int``, ``None``), which JSON
carries exactly; a STRICT table refuses anything else, as it would a bound parameter.

If the bulk statement fails (a duplicate fill, say), SQLite undoes that statement alone; the rows are then
written one by one, each in its own savepoint, so that only the bad ones are lost, and :class:`PartialWrite`
names them after the good ones are written.
"""

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from engine.domain.balances import AssetBalance
from engine.domain.orders import Fill, Order
from engine.domain.positions import Position
from engine.persistence.codec import (
    FILL_COLUMNS,
    balance_to_row,
    dec_to_text,
    fill_to_row,
    order_to_row,
    position_to_row,
    round_trip_to_row,
)
from engine.persistence.errors import StoreError
from engine.persistence.records import RoundTripRow

__all__ = [
    "EncodedRows",
    "PartialWrite",
    "encode_balances",
    "encode_fills",
    "encode_orders",
    "encode_positions",
    "encode_round_trips",
    "equity_payload",
    "write_rows",
]


class PartialWrite(StoreError):
    """Some rows of a bulk write were refused; the others are written. ``errors`` holds one per refused row."""

    def __init__(self, errors: Sequence[Exception]) -> None:
        super().__init__(f"{len(errors)} row(s) refused; first: {errors[0]!r}")
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class EncodedRows:
    """Rows for one table (``kind``: orders, fills, positions, balances, round_trips) as one JSON array."""

    kind: str
    payload: str
    count: int


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...] | None  # upsert on this key; None: plain insert
    replace_all: bool = False  # the rows are the whole table (balances): delete the others first


_TABLES = {
    "orders": _Table(
        "orders",
        (
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
        ),
        ("client_id",),
    ),
    "fills": _Table("fills", FILL_COLUMNS, None),
    "positions": _Table(
        "positions",
        (
            "strategy",
            "pair",
            "qty",
            "avg_entry",
            "realized_pnl",
            "fees",
            "opened_ts_ns",
            "updated_ts_ns",
            "trade_ids",
        ),
        ("strategy", "pair"),
    ),
    "balances": _Table("balances", ("asset", "total", "held"), ("asset",), replace_all=True),
    "round_trips": _Table(
        "round_trips",
        ("pair", "strategy", "entry_ts_ns", "exit_ts_ns", "qty", "entry_price", "exit_price", "pnl", "fees"),
        None,
    ),
}


def _conflict_clause(table: _Table) -> str:
    if table.key is None:
        return ""
    updates = ", ".join(f"[{c}] = excluded.[{c}]" for c in table.columns if c not in table.key)
    return f" ON CONFLICT ({', '.join(f'[{k}]' for k in table.key)}) DO UPDATE SET {updates}"


def _bulk_sql(table: _Table) -> str:
    columns = ", ".join(f"[{c}]" for c in table.columns)
    values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(table.columns)))
    # "WHERE true" resolves the parser's ambiguity between a join's ON and the upsert's ON CONFLICT; the rows
    # go in array order (round trips get their ids in that order).
    return (
        f"INSERT INTO [{table.name}] ({columns}) SELECT {values} FROM json_each(?) WHERE true ORDER BY key"
        + _conflict_clause(table)
    )


def _row_sql(table: _Table) -> str:
    columns = ", ".join(f"[{c}]" for c in table.columns)
    marks = ", ".join("?" * len(table.columns))
    return f"INSERT INTO [{table.name}] ({columns}) VALUES ({marks})" + _conflict_clause(table)


_BULK_SQL = {kind: _bulk_sql(table) for kind, table in _TABLES.items()}
_ROW_SQL = {kind: _row_sql(table) for kind, table in _TABLES.items()}
_KEEP_ONLY_SQL = "DELETE FROM [{name}] WHERE [{key}] NOT IN (SELECT json_extract(value, '$[0]') FROM json_each(?))"


def _encode(kind: str, rows: list[tuple[object, ...]]) -> EncodedRows:
    return EncodedRows(kind, json.dumps(rows, separators=(",", ":")), len(rows))


def _ordered(kind: str, row: Mapping[str, object]) -> tuple[object, ...]:
    return tuple(row[c] for c in _TABLES[kind].columns)


def encode_orders(orders: Iterable[Order]) -> EncodedRows:
    """Whole order rows (upserted by client id)."""
    return _encode("orders", [_ordered("orders", order_to_row(o)) for o in orders])


def encode_fills(fills: Iterable[Fill]) -> EncodedRows:
    return _encode("fills", [fill_to_row(f) for f in fills])


def encode_positions(positions: Iterable[Position]) -> EncodedRows:
    """Position rows as given (upserted by strategy and pair)."""
    return _encode("positions", [_ordered("positions", position_to_row(p)) for p in positions])


def encode_balances(balances: Mapping[str, AssetBalance]) -> EncodedRows:
    """The full balance snapshot: assets not in it are removed from the table."""
    return _encode("balances", [_ordered("balances", balance_to_row(a, b)) for a, b in balances.items()])


def encode_round_trips(trips: Iterable[RoundTripRow]) -> EncodedRows:
    return _encode("round_trips", [_ordered("round_trips", round_trip_to_row(t)) for t in trips])


def write_rows(conn: sqlite3.Connection, batch: Iterable[EncodedRows]) -> None:
    """Write each table's rows with one statement (see the module's docstring for failures).

    Raises:
        PartialWrite: some rows were refused (the rest are written).
        StoreError: an unknown table kind.
    """
    errors: list[Exception] = []
    for rows in batch:
        table = _TABLES.get(rows.kind)
        if table is None:
            raise StoreError(f"no bulk write for {rows.kind!r}")
        if table.replace_all:
            conn.execute(_KEEP_ONLY_SQL.format(name=table.name, key=table.columns[0]), (rows.payload,))
        if not rows.count:
            continue
        try:
            conn.execute(_BULK_SQL[rows.kind], (rows.payload,))
        except sqlite3.DatabaseError:
            # The failed statement changed nothing; find the rows at fault one by one.
            errors.extend(_write_one_by_one(conn, rows.kind, json.loads(rows.payload)))
    if errors:
        raise PartialWrite(errors)


def _write_one_by_one(conn: sqlite3.Connection, kind: str, rows: list[list[object]]) -> list[Exception]:
    errors: list[Exception] = []
    sql = _ROW_SQL[kind]
    for row in rows:
        conn.execute("SAVEPOINT bulk_row")
        try:
            conn.execute(sql, row)
        except sqlite3.DatabaseError as exc:
            conn.execute("ROLLBACK TO bulk_row")
            errors.append(exc)
        conn.execute("RELEASE bulk_row")
    return errors


def equity_payload(ts_ns: Sequence[int], equity: Sequence[Decimal]) -> str:
    """The points ``(ts_ns[i], equity[i])`` as one JSON array of ``[ts_ns, "equity"]`` pairs.

    A run of the same Decimal object (a flat stretch of the curve) is encoded once.

    Raises:
        CodecError: an equity value is not a finite Decimal.
        StoreError: the columns differ in length, or a timestamp is not an int.
    """
    if len(ts_ns) != len(equity):
        raise StoreError(f"{len(ts_ns)} timestamps for {len(equity)} equity values")
    for ts in ts_ns:
        if type(ts) is not int:
            raise StoreError(f"equity timestamp {ts!r} is not an int")
    texts: list[str] = []
    append = texts.append
    previous: object = None
    text = ""
    for value in equity:
        if value is not previous:
            text = dec_to_text(value)
            previous = value
        append(text)
    # dec_to_text's digits, sign and point need no JSON escaping; ints are JSON integers.
    return "[" + ",".join(map('[{},"{}"]'.format, ts_ns, texts)) + "]"


EQUITY_FROM_JSON = (
    "INSERT INTO equity (ts_ns, equity)"
    " SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?) ORDER BY key"
)
