"""Round trips of every record type through the synchronous Store (in memory)."""

import dataclasses
import sqlite3
from collections.abc import Iterator
from decimal import Decimal

import pytest

from engine.domain.balances import AssetBalance
from engine.domain.orders import (
    ClientOrderId,
    Fill,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderSide,
    OrderStatus,
    OrderType,
    TradeId,
    VenueOrderId,
)
from engine.domain.positions import Position
from engine.persistence import CodecError, DuplicateRecord, RoundTripRow, Store

TINY = Decimal("0.00000001")
HUGE = Decimal("123456789012345678901234567890.123456789012345678")


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.open(None) as s:
        yield s


def _fill(trade_id: str, client_id: str = "c1", qty: Decimal = Decimal("0.5"), ts_ns: int = 2) -> Fill:
    return Fill(
        trade_id=TradeId(trade_id),
        client_id=ClientOrderId(client_id),
        pair="XBT/USD",
        side=OrderSide.BUY,
        qty=qty,
        price=HUGE,
        fee=TINY,
        fee_asset="USD",
        ts_ns=ts_ns,
        liquidity="maker",
        strategy="sma",
        venue_order_id=VenueOrderId("OABC-1"),
    )


def _order(client_id: str, limit: Decimal | None = Decimal("65000.1")) -> Order:
    return Order(
        client_id=ClientOrderId(client_id),
        pair="XBT/USD",
        side=OrderSide.BUY,
        order_type=OrderType.LIMIT if limit is not None else OrderType.MARKET,
        qty=Decimal("1.00000001"),
        limit_price=limit,
        created_ts_ns=1,
        strategy="sma",
    )


def _fields(order: Order) -> tuple[object, ...]:
    return tuple(getattr(order, name) for name in Order.__slots__)


def test_orders_reload_exactly_with_status(store: Store) -> None:
    pending = _order("c0", limit=None)
    partial = _order("c1")
    partial.apply(OrderAccepted(partial.client_id, VenueOrderId("OABC-1"), 5))
    partial.apply(OrderFilled(_fill("t1", qty=Decimal("0.5"))))
    canceled = _order("c2")
    canceled.apply(OrderCanceled(canceled.client_id, 9, reason="user"))
    for order in (pending, partial, canceled):
        store.upsert_order(order)

    loaded = {o.client_id: o for o in store.load_orders()}
    assert {cid: _fields(o) for cid, o in loaded.items()} == {
        o.client_id: _fields(o) for o in (pending, partial, canceled)
    }
    assert loaded[ClientOrderId("c1")].status is OrderStatus.PARTIALLY_FILLED
    assert loaded[ClientOrderId("c1")].trade_ids == {"t1"}
    assert loaded[ClientOrderId("c1")].fees == TINY
    assert loaded[ClientOrderId("c0")].limit_price is None
    assert [o.client_id for o in store.load_orders(open_only=True)] == ["c0", "c1"]
    assert store.count_orders(open_only=True) == 2
    assert store.count_orders() == 3


def test_upsert_order_replaces_the_row(store: Store) -> None:
    order = _order("c1")
    store.upsert_order(order)
    order.apply(OrderAccepted(order.client_id, VenueOrderId("V1"), 7))
    store.upsert_order(order)
    reloaded = store.get_order("c1")
    assert reloaded is not None
    assert (reloaded.status, reloaded.venue_order_id, reloaded.updated_ts_ns) == (OrderStatus.NEW, "V1", 7)
    assert store.count_orders() == 1
    assert store.get_order("missing") is None


def test_fills_round_trip_and_duplicates_are_refused(store: Store) -> None:
    first, second = _fill("t1", ts_ns=3), _fill("t2", client_id="c2", ts_ns=1)
    store.add_fill(first)
    store.add_fill(second)
    with pytest.raises(DuplicateRecord):
        store.add_fill(_fill("t1", qty=Decimal(7)))
    assert store.load_fills() == [second, first]
    assert store.load_fills(client_id="c1") == [first]
    assert store.count_fills() == 2


def test_balances_snapshot_and_partial_update(store: Store) -> None:
    store.set_balances({"USD": AssetBalance(HUGE, TINY), "XBT": AssetBalance(Decimal("0.1"), Decimal(0))})
    assert store.load_balances() == {
        "USD": AssetBalance(HUGE, TINY),
        "XBT": AssetBalance(Decimal("0.1"), Decimal(0)),
    }
    store.set_balances({"ETH": AssetBalance(Decimal(2))}, replace=False)
    assert set(store.load_balances()) == {"USD", "XBT", "ETH"}
    store.set_balances({"USD": AssetBalance(Decimal(1))})
    assert store.load_balances() == {"USD": AssetBalance(Decimal(1), Decimal(0))}
    store.set_balances({})
    assert store.load_balances() == {}


def test_positions_round_trip_and_upsert(store: Store) -> None:
    flat = Position(pair="ETH/USD", strategy="rsi")
    pos = Position(pair="XBT/USD", strategy="sma")
    pos.apply(_fill("t1", qty=TINY))
    store.upsert_position(flat)
    store.upsert_position(pos)
    assert store.load_positions() == [flat, pos]
    assert store.load_positions()[0].opened_ts_ns is None
    pos.apply(_fill("t2", qty=Decimal(3), ts_ns=9))
    store.upsert_position(pos)
    assert store.load_positions() == [flat, pos]
    assert store.load_positions()[1].trade_ids == {"t1", "t2"}


def test_equity_appends_in_time_order(store: Store) -> None:
    store.append_equity(5, HUGE, cash=TINY)
    store.append_equity_many([(1, TINY), (3, Decimal("-2.5"))])
    assert store.load_equity() == [(1, TINY), (3, Decimal("-2.5")), (5, HUGE)]
    assert store.load_equity(since_ts_ns=3) == [(3, Decimal("-2.5")), (5, HUGE)]


def test_round_trips_get_ids(store: Store) -> None:
    trip = RoundTripRow("XBT/USD", "sma", 1, 9, TINY, HUGE, Decimal("1.5"), Decimal("-0.1"), TINY)
    first = store.add_round_trip(trip)
    second = store.add_round_trip(trip)
    assert second > first
    loaded = store.load_round_trips()
    assert [t.id for t in loaded] == [first, second]
    assert loaded[0] == dataclasses.replace(trip, id=first)
    assert store.load_round_trips(strategy="other") == []


def test_strategy_params_are_versioned(store: Store) -> None:
    v1 = store.save_strategy_params("sma", {"fast": 10, "stop": Decimal("0.02")}, True, 100, "config")
    v2 = store.save_strategy_params("sma", {"fast": 12, "stop": TINY}, False, 200, "mcp:claude", "tighter")
    other = store.save_strategy_params("rsi", {"period": 14}, True, 150, "config")
    assert (v1, v2, other) == (1, 2, 1)

    latest = store.latest_strategy_params()
    assert set(latest) == {"sma", "rsi"}
    current = latest["sma"]
    assert (current.version, current.params, current.enabled) == (
        2,
        {"fast": 12, "stop": "0.00000001"},
        False,
    )
    assert (current.source, current.note, current.ts_ns) == ("mcp:claude", "tighter", 200)
    history = store.strategy_param_history("sma")
    assert [(h.version, h.params["stop"], h.source) for h in history] == [
        (1, "0.02", "config"),
        (2, "0.00000001", "mcp:claude"),
    ]


def test_strategy_params_refuse_floats_without_using_a_version(store: Store) -> None:
    with pytest.raises(CodecError):
        store.save_strategy_params("sma", {"stop": 0.02}, True, 1, "config")
    assert store.save_strategy_params("sma", {"stop": "0.02"}, True, 2, "config") == 1


def test_events_tail_in_order_and_are_append_only(store: Store) -> None:
    ids = [store.append_event(i, "fill" if i % 2 else "order", "engine", {"i": i, "px": TINY}) for i in range(6)]
    assert ids == sorted(ids)
    assert [e.ts_ns for e in store.tail_events(3)] == [3, 4, 5]
    assert [e.ts_ns for e in store.tail_events(2, kind="fill")] == [3, 5]
    assert store.tail_events(1)[0].payload == {"i": 5, "px": "0.00000001"}
    assert [e.ts_ns for e in store.events_after(ids[3])] == [4, 5]
    assert [e.ts_ns for e in store.events_after(0, limit=2, kind="order")] == [0, 2]
    assert store.count_events() == 6 and store.count_events(kind="fill") == 3
    # The Store has no way to change events, and the database refuses it too.
    writers = [name for name in dir(store) if name.startswith(("update", "delete", "set", "upsert"))]
    assert not [name for name in writers if "event" in name]
    for sql in ("UPDATE events SET kind = 'x'", "DELETE FROM events"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            store.db.execute(sql)
    assert store.count_events() == 6


def test_kv_round_trip(store: Store) -> None:
    assert store.get_kv("cursor") is None
    assert store.get_kv("cursor", default=0) == 0
    store.set_kv("cursor", 42)
    store.set_kv("limits", {"max_notional": Decimal("1000.5"), "halted": False})
    store.set_kv("cursor", 43)
    assert store.get_kv("cursor") == 43
    assert store.load_kv() == {"cursor": 43, "limits": {"max_notional": "1000.5", "halted": False}}
    assert store.delete_kv("cursor") is True
    assert store.delete_kv("cursor") is False
    with pytest.raises(CodecError):
        store.set_kv("bad", 1.5)


def test_atomic_rolls_back_a_unit_of_work(store: Store) -> None:
    with pytest.raises(RuntimeError), store.atomic():
        store.add_fill(_fill("t1"))
        store.set_kv("k", 1)
        raise RuntimeError("boom")
    assert store.count_fills() == 0
    assert store.get_kv("k") is None
    with store.atomic():
        store.add_fill(_fill("t1"))
    assert store.counts()["fills"] == 1
