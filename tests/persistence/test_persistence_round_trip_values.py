"""Account-currency values of round trips and fills: stored by both write paths, read back exactly, older databases
migrated (old rows valued only where the quote is the account currency), and a restart re-books at stored values."""

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from fakes.instruments import example_instruments
from sqlite_utils import Database

from engine.domain.orders import ClientOrderId, Fill, Order, OrderFilled, OrderSide, OrderType, TradeId
from engine.persistence import MIGRATIONS, FillValueRow, RoundTripRow, SchemaError, Store, StoreWriter
from engine.persistence.rows import encode_fill_values, encode_fills, encode_round_trips
from engine.portfolio.performance import ClosedTrade, compute_trade_report
from engine.portfolio.portfolio import Portfolio
from engine.runtime.journal import Journal

D = Decimal
WAIT = 10
SHIPPED = example_instruments()  # BTC/USD, BTC/USDT, ETH/BTC
VALUED = RoundTripRow("ETH/BTC", "s", 1, 2, D(2), D("0.05"), D("0.06"), D("0.01912"), D("0.00088"),
                      pnl_value=D("1151.2"), fees_value=D("48.8"), value_currency="USD")  # fmt: skip
UNKNOWN = replace(VALUED, pnl_value=None, fees_value=None)
SAME = RoundTripRow("BTC/USD", "s", 3, 4, D("0.1"), D(100), D(110), D("0.9"), D("0.1"), value_currency="USD")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "s.sqlite") as s:
        yield s


def _fill(n: int, pair: str, side: OrderSide, qty: str, price: str, fee: str, asset: str) -> Fill:
    return Fill(TradeId(f"t{n}"), ClientOrderId(f"c{n}"), pair, side, D(qty), D(price), D(fee), asset, n,
                strategy="s")  # fmt: skip


def _trades(rows: list[RoundTripRow]) -> list[ClosedTrade]:
    return [ClosedTrade(r.pair, r.strategy, r.entry_ts_ns, r.exit_ts_ns, r.qty, r.entry_price, r.exit_price, r.pnl,
                        r.fees, r.pnl_value, r.fees_value, r.value_currency) for r in rows]  # fmt: skip


def test_values_are_stored_exactly_by_the_plain_and_the_bulk_path(store: Store, tmp_path: Path) -> None:
    assert SAME.pnl_value is SAME.pnl and SAME.fees_value is SAME.fees  # left out: the quote figures
    for trip in (VALUED, UNKNOWN, SAME):
        store.add_round_trip(trip)
    value = FillValueRow("t1", D("20.00"), None, "USD")
    store.add_fill(_fill(1, "ETH/BTC", OrderSide.BUY, "2", "0.05", "0.0004", "BTC"))
    store.add_fill_value(value)
    with Store.open(tmp_path / "bulk.sqlite") as bulk:
        bulk.write_rows(
            [
                encode_fills([_fill(1, "ETH/BTC", OrderSide.BUY, "2", "0.05", "0.0004", "BTC")]),
                encode_round_trips([VALUED, UNKNOWN, SAME]),
                encode_fill_values([value]),
            ]
        )
        for s in (store, bulk):
            assert [replace(t, id=None) for t in s.load_round_trips()] == [VALUED, UNKNOWN, SAME]
            assert s.load_fill_values() == [value]
        query = "SELECT * FROM {} ORDER BY rowid"
        for table in ("round_trips", "fill_values"):
            plain_rows = store.db.execute(query.format(table)).fetchall()
            assert bulk.db.execute(query.format(table)).fetchall() == plain_rows
    store.add_fill_value(replace(value, realized_value=D(0)))  # upserted by trade id
    assert store.load_fill_values() == [replace(value, realized_value=D(0))]


def test_every_fill_gets_a_value_row_even_when_none_was_stored(store: Store) -> None:
    store.add_fill(_fill(1, "BTC/USD", OrderSide.BUY, "0.1", "50000", "20", "USD"))
    store.add_fill(_fill(2, "ETH/BTC", OrderSide.BUY, "2", "0.05", "0.0004", "BTC"))
    store.add_fill_value(FillValueRow("t2", D(20), D(0), "USD"))
    assert store.load_fill_values() == [FillValueRow("t1", None, None, None), FillValueRow("t2", D(20), D(0), "USD")]


def _old_database(path: Path) -> None:
    """A store as the release before m003 wrote it: two round trips and one fill."""
    db = Database(path, execute_plugins=False)
    MIGRATIONS.apply(db, stop_before="m003_account_currency_values")
    for pair, pnl in (("BTC/USD", "0.9"), ("ETH/BTC", "0.01912")):
        db.execute(
            "INSERT INTO round_trips (pair, strategy, entry_ts_ns, exit_ts_ns, qty, entry_price, exit_price, pnl,"
            " fees) VALUES (?, 's', 1, 2, '1', '1', '1', ?, '0.1')",
            (pair, pnl),
        )
    db.execute(
        "INSERT INTO fills (trade_id, client_id, pair, side, qty, price, fee, fee_asset, ts_ns, liquidity, strategy)"
        " VALUES ('old', 'c', 'ETH/BTC', 'buy', '2', '0.05', '0.0004', 'BTC', 1, 'taker', 's')"
    )
    db.conn.commit()
    db.close()


def test_an_older_database_opens_and_only_account_quoted_rows_get_values(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _old_database(path)
    with Store.open(path) as store:
        old = store.load_round_trips()
        assert [(t.pair, t.pnl_value, t.fees_value, t.value_currency) for t in old] == [
            ("BTC/USD", None, None, None),
            ("ETH/BTC", None, None, None),
        ]
        assert store.load_fill_values() == [FillValueRow("old", None, None, None)]
        # A row stored since whose value is legitimately unknown is never touched.
        store.add_round_trip(replace(UNKNOWN, pair="BTC/USD"))
        assert store.value_legacy_round_trips("USD", ["BTC/USD", "BTC/USDT"]) == 1
        assert store.value_legacy_round_trips("USD", ["BTC/USD", "BTC/USDT"]) == 0  # idempotent
        xbt, eth, new = store.load_round_trips()
        assert (xbt.pnl_value, xbt.fees_value, xbt.value_currency) == (D("0.9"), D("0.1"), "USD")
        assert (eth.pnl_value, eth.fees_value, eth.value_currency) == (None, None, None)
        assert new.pnl_value is None and new.value_currency == "USD"
        # Reports say what they could not value, in the pair's quote asset, and add up the rest.
        report = compute_trade_report(_trades([xbt, eth]))
        assert report.realized_pnl == D("0.9") and report.trade_count == 2
        assert report.unvalued_trades == 1 and report.unvalued_pnl == {"ETH/BTC": D("0.01912")}


def test_a_readonly_reader_refuses_a_database_lacking_m003(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _old_database(path)
    with pytest.raises(SchemaError, match="m003_account_currency_values"):
        Store.open_readonly(path)
    with sqlite3.connect(path) as conn:  # untouched by the refused open
        assert "pnl_value" not in {row[1] for row in conn.execute("PRAGMA table_info(round_trips)")}


# -- through the journal, and back after a restart ---------------------------------------------------------------
FILLS = [
    # (BTC/USD mark before the fill, fill): an ETH/BTC round trip, an BTC/USD buy, an ETH/BTC entry still open.
    (D(50000), _fill(1, "ETH/BTC", OrderSide.BUY, "2", "0.05", "0.0004", "BTC")),
    (D(60000), _fill(2, "ETH/BTC", OrderSide.SELL, "2", "0.06", "0.00048", "BTC")),
    (D(60000), _fill(3, "BTC/USD", OrderSide.BUY, "0.1", "60000", "24", "USD")),
    (D(61000), _fill(4, "ETH/BTC", OrderSide.BUY, "1", "0.07", "0.0002", "BTC")),
]


async def _book_through_journal(db: Path, *, durable: bool) -> Portfolio:
    portfolio = Portfolio(SHIPPED, {"USD": D(10000), "BTC": D(1)}, "USD")
    writer = StoreWriter(db, flush_timeout=WAIT)
    writer.start()
    try:
        journal = Journal(writer, portfolio, lambda: 0, durable=durable)
        assert journal.staging is not durable
        for mark, f in FILLS:
            portfolio.mark("BTC/USD", mark)
            position, closed = portfolio.apply_fill(f)
            order = Order(f.client_id, f.pair, f.side, OrderType.MARKET, f.qty, None, f.ts_ns)
            order.apply(OrderFilled(f))
            journal.fill_booked(f, position, closed, order)
        with anyio.fail_after(WAIT):
            await writer.flush()
    finally:
        writer.stop()
    return portfolio


@pytest.mark.anyio
async def test_a_restart_rebooks_the_stored_fills_at_their_stored_values(tmp_path: Path) -> None:
    straight = await _book_through_journal(tmp_path / "staged.sqlite", durable=False)
    await _book_through_journal(tmp_path / "unstaged.sqlite", durable=True)
    tables: list[dict[str, list[tuple[object, ...]]]] = []
    for name in ("staged.sqlite", "unstaged.sqlite"):
        with Store.open(tmp_path / name) as store:
            conn = store.db.conn
            tables.append({t: conn.execute(f"SELECT * FROM [{t}] ORDER BY rowid").fetchall()
                           for t in ("fills", "fill_values", "round_trips")})  # fmt: skip
    assert tables[0] == tables[1]  # both write paths store the same rows
    assert len(tables[0]["fill_values"]) == 3  # the ETH/BTC fills; the BTC/USD fill needs none

    with Store.open(tmp_path / "staged.sqlite") as store:
        fills, values = store.load_fills(), store.load_fill_values()
        stored_trips = store.load_round_trips()
    # What the engine's start-up does, with the stored values handed over before the fills are re-booked.
    resumed = Portfolio(SHIPPED, {"USD": D(10000), "BTC": D(1)}, "USD")
    resumed.preset_fill_values(values)
    for f in fills:
        resumed.apply_fill(f)
    assert resumed.round_trips == straight.round_trips
    assert (
        (resumed.realized_pnl, resumed.fees_paid)
        == (straight.realized_pnl, straight.fees_paid)
        == (
            D(1200),
            D("0.0004") * 50000 + D("0.00048") * 60000 + 24 + D("0.0002") * 61000,
        )
    )
    assert resumed.trips == straight.trips and resumed.fill_values == straight.fill_values
    assert _trades([replace(t, id=None) for t in stored_trips]) == straight.round_trips


@pytest.mark.anyio
async def test_the_journal_values_legacy_round_trips_in_the_account_currency_when_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _old_database(path)
    writer = StoreWriter(path, flush_timeout=WAIT)
    writer.start()
    try:
        Journal(writer, Portfolio(SHIPPED, {"USD": D(1)}, "USD"), lambda: 0, durable=True)
        with anyio.fail_after(WAIT):
            trips = await writer.call(lambda s: s.load_round_trips())
    finally:
        writer.stop()
    assert [(t.pair, t.pnl_value, t.value_currency) for t in trips] == [
        ("BTC/USD", D("0.9"), "USD"),
        ("ETH/BTC", None, None),
    ]
