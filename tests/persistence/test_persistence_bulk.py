"""Bulk writes: the row encoders give the codec's values, the one-statement inbox writes what the plain
statements write, refused rows are isolated, and the writer keeps staged and atomic operations in order."""

import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from engine.domain.balances import AssetBalance
from engine.domain.orders import ClientOrderId, Fill, Order, OrderSide, OrderStatus, OrderType, TradeId, VenueOrderId
from engine.domain.positions import Position
from engine.persistence import CodecError, RoundTripRow, Store, StoreError, StoreWriter
from engine.persistence.bulk import PartialWrite
from engine.persistence.codec import (
    FILL_COLUMNS,
    balance_to_row,
    fill_to_row,
    order_to_row,
    position_to_row,
    round_trip_to_row,
)
from engine.persistence.rows import (
    EncodedRows,
    encode_balances,
    encode_equity,
    encode_fills,
    encode_orders,
    encode_positions,
    encode_round_trips,
)
from engine.portfolio.performance import ClosedTrade

WAIT = 10
D = Decimal


def _order(cid: str, **changes: object) -> Order:
    order = Order(ClientOrderId(cid), "BTC/USD", OrderSide.BUY, OrderType.LIMIT, D("0.5"), D("65000.1"), 7, "é-strat")
    for name, value in changes.items():
        setattr(order, name, value)
    return order


def _fill(tid: str, cid: str = "c1", ts: int = 9) -> Fill:
    return Fill(TradeId(tid), ClientOrderId(cid), "BTC/USD", OrderSide.SELL, D("1E-8"), D("65432.10"), D("0.00001"),
                "USD", ts, "maker", "s", VenueOrderId("V-1"))  # fmt: skip


ORDERS = [
    _order("c1"),
    _order(
        "c2",
        limit_price=None,
        order_type=OrderType.MARKET,
        status=OrderStatus.FILLED,
        venue_order_id=VenueOrderId("P-c2"),
        filled_qty=D("0.5"),
        filled_cost=D("32500.05"),
        fees=D("130.00020"),
        reason="",
        trade_ids={TradeId("c2-2"), TradeId("c2-1")},
    ),
]
FILLS = [_fill("t1"), _fill("t2", "c2", 10)]
POSITION = Position("BTC/USD", "s", D("-0.25"), D("64000"), D("1.5"), D("0.2"), 3, 4, {TradeId("b"), TradeId("a")})
TRIP = RoundTripRow("BTC/USD", "s", 1, 2, D("0.1"), D("100"), D("110.5"), D("0.9"), D("0.1"))


def _values(rows: EncodedRows) -> list[list[object]]:
    decoded: list[list[object]] = json.loads(rows.payload)
    assert len(decoded) == rows.count
    return decoded


def test_row_encoders_give_the_codecs_values() -> None:
    columns = list(order_to_row(ORDERS[0]))
    assert _values(encode_orders(ORDERS)) == [[order_to_row(o)[c] for c in columns] for o in ORDERS]
    assert _values(encode_fills(FILLS)) == [list(fill_to_row(f)) for f in FILLS]
    position_columns = list(position_to_row(POSITION))
    assert _values(encode_positions([POSITION])) == [[position_to_row(POSITION)[c] for c in position_columns]]
    assert _values(encode_positions([POSITION], trade_ids=False))[0][-1] == "[]"
    balances = {"USD": AssetBalance(D("10.50"), D("1")), "BTC": AssetBalance(D("0"), D("0"))}
    assert _values(encode_balances(balances)) == [list(balance_to_row(a, b).values()) for a, b in balances.items()]
    closed = ClosedTrade("BTC/USD", "s", 1, 2, D("0.1"), D("100"), D("110.5"), D("0.9"), D("0.1"))
    trip_row = list(round_trip_to_row(TRIP).values())
    assert _values(encode_round_trips([TRIP])) == _values(encode_round_trips([closed])) == [trip_row]


def test_encoders_refuse_what_the_codec_refuses() -> None:
    with pytest.raises(CodecError):
        encode_fills([Fill(TradeId("x"), ClientOrderId("c"), "BTC/USD", OrderSide.BUY, D("NaN"), D(1), D(0), "USD", 1)])
    with pytest.raises(CodecError):
        encode_equity([1], [1.5])  # type: ignore[list-item]
    with pytest.raises(StoreError, match="not an int"):
        encode_equity([True], [D(1)])
    with pytest.raises(StoreError, match="timestamps"):
        encode_equity([1, 2], [D(1)])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "s.sqlite") as s:
        yield s


def _batch() -> list[EncodedRows]:
    flat = D("10000")
    return [
        encode_orders(ORDERS),
        encode_fills(FILLS),
        encode_positions([POSITION], trade_ids=False),
        encode_balances({"USD": AssetBalance(D("9.5"), D("0"))}),
        encode_round_trips([TRIP, TRIP]),
        encode_equity([1, 2, 3], [flat, flat, D("10000.25")]),
    ]


def _tables(store: Store) -> dict[str, list[tuple[object, ...]]]:
    conn = store.db.conn
    tables = ("orders", "fills", "positions", "balances", "round_trips", "equity")
    return {t: conn.execute(f"SELECT * FROM [{t}] ORDER BY rowid").fetchall() for t in tables}


def test_the_inbox_writes_what_the_plain_statements_write(store: Store, tmp_path: Path) -> None:
    store.set_balances({"BTC": AssetBalance(D(1), D(0))})  # replaced by the batch's full snapshot
    store.write_rows(_batch())
    assert store.db.conn.execute("SELECT count(*) FROM temp.bulk_inbox").fetchone() == (0,)
    # The table-by-table path: without the inbox, or with an inbox whose trigger is gone.
    for name, drop in (
        ("no-inbox", "DROP TABLE temp.bulk_inbox"),
        ("no-trigger", "DROP TRIGGER temp.bulk_inbox_write"),
    ):
        with Store.open(tmp_path / f"{name}.sqlite") as plain:
            plain.set_balances({"BTC": AssetBalance(D(1), D(0))})
            plain.db.conn.execute(drop)
            plain.write_rows(_batch())
            assert _tables(plain) == _tables(store), name
    assert store.load_orders() == ORDERS
    assert store.load_fills() == FILLS
    assert [r.qty for r in store.load_round_trips()] == [D("0.1"), D("0.1")]
    assert store.load_equity() == [(1, D("10000")), (2, D("10000")), (3, D("10000.25"))]
    assert set(store.load_balances()) == {"USD"}
    assert store.load_positions()[0].trade_ids == set()


def test_refused_rows_are_named_and_the_rest_written(store: Store) -> None:
    store.add_fill(FILLS[0])
    with pytest.raises(PartialWrite) as refused:
        store.write_rows([encode_fills([_fill("t0"), FILLS[0], _fill("t3")]), encode_orders(ORDERS[:1])])
    assert len(refused.value.errors) == 1 and isinstance(refused.value.errors[0], sqlite3.IntegrityError)
    assert [f.trade_id for f in store.load_fills()] == ["t1", "t0", "t3"]
    assert store.load_orders() == ORDERS[:1]


def test_an_unknown_kind_is_refused_before_anything_is_written(store: Store) -> None:
    with pytest.raises(StoreError, match="no bulk write"):
        store.write_rows([encode_fills(FILLS), EncodedRows("bogus", "[]", 0)])
    assert store.load_fills() == []


def test_equity_columns_append_in_order(store: Store) -> None:
    store.append_equity_columns([5, 6], [D("1E-8"), D("-2.5")])
    store.append_equity_columns([], [])
    assert store.load_equity() == [(5, D("0.00000001")), (6, D("-2.5"))]
    assert FILL_COLUMNS[0] == "trade_id"


@pytest.mark.anyio
async def test_writer_runs_staged_writes_first_and_atomic_ops_without_a_savepoint(tmp_path: Path) -> None:
    staged: list[EncodedRows] = []
    writer = StoreWriter(tmp_path / "w.sqlite", flush_timeout=WAIT)
    writer.start()
    try:

        def take() -> object:
            if not staged:
                return None
            batch = list(staged)
            staged.clear()
            return lambda s: s.write_rows(batch)

        writer.set_stager(take, atomic=True)  # type: ignore[arg-type]
        staged.append(encode_fills(FILLS[:1]))
        # Reads see what was staged before them.
        with anyio.fail_after(WAIT):
            assert [f.trade_id for f in await writer.call(lambda s: s.load_fills())] == ["t1"]

        def fails(store: Store) -> None:
            raise ValueError("boom")

        staged.append(encode_fills(FILLS[1:]))
        writer.submit(fails, atomic=True)
        writer.submit(lambda s: s.set_kv("after", 1), atomic=True)
        with anyio.fail_after(WAIT), pytest.raises(ValueError, match="boom"):
            await writer.flush()
        with anyio.fail_after(WAIT):
            assert [f.trade_id for f in await writer.call(lambda s: s.load_fills())] == ["t1", "t2"]
            assert await writer.call(lambda s: s.get_kv("after")) == 1
        staged.append(encode_fills([_fill("t9", ts=11)]))  # taken by stop(), before the writer closes
    finally:
        writer.stop()
    with Store.open_readonly(tmp_path / "w.sqlite") as reader:
        assert [f.trade_id for f in reader.load_fills()] == ["t1", "t2", "t9"]
