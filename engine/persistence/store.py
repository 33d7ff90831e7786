"""The synchronous store: one SQLite file (WAL, ``synchronous=NORMAL``) behind one ``sqlite_utils.Database``.

A :class:`Store` is bound to the thread that opened it (sqlite3's rule). In the engine the only writable Store
lives inside :class:`engine.persistence.writer.StoreWriter`'s thread; readers such as the CLI ``status``
command open their own :meth:`Store.open_readonly`.

Each write method is a single statement, or wraps its statements in :meth:`Store.atomic`, so it is atomic on
its own and joins the caller's transaction when one is open.
"""

import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlite_utils import Database

from engine.domain.balances import AssetBalance
from engine.domain.orders import Fill, Order, OrderStatus
from engine.domain.positions import Position
from engine.persistence.bulk import EQUITY_FROM_JSON, install, write_rows
from engine.persistence.codec import (
    BALANCE_COLUMNS,
    FILL_COLUMNS,
    FILL_VALUE_COLUMNS,
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    balance_to_row,
    dec_from_text,
    dec_to_text,
    fill_to_row,
    fill_value_to_row,
    from_json,
    opt_dec_to_text,
    order_to_row,
    position_to_row,
    round_trip_to_row,
    row_to_balance,
    row_to_event,
    row_to_fill,
    row_to_fill_value,
    row_to_order,
    row_to_params_record,
    row_to_position,
    row_to_round_trip,
    to_json,
)
from engine.persistence.errors import DuplicateRecord, SchemaError, StoreError
from engine.persistence.records import EventRecord, FillValueRow, RoundTripRow, StrategyParamsRecord
from engine.persistence.rows import EncodedRows, equity_payload
from engine.persistence.schema import migrate, pending_migrations

__all__ = ["BUSY_TIMEOUT_MS", "TABLES", "Store"]

BUSY_TIMEOUT_MS = 5000
TABLES = (
    "orders",
    "fills",
    "balances",
    "positions",
    "equity",
    "round_trips",
    "fill_values",
    "strategy_params",
    "events",
    "kv",
)

_OPEN_STATUSES = tuple(s.value for s in OrderStatus if s.is_open)


def _upsert_sql(table: str, columns: Iterable[str], key: tuple[str, ...]) -> str:
    cols = list(columns)
    updates = ", ".join(f"[{c}] = excluded.[{c}]" for c in cols if c not in key)
    return (
        f"INSERT INTO [{table}] ({', '.join(f'[{c}]' for c in cols)})"
        f" VALUES ({', '.join(f':{c}' for c in cols)})"
        f" ON CONFLICT ({', '.join(f'[{k}]' for k in key)}) DO UPDATE SET {updates}"
    )


_ORDER_UPSERT = _upsert_sql("orders", ORDER_COLUMNS, ("client_id",))
_POSITION_UPSERT = _upsert_sql("positions", POSITION_COLUMNS, ("strategy", "pair"))
_BALANCE_UPSERT = _upsert_sql("balances", BALANCE_COLUMNS, ("asset",))
_FILL_VALUE_UPSERT = _upsert_sql("fill_values", FILL_VALUE_COLUMNS, ("trade_id",))
_FILL_INSERT = f"INSERT INTO fills ({', '.join(FILL_COLUMNS)}) VALUES ({', '.join('?' * len(FILL_COLUMNS))})"
_KEY_CONFLICTS = frozenset({sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE})


class Store:
    """Typed reads and writes of the engine's state. Not thread-safe: use it from one thread only."""

    def __init__(self, db: Database, *, path: Path | None, readonly: bool) -> None:
        """Wrap an already configured database; use :meth:`open` or :meth:`open_readonly` instead."""
        self._db = db
        self.path = path
        self.readonly = readonly
        self._synced_once = False

    # -- lifecycle -------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | None, *, check_same_thread: bool = True) -> Self:
        """Open (creating it and its parent directories if needed) and migrate a store.

        Args:
            path: the database file, or None for a private in-memory database.
            check_same_thread: sqlite3's guard; pass False only to hand the store to another thread that will
                then be its sole user.

        Raises:
            SchemaError: the file exists but is not a SQLite database.
        """
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(":memory:" if path is None else str(path), check_same_thread=check_same_thread)
        try:
            db = Database(conn, execute_plugins=False)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if path is not None:
                db.enable_wal()
            # NORMAL in WAL mode: a commit survives an application crash; only a power loss can drop the last
            # few commits, never corrupt the file.
            db.execute("PRAGMA synchronous = NORMAL")
            migrate(db)
            install(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise SchemaError(f"cannot open store {path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return cls(db, path=path, readonly=False)

    @classmethod
    def open_readonly(cls, path: Path, *, check_same_thread: bool = True) -> Self:
        """Open an existing store for reading only (e.g. while the engine's writer is running).

        Raises:
            SchemaError: the file is missing, not a database, or lacks migrations this code expects.
        """
        if not path.is_file():
            raise SchemaError(f"no store at {path}")
        uri = f"{path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=check_same_thread)
        try:
            db = Database(conn, execute_plugins=False)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            missing = pending_migrations(db)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise SchemaError(f"cannot open store {path}: {exc}") from exc
        if missing:
            conn.close()
            raise SchemaError(f"store {path} lacks migrations {missing}; open it writable once to upgrade")
        return cls(db, path=path, readonly=True)

    @property
    def db(self) -> Database:
        """The underlying database, for ad-hoc queries and tests."""
        return self._db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def atomic(self) -> Iterator[Self]:
        """A unit of work: commits on success, rolls back on any exception; nests as a savepoint."""
        with self._db.atomic():
            yield self

    # -- writes ----------------------------------------------------------------------------------------

    def upsert_order(self, order: Order) -> None:
        """Insert or replace the order's whole row (intent and current state)."""
        self._db.execute(_ORDER_UPSERT, order_to_row(order))

    def add_fill(self, fill: Fill) -> None:
        """Record one execution.

        Raises:
            DuplicateRecord: a fill with this trade id is already stored (nothing is written).
        """
        try:
            self._db.execute(_FILL_INSERT, fill_to_row(fill))
        except sqlite3.IntegrityError as exc:
            if getattr(exc, "sqlite_errorcode", None) in _KEY_CONFLICTS:
                raise DuplicateRecord(f"fill {fill.trade_id} is already stored") from exc
            raise

    def set_balances(self, balances: Mapping[str, AssetBalance], *, replace: bool = True) -> None:
        """Store balances. With ``replace`` (the default) the mapping is the full snapshot: assets absent
        from it are removed; otherwise only the given assets are written."""
        with self._db.atomic():
            if replace:
                assets = list(balances)
                marks = ", ".join("?" * len(assets))
                self._db.execute(f"DELETE FROM balances WHERE asset NOT IN ({marks})", assets)
            for asset, balance in balances.items():
                self._db.execute(_BALANCE_UPSERT, balance_to_row(asset, balance))

    def upsert_position(self, pos: Position) -> None:
        self._db.execute(_POSITION_UPSERT, position_to_row(pos))

    def append_equity(self, ts_ns: int, equity: Decimal, cash: Decimal | None = None) -> None:
        self._db.execute(
            "INSERT INTO equity (ts_ns, equity, cash) VALUES (?, ?, ?)",
            (ts_ns, dec_to_text(equity), opt_dec_to_text(cash)),
        )

    def append_equity_many(self, points: Iterable[tuple[int, Decimal]]) -> None:
        rows = [(ts_ns, dec_to_text(equity)) for ts_ns, equity in points]
        with self._db.atomic():
            self._db.conn.executemany("INSERT INTO equity (ts_ns, equity) VALUES (?, ?)", rows)

    def append_equity_columns(self, ts_ns: Sequence[int], equity: Sequence[Decimal]) -> None:
        """Append the points ``(ts_ns[i], equity[i])`` in order, as one statement (see :mod:`.bulk`: a backtest
        writes a point per candle, and one statement lets SQLite insert them with the GIL released).

        Raises:
            CodecError: an equity value is not a finite Decimal.
            StoreError: the columns differ in length, or a timestamp is not an int.
        """
        if ts_ns or equity:
            self._db.execute(EQUITY_FROM_JSON, (equity_payload(ts_ns, equity),))

    def replace_equity_before(self, cut_ns: int, ts_ns: Sequence[int], equity: Sequence[Decimal]) -> None:
        """Replace every equity point stamped before ``cut_ns`` with the points given (all before it, in order),
        in one transaction: the compacted curve (see :mod:`engine.portfolio.curve_compaction`).

        Raises:
            StoreError: a point is not before ``cut_ns`` (or the columns differ in length).
        """
        if any(ts >= cut_ns for ts in ts_ns):
            raise StoreError(f"compacted equity points must be stamped before {cut_ns}")
        with self._db.atomic():
            self._db.execute("DELETE FROM equity WHERE ts_ns < ?", (cut_ns,))
            self.append_equity_columns(ts_ns, equity)

    def write_rows(self, batch: Sequence[EncodedRows]) -> None:
        """Write rows encoded by :mod:`.bulk`'s ``encode_*`` functions (one statement for the whole batch).

        Raises:
            PartialWrite: some rows were refused (each is named; the rest are written).
        """
        write_rows(self._db.conn, batch)

    def add_round_trip(self, trip: RoundTripRow) -> int:
        """Record a closed trade; returns its id (``trip.id`` is ignored)."""
        row = round_trip_to_row(trip)
        columns = ", ".join(row)
        cursor = self._db.execute(
            f"INSERT INTO round_trips ({columns}) VALUES ({', '.join(f':{c}' for c in row)})", row
        )
        return _lastrowid(cursor)

    def add_fill_value(self, value: FillValueRow) -> None:
        """Record (or replace) the account-currency values a fill was booked at."""
        self._db.execute(_FILL_VALUE_UPSERT, dict(zip(FILL_VALUE_COLUMNS, fill_value_to_row(value), strict=True)))

    def value_legacy_round_trips(self, value_currency: str, pairs: Iterable[str]) -> int:
        """Give round trips stored before migration m003 in ``pairs`` their ``pnl`` and ``fees`` as values.

        Args:
            value_currency: the account currency.
            pairs: the pairs quoted in it (their quote figures are account currency already).

        Only rows with no value and no ``value_currency`` are touched, so rows stored since (whose values may be
        legitimately unknown) never are; idempotent. Rows of other pairs stay unknown (NULL).

        Returns:
            How many rows were valued.
        """
        chosen = sorted(set(pairs))
        if not chosen:
            return 0
        cursor = self._db.execute(
            "UPDATE round_trips SET pnl_value = pnl, fees_value = fees, value_currency = ?"
            " WHERE value_currency IS NULL AND pnl_value IS NULL AND fees_value IS NULL"
            f" AND pair IN ({', '.join('?' * len(chosen))})",
            [value_currency, *chosen],
        )
        return int(cursor.rowcount)

    def append_event(
        self, ts_ns: int, kind: str, source: str, payload: Mapping[str, Any], wall_ts_ns: int | None = None
    ) -> int:
        """Append to the audit log (which cannot be updated or deleted); returns the event id.

        ``ts_ns`` is the engine's clock (the replayed market's time in a replay), ``wall_ts_ns`` the wall clock.
        """
        cursor = self._db.execute(
            "INSERT INTO events (ts_ns, kind, source, payload, wall_ts_ns) VALUES (?, ?, ?, ?, ?)",
            (ts_ns, kind, source, to_json(payload), wall_ts_ns),
        )
        return _lastrowid(cursor)

    def sync(self) -> None:
        """Make every commit so far survive a power loss of the machine, not only the death of the process.

        In WAL mode with ``synchronous=NORMAL`` a commit is safe from a crash of the process at once but reaches
        the disk only at the next checkpoint. Syncing the log file (``<db>-wal``) makes every commit in it
        durable; the folder is synced the first time, so the log file itself cannot vanish. A no-op for an
        in-memory store. Call it between transactions.

        Raises:
            OSError: the log cannot be synced (durability unknown).
        """
        if self.path is None:
            return
        for target, first_only in ((Path(f"{self.path}-wal"), False), (self.path.parent, True)):
            if first_only and self._synced_once:
                continue
            try:
                fd = os.open(target, os.O_RDONLY)
            except FileNotFoundError:
                continue  # no log yet: every commit is in the database file, synced by its checkpoint
            except OSError:
                if first_only:
                    continue  # a folder cannot be opened on every platform (Windows): its sync is best effort
                raise
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._synced_once = True

    def save_strategy_params(
        self,
        strategy: str,
        params: Mapping[str, Any],
        enabled: bool,
        ts_ns: int,
        source: str,
        note: str = "",
    ) -> int:
        """Store a new version of a strategy's parameters and return its number (1 for the first).

        Args:
            source: who made the change, e.g. ``"config"`` or ``"mcp:<client>"``.
        """
        encoded = to_json(params)
        with self._db.atomic():
            row = self._db.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM strategy_params WHERE strategy = ?", (strategy,)
            ).fetchone()
            version = int(row[0])
            self._db.execute(
                "INSERT INTO strategy_params (strategy, version, params, enabled, ts_ns, source, note)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (strategy, version, encoded, int(enabled), ts_ns, source, note),
            )
        return version

    def set_kv(self, key: str, value: Any) -> None:
        """Store run state under ``key`` (JSON; Decimals come back as strings)."""
        self._db.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, to_json(value)),
        )

    def delete_kv(self, key: str) -> bool:
        """Remove ``key``; returns whether it existed."""
        return self._db.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount > 0

    # -- reads -----------------------------------------------------------------------------------------

    def get_kv(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return default if row is None else from_json(row[0])

    def load_kv(self) -> dict[str, Any]:
        return {row["key"]: from_json(row["value"]) for row in self._db.query("SELECT key, value FROM kv")}

    def load_orders(self, open_only: bool = False) -> list[Order]:
        """Orders rebuilt exactly (status, fills so far, trade ids), oldest first."""
        where = f"WHERE status IN ({', '.join('?' * len(_OPEN_STATUSES))})" if open_only else ""
        sql = f"SELECT * FROM orders {where} ORDER BY created_ts_ns, client_id"
        return [row_to_order(r) for r in self._db.query(sql, _OPEN_STATUSES if open_only else ())]

    def get_order(self, client_id: str) -> Order | None:
        rows = list(self._db.query("SELECT * FROM orders WHERE client_id = ?", (client_id,)))
        return row_to_order(rows[0]) if rows else None

    def load_fills(self, client_id: str | None = None) -> list[Fill]:
        """Fills in time order (ties in insertion order), optionally of one order."""
        if client_id is None:
            rows = self._db.query("SELECT * FROM fills ORDER BY ts_ns, rowid")
        else:
            rows = self._db.query("SELECT * FROM fills WHERE client_id = ? ORDER BY ts_ns, rowid", (client_id,))
        return [row_to_fill(r) for r in rows]

    def recent_fills(self, limit: int) -> list[Fill]:
        """The last ``limit`` fills in time order (as :meth:`load_fills` would end), read with a limit in SQL."""
        rows = self._db.query("SELECT * FROM fills ORDER BY ts_ns DESC, rowid DESC LIMIT ?", (max(limit, 0),))
        return [row_to_fill(r) for r in reversed(list(rows))]

    def load_balances(self) -> dict[str, AssetBalance]:
        return {r["asset"]: row_to_balance(r) for r in self._db.query("SELECT * FROM balances ORDER BY asset")}

    def load_positions(self) -> list[Position]:
        return [row_to_position(r) for r in self._db.query("SELECT * FROM positions ORDER BY strategy, pair")]

    def load_equity(self, since_ts_ns: int | None = None) -> list[tuple[int, Decimal]]:
        """Equity points ``(ts_ns, equity)`` in time order, optionally from ``since_ts_ns`` on."""
        sql = "SELECT ts_ns, equity FROM equity WHERE ts_ns >= ? ORDER BY ts_ns, id"
        rows = self._db.execute(sql, (since_ts_ns if since_ts_ns is not None else -(2**63),)).fetchall()
        return [(ts, dec_from_text(eq)) for ts, eq in rows]

    def load_round_trips(self, strategy: str | None = None) -> list[RoundTripRow]:
        """Closed trades in exit order, optionally of one strategy."""
        where, args = ("WHERE strategy = ?", (strategy,)) if strategy is not None else ("", ())
        rows = self._db.query(f"SELECT * FROM round_trips {where} ORDER BY exit_ts_ns, id", args)
        return [row_to_round_trip(r) for r in rows]

    def load_fill_values(self) -> list[FillValueRow]:
        """One row per stored fill, in the order of :meth:`load_fills`: the values it was booked at, or all None
        when none were stored (a fill that needed no conversion, or one stored before migration m003)."""
        rows = self._db.query(
            "SELECT f.trade_id AS trade_id, v.fee_value AS fee_value, v.realized_value AS realized_value,"
            " v.value_currency AS value_currency"
            " FROM fills f LEFT JOIN fill_values v ON v.trade_id = f.trade_id ORDER BY f.ts_ns, f.rowid"
        )
        return [row_to_fill_value(r) for r in rows]

    def latest_strategy_params(self, source: str | None = None) -> dict[str, StrategyParamsRecord]:
        """The current (highest) version of every strategy's parameters; of those saved by ``source`` if given
        (``"config"``: what the configuration said the last time it was applied)."""
        where, args = ("WHERE source = ?", (source,)) if source is not None else ("", ())
        rows = self._db.query(
            "SELECT p.* FROM strategy_params p JOIN (SELECT strategy, MAX(version) AS version"
            f" FROM strategy_params {where} GROUP BY strategy) m USING (strategy, version) ORDER BY p.strategy",
            args,
        )
        return {r["strategy"]: row_to_params_record(r) for r in rows}

    def strategy_param_history(self, strategy: str) -> list[StrategyParamsRecord]:
        """Every version of one strategy's parameters, oldest first."""
        rows = self._db.query("SELECT * FROM strategy_params WHERE strategy = ? ORDER BY version", (strategy,))
        return [row_to_params_record(r) for r in rows]

    def tail_events(self, n: int, kind: str | None = None) -> list[EventRecord]:
        """The last ``n`` events (of ``kind`` if given), oldest first, like ``tail``."""
        where, args = ("WHERE kind = ?", [kind]) if kind is not None else ("", [])
        rows = self._db.query(f"SELECT * FROM events {where} ORDER BY id DESC LIMIT ?", [*args, max(n, 0)])
        return [row_to_event(r) for r in reversed(list(rows))]

    def events_after(self, after_id: int, limit: int = 100, kind: str | None = None) -> list[EventRecord]:
        """Up to ``limit`` events with id greater than ``after_id``, oldest first (for cursors)."""
        where = "AND kind = ?" if kind is not None else ""
        args: list[object] = [after_id, *([kind] if kind is not None else []), max(limit, 0)]
        rows = self._db.query(f"SELECT * FROM events WHERE id > ? {where} ORDER BY id LIMIT ?", args)
        return [row_to_event(r) for r in rows]

    def count(self, table: str) -> int:
        """Rows in one of :data:`TABLES`."""
        if table not in TABLES:
            raise StoreError(f"unknown table {table!r}")
        return int(self._db.execute(f"SELECT COUNT(*) FROM [{table}]").fetchone()[0])

    def counts(self) -> dict[str, int]:
        """Row counts of every table (for ``status`` and diagnostics)."""
        return {table: self.count(table) for table in TABLES}

    def count_orders(self, open_only: bool = False) -> int:
        if not open_only:
            return self.count("orders")
        sql = f"SELECT COUNT(*) FROM orders WHERE status IN ({', '.join('?' * len(_OPEN_STATUSES))})"
        return int(self._db.execute(sql, _OPEN_STATUSES).fetchone()[0])

    def count_fills(self) -> int:
        return self.count("fills")

    def count_events(self, kind: str | None = None) -> int:
        if kind is None:
            return self.count("events")
        return int(self._db.execute("SELECT COUNT(*) FROM events WHERE kind = ?", (kind,)).fetchone()[0])


def _lastrowid(cursor: sqlite3.Cursor) -> int:
    rowid = cursor.lastrowid
    assert rowid is not None, "INSERT without a rowid"
    return rowid
