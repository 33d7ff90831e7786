"""Schema migrations and opening modes on file databases."""

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from sqlite_utils import Database

from engine.persistence import MIGRATIONS, SchemaError, Store, applied_migrations, migrate, pending_migrations

ALL = [
    "m001_initial",
    "m002_events_append_only",
    "m003_account_currency_values",
    "m004_events_wall_clock",
    "m005_canonical_pair_names",
    "m006_order_expiry",
    "m007_optimize_runs",
    "m008_order_reprice_of",
]


def test_new_database_gets_every_migration_wal_and_normal_sync(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "engine.sqlite"
    with Store.open(path) as store:
        assert path.is_file()
        assert applied_migrations(store.db) == ALL
        assert store.db.journal_mode == "wal"
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        tables = set(store.db.table_names())
        assert {"orders", "fills", "balances", "positions", "equity", "round_trips"} <= tables
        assert {"strategy_params", "events", "kv"} <= tables


def test_reopening_applies_nothing_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "engine.sqlite"
    with Store.open(path) as store:
        store.append_equity(1, Decimal("0.00000001"))
        first = [(m.name, m.applied_at) for m in MIGRATIONS.applied(store.db)]
    with Store.open(path) as store:
        assert migrate(store.db) == []
        assert [(m.name, m.applied_at) for m in MIGRATIONS.applied(store.db)] == first
        assert store.load_equity() == [(1, Decimal("0.00000001"))]


def test_an_existing_database_gets_only_the_missing_migrations(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = Database(path, execute_plugins=False)
    MIGRATIONS.apply(old, stop_before="m002_events_append_only")
    old.table("events").insert({"ts_ns": 1, "kind": "k", "source": "s", "payload": "{}"})
    old.close()
    with Store.open(path) as store:
        assert applied_migrations(store.db) == ALL
        assert pending_migrations(store.db) == []
        assert store.count_events() == 1
        with pytest.raises(sqlite3.IntegrityError):
            store.db.execute("DELETE FROM events")


def test_readonly_store_reads_while_the_writer_is_open(tmp_path: Path) -> None:
    path = tmp_path / "engine.sqlite"
    with Store.open(path) as writer:
        writer.set_kv("mode", "paper")
        with Store.open_readonly(path) as reader:
            assert reader.readonly
            assert reader.get_kv("mode") == "paper"
            writer.set_kv("mode", "live")
            assert reader.get_kv("mode") == "live"
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                reader.set_kv("mode", "x")
    with Store.open_readonly(path) as reader:
        assert reader.get_kv("mode") == "live"


def test_readonly_refuses_missing_foreign_and_outdated_files(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no store"):
        Store.open_readonly(tmp_path / "missing.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SchemaError):
        Store.open_readonly(junk)
    with pytest.raises(SchemaError):
        Store.open(junk)
    old = tmp_path / "old.sqlite"
    db = Database(old, execute_plugins=False)
    MIGRATIONS.apply(db, stop_before="m002_events_append_only")
    db.close()
    with pytest.raises(SchemaError, match="m002_events_append_only"):
        Store.open_readonly(old)
