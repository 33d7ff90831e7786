"""Many rows of one table written by a single SQL statement, with the GIL released while SQLite works.

Why: Python's ``sqlite3`` releases the GIL around every step of every statement. ``executemany`` of N rows is N
steps, and the writer thread must win the GIL back after each; while the event loop thread is busy (a backtest
is never idle) each win takes up to the interpreter's switch interval (5 ms). A backtest's thousands of rows
then end up written after the run, one after the other. Here a table's rows travel as one JSON text
(``[[col0, col1, ...], ...]``) that SQLite expands with ``json_each`` inside one ``INSERT ... SELECT``, the GIL
released throughout, so the writing overlaps the run.

Better still, all the tables of a batch go in one statement: :func:`install` gives the writer's connection a
TEMP table ``bulk_inbox`` (a column per kind of rows) whose ``BEFORE INSERT`` trigger runs every table's
``INSERT ... SELECT`` and then drops the row itself (``RAISE(IGNORE)``). Inserting one inbox row writes the whole
batch: one GIL hand-over instead of one per table. The trigger lives in the connection's temp schema; the
database file's schema is untouched.

Rows are encoded by :mod:`.rows` on the thread that owns the objects. A STRICT table refuses a value of the
wrong type from JSON as it would a bound parameter.

If the bulk statement fails (a duplicate fill, say), SQLite undoes that statement alone; the rows are then
written one by one, each in its own savepoint, so that only the bad ones are lost, and :class:`PartialWrite`
names them after the good ones are written.
"""

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from engine.persistence.codec import (
    BALANCE_COLUMNS,
    FILL_COLUMNS,
    FILL_VALUE_COLUMNS,
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    ROUND_TRIP_COLUMNS,
)
from engine.persistence.errors import StoreError
from engine.persistence.rows import EncodedRows

__all__ = ["EQUITY_FROM_JSON", "PartialWrite", "install", "write_rows"]


class PartialWrite(StoreError):
    """Some rows of a bulk write were refused; the others are written. ``errors`` holds one per refused row."""

    def __init__(self, errors: Sequence[Exception]) -> None:
        super().__init__(f"{len(errors)} row(s) refused; first: {errors[0]!r}")
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...] | None  # upsert on this key; None: plain insert
    replace_all: bool = False  # the rows are the whole table (balances): delete the others first


_TABLES = {
    "orders": _Table("orders", ORDER_COLUMNS, ("client_id",)),
    "fills": _Table("fills", FILL_COLUMNS, None),
    "positions": _Table("positions", POSITION_COLUMNS, ("strategy", "pair")),
    "balances": _Table("balances", BALANCE_COLUMNS, ("asset",), replace_all=True),
    "round_trips": _Table("round_trips", ROUND_TRIP_COLUMNS, None),
    "fill_values": _Table("fill_values", FILL_VALUE_COLUMNS, ("trade_id",)),
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

EQUITY_FROM_JSON = (
    "INSERT INTO equity (ts_ns, equity)"
    " SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?) ORDER BY key"
)
# The inbox's columns, in the order the trigger writes them.
_INBOX_KINDS = (*_TABLES, "equity")
_INBOX_INSERT = f"INSERT INTO temp.bulk_inbox ({', '.join(_INBOX_KINDS)}) VALUES ({', '.join('?' * len(_INBOX_KINDS))})"


def _inbox_trigger() -> str:
    steps: list[str] = []
    for kind, table in _TABLES.items():
        if table.replace_all:
            keep = _KEEP_ONLY_SQL.format(name=table.name, key=table.columns[0]).replace("?", f"NEW.{kind}")
            steps.append(keep.replace(" WHERE ", f" WHERE NEW.{kind} IS NOT NULL AND ", 1))
        steps.append(_BULK_SQL[kind].replace("json_each(?)", f"json_each(NEW.{kind})"))
    steps.append(EQUITY_FROM_JSON.replace("json_each(?)", "json_each(NEW.equity)"))
    body = "; ".join(steps)
    return (
        "CREATE TEMP TRIGGER IF NOT EXISTS bulk_inbox_write BEFORE INSERT ON bulk_inbox"
        f" BEGIN {body}; SELECT RAISE(IGNORE); END"
    )


def install(conn: sqlite3.Connection) -> None:
    """Give a writable connection its bulk inbox (TEMP: it lasts as long as the connection)."""
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS bulk_inbox ({', '.join(f'{k} TEXT' for k in _INBOX_KINDS)})")
    conn.execute(_inbox_trigger())


def write_rows(conn: sqlite3.Connection, batch: Sequence[EncodedRows]) -> None:
    """Write the batch: in one statement through the inbox when the connection has one (see the module's
    docstring), else (or when that statement fails) table by table and, for a refused table, row by row.

    Atomic on its own: either everything is written, or the rows that could be are and :class:`PartialWrite`
    names the others, or nothing is and the error is raised.

    Raises:
        PartialWrite: some rows were refused (the rest are written).
        StoreError: an unknown kind of rows.
    """
    for rows in batch:
        if rows.kind not in _INBOX_KINDS:
            raise StoreError(f"no bulk write for {rows.kind!r}")
    columns: dict[str, str | None] = dict.fromkeys(_INBOX_KINDS)
    if len({rows.kind for rows in batch}) == len(batch):
        for rows in batch:
            columns[rows.kind] = rows.payload
        try:
            # The trigger keeps the inbox row itself out (RAISE(IGNORE)): a row counted here means no trigger ran.
            if conn.execute(_INBOX_INSERT, tuple(columns.values())).rowcount == 0:
                return
            conn.execute("DELETE FROM temp.bulk_inbox")
        except sqlite3.DatabaseError:
            pass  # nothing was written (the statement failed as a whole): find out what, below
    conn.execute("SAVEPOINT bulk")
    try:
        errors = [error for rows in batch for error in _write_table(conn, rows)]
    except BaseException:
        conn.execute("ROLLBACK TO bulk")
        conn.execute("RELEASE bulk")
        raise
    conn.execute("RELEASE bulk")
    if errors:
        raise PartialWrite(errors)


def _write_table(conn: sqlite3.Connection, rows: EncodedRows) -> list[Exception]:
    """One kind of rows in one statement; if refused, row by row (returns the refusals)."""
    if rows.kind == "equity":
        conn.execute(EQUITY_FROM_JSON, (rows.payload,))
        return []
    table = _TABLES[rows.kind]
    if table.replace_all:
        conn.execute(_KEEP_ONLY_SQL.format(name=table.name, key=table.columns[0]), (rows.payload,))
    if not rows.count:
        return []
    try:
        conn.execute(_BULK_SQL[rows.kind], (rows.payload,))
    except sqlite3.DatabaseError:
        # The failed statement changed nothing; find the rows at fault one by one.
        return _write_one_by_one(conn, rows.kind, json.loads(rows.payload))
    return []


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
