"""The store's schema as versioned migrations (``sqlite_utils.Migrations``).

A new database gets every migration; an existing one only those it lacks; the applied names are recorded in
``_sqlite_migrations``. Never edit a released migration: append a new one. Every table is STRICT, so SQLite
itself refuses e.g. a REAL in an INTEGER timestamp column (a REAL bound to a TEXT column would silently become
text, which is why the codec stops floats before they get here).

Column conventions: Decimals are TEXT (see :mod:`engine.persistence.codec`), timestamps are INTEGER UTC
nanoseconds (``*_ts_ns``), JSON is TEXT, booleans are INTEGER 0/1.
"""

from sqlite_utils import Database, Migrations
from sqlite_utils.db import Table

__all__ = ["MIGRATIONS", "MIGRATION_SET", "applied_migrations", "migrate", "pending_migrations"]

MIGRATION_SET = "engine.persistence"
MIGRATIONS = Migrations(MIGRATION_SET)


def _table(db: Database, name: str) -> Table:
    return db.table(name)


@MIGRATIONS(name="m001_initial")
def m001_initial(db: Database) -> None:
    """Every table of the first release."""
    _table(db, "orders").create(
        {
            "client_id": str,
            "pair": str,
            "side": str,
            "order_type": str,
            "qty": str,
            "limit_price": str,
            "strategy": str,
            "status": str,
            "venue_order_id": str,
            "filled_qty": str,
            "filled_cost": str,
            "fees": str,
            "reason": str,
            "created_ts_ns": int,
            "updated_ts_ns": int,
            "trade_ids": str,
        },
        pk="client_id",
        not_null=[
            "pair",
            "side",
            "order_type",
            "qty",
            "strategy",
            "status",
            "filled_qty",
            "filled_cost",
            "fees",
            "reason",
            "created_ts_ns",
            "updated_ts_ns",
            "trade_ids",
        ],
        strict=True,
    )
    _table(db, "orders").create_index(["status"])
    _table(db, "fills").create(
        {
            "trade_id": str,
            "client_id": str,
            "pair": str,
            "side": str,
            "qty": str,
            "price": str,
            "fee": str,
            "fee_asset": str,
            "ts_ns": int,
            "liquidity": str,
            "strategy": str,
            "venue_order_id": str,
        },
        pk="trade_id",
        not_null=[
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
        ],
        strict=True,
    )
    _table(db, "fills").create_index(["client_id"])
    _table(db, "fills").create_index(["ts_ns"])
    _table(db, "balances").create(
        {"asset": str, "total": str, "held": str}, pk="asset", not_null=["total", "held"], strict=True
    )
    _table(db, "positions").create(
        {
            "strategy": str,
            "pair": str,
            "qty": str,
            "avg_entry": str,
            "realized_pnl": str,
            "fees": str,
            "opened_ts_ns": int,
            "updated_ts_ns": int,
            "trade_ids": str,
        },
        pk=("strategy", "pair"),
        not_null=["qty", "avg_entry", "realized_pnl", "fees", "updated_ts_ns", "trade_ids"],
        strict=True,
    )
    _table(db, "equity").create(
        {"id": int, "ts_ns": int, "equity": str, "cash": str},
        pk="id",
        not_null=["ts_ns", "equity"],
        strict=True,
    )
    _table(db, "equity").create_index(["ts_ns"])
    _table(db, "round_trips").create(
        {
            "id": int,
            "pair": str,
            "strategy": str,
            "entry_ts_ns": int,
            "exit_ts_ns": int,
            "qty": str,
            "entry_price": str,
            "exit_price": str,
            "pnl": str,
            "fees": str,
        },
        pk="id",
        not_null=[
            "pair",
            "strategy",
            "entry_ts_ns",
            "exit_ts_ns",
            "qty",
            "entry_price",
            "exit_price",
            "pnl",
            "fees",
        ],
        strict=True,
    )
    _table(db, "round_trips").create_index(["exit_ts_ns"])
    _table(db, "strategy_params").create(
        {
            "strategy": str,
            "version": int,
            "params": str,
            "enabled": int,
            "ts_ns": int,
            "source": str,
            "note": str,
        },
        pk=("strategy", "version"),
        not_null=["params", "enabled", "ts_ns", "source", "note"],
        strict=True,
    )
    # AUTOINCREMENT (not expressible through Table.create) so that ids are never reused, even in theory.
    db.execute(
        "CREATE TABLE [events] ("
        " [id] INTEGER PRIMARY KEY AUTOINCREMENT,"
        " [ts_ns] INTEGER NOT NULL,"
        " [kind] TEXT NOT NULL,"
        " [source] TEXT NOT NULL,"
        " [payload] TEXT NOT NULL"
        ") STRICT"
    )
    _table(db, "events").create_index(["kind", "id"])
    _table(db, "kv").create({"key": str, "value": str}, pk="key", not_null=["value"], strict=True)


@MIGRATIONS(name="m002_events_append_only")
def m002_events_append_only(db: Database) -> None:
    """Make the audit log append-only in the database itself, not only by the Store's missing methods."""
    for action in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER [events_no_{action.lower()}] BEFORE {action} ON [events]"
            f" BEGIN SELECT RAISE(ABORT, 'events is append-only'); END"
        )


@MIGRATIONS(name="m003_account_currency_values")
def m003_account_currency_values(db: Database) -> None:
    """Realized figures in the account currency: round trips' ``pnl_value``, ``fees_value`` and the
    ``value_currency`` they are in, and ``fill_values`` (each converted fill's fee and realized PnL, valued when
    booked, so that a restart re-books the fills at the same values).

    Older round trips get NULL in the three columns: the account currency is not recorded in the database, so
    :meth:`engine.persistence.Store.value_legacy_round_trips` (run by the engine when it starts, knowing it)
    gives the rows of pairs quoted in it their ``pnl`` and ``fees`` as values; the others stay NULL (unknown).
    Older fills have no ``fill_values`` row: their values are unknown unless they need no conversion.
    """
    for column in ("pnl_value", "fees_value", "value_currency"):
        db.execute(f"ALTER TABLE [round_trips] ADD COLUMN [{column}] TEXT")
    _table(db, "fill_values").create(
        {"trade_id": str, "fee_value": str, "realized_value": str, "value_currency": str},
        pk="trade_id",
        not_null=["value_currency"],
        strict=True,
    )


@MIGRATIONS(name="m004_events_wall_clock")
def m004_events_wall_clock(db: Database) -> None:
    """Audit records carry the wall-clock time they were written at (``wall_ts_ns``) beside ``ts_ns``, the
    engine's clock, which in a replay is the replayed market's time. Older events have NULL (unknown)."""
    db.execute("ALTER TABLE [events] ADD COLUMN [wall_ts_ns] INTEGER")


@MIGRATIONS(name="m005_canonical_pair_names")
def m005_canonical_pair_names(db: Database) -> None:
    """Pairs are named by their canonical name, Kraken's WebSocket v2 symbol (``BTC/USD``), no longer by the
    altname (``XBTUSD``): orders, fills, positions and round trips are renamed for every pair of the catalogue
    in use (its altname, REST key and v1 name), and so is a pair named in the recorded data source (several
    replayed files). Pairs the catalogue does not know keep their names. The audit log keeps what it said."""
    from engine.market.catalog_files import current_catalog

    renames: dict[str, str] = {}
    for inst in current_catalog():
        for old in (inst.altname, inst.rest_name, inst.wsname):
            if old and old != inst.pair:
                renames.setdefault(old, inst.pair)
    for table in ("orders", "fills", "positions", "round_trips"):
        for old, new in renames.items():
            db.execute(f"UPDATE [{table}] SET pair = ? WHERE pair = ?", (new, old))
    for key in ("source_id", "source"):
        row = db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            continue
        value = str(row[0])
        for old, new in renames.items():
            value = value.replace(f":{old}+", f":{new}+").replace(f":{old} ", f":{new} ")
        db.execute("UPDATE kv SET value = ? WHERE key = ?", (value, key))


@MIGRATIONS(name="m006_order_expiry")
def m006_order_expiry(db: Database) -> None:
    """Orders carry their good-till-date expiry (``expires_ns``, UTC nanoseconds), so that the simulated venue
    still expires an order it takes back after a restart. Older orders get NULL: they never expire."""
    db.execute("ALTER TABLE [orders] ADD COLUMN [expires_ns] INTEGER")


@MIGRATIONS(name="m007_optimize_runs")
def m007_optimize_runs(db: Database) -> None:
    """``trading-mcp optimize`` runs (:mod:`engine.persistence.optimize_runs`): one ``optimize_runs`` row per
    finished run (its search arguments as JSON, the digest of its data file, seed, best parameters, value and
    metrics, and the summary ``--json`` prints), and one ``optimize_trials`` row per trial (fold, state,
    parameters, objective value, metrics). A run and its trials are written in one transaction when it ends: an
    interrupted run leaves nothing. ``rerun_of`` names the run a ``--rerun`` repeated."""
    db.execute(
        "CREATE TABLE [optimize_runs] ("
        " [id] INTEGER PRIMARY KEY AUTOINCREMENT,"
        " [created_ts_ns] INTEGER NOT NULL,"
        " [strategy] TEXT NOT NULL,"
        " [data] TEXT NOT NULL,"
        " [data_sha256] TEXT NOT NULL,"
        " [objective] TEXT NOT NULL,"
        " [sampler] TEXT NOT NULL,"
        " [seed] INTEGER NOT NULL,"
        " [trials] INTEGER NOT NULL,"
        " [folds] INTEGER NOT NULL,"
        " [args] TEXT NOT NULL,"
        " [best_params] TEXT,"
        " [best_value] TEXT,"
        " [best_metrics] TEXT,"
        " [summary] TEXT NOT NULL,"
        " [elapsed_ms] INTEGER NOT NULL,"
        " [rerun_of] INTEGER REFERENCES [optimize_runs]([id])"
        ") STRICT"
    )
    db.execute(
        "CREATE TABLE [optimize_trials] ("
        " [run_id] INTEGER NOT NULL REFERENCES [optimize_runs]([id]),"
        " [number] INTEGER NOT NULL,"
        " [fold] INTEGER NOT NULL,"
        " [state] TEXT NOT NULL,"
        " [params] TEXT NOT NULL,"
        " [value] TEXT,"
        " [metrics] TEXT NOT NULL,"
        " PRIMARY KEY ([run_id], [number])"
        ") STRICT"
    )


def migrate(db: Database) -> list[str]:
    """Apply the pending migrations (each in its own transaction) and return their names."""
    names = [m.name for m in MIGRATIONS.pending(db)]
    MIGRATIONS.apply(db)
    return names


def pending_migrations(db: Database) -> list[str]:
    """Names of the migrations this database lacks (read-only)."""
    return [m.name for m in MIGRATIONS.pending(db)]


@MIGRATIONS(name="m008_order_reprice_of")
def m008_order_reprice_of(db: Database) -> None:
    """Orders name the expired limit entry they send again (``reprice_of``, its client id), so that a restart
    knows how many reprices a strategy's entry has left. Older orders get NULL: not a reprice."""
    db.execute("ALTER TABLE [orders] ADD COLUMN [reprice_of] TEXT")


def applied_migrations(db: Database) -> list[str]:
    """Names of the migrations recorded in this database, in the order they were applied (read-only)."""
    return [m.name for m in MIGRATIONS.applied(db)]
