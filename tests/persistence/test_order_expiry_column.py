"""An order's good-till-date expiry (``expires_ns``) is stored with it, by both ways of writing orders, and a
state file saved before the column existed still loads (its orders never expire)."""

from decimal import Decimal
from pathlib import Path

from sqlite_utils import Database

from engine.domain.orders import ClientOrderId, Order, OrderSide, OrderType
from engine.persistence import MIGRATIONS, Store, applied_migrations
from engine.persistence.rows import encode_orders

D = Decimal
EXPIRY = 1_700_000_060_123_456_789  # not a whole second: nothing is rounded on the way


def _order(cid: str, expires_ns: int | None) -> Order:
    order = Order(ClientOrderId(cid), "BTC/USD", OrderSide.BUY, OrderType.LIMIT, D("0.5"), D("65000.1"), 7, "s")
    order.expires_ns = expires_ns
    return order


def test_the_expiry_round_trips_through_upsert_and_the_bulk_path(tmp_path: Path) -> None:
    with Store.open(tmp_path / "engine.sqlite") as store:
        store.upsert_order(_order("one", EXPIRY))
        store.write_rows([encode_orders([_order("two", EXPIRY + 1), _order("never", None)])])
        loaded = {o.client_id: o.expires_ns for o in store.load_orders(open_only=True)}
        column = store.db.execute("SELECT typeof(expires_ns) FROM orders WHERE client_id = 'two'").fetchone()[0]
    assert loaded == {"one": EXPIRY, "two": EXPIRY + 1, "never": None}
    assert column == "integer"


def test_a_state_file_from_before_the_column_loads_with_no_expiry(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = Database(path, execute_plugins=False)
    MIGRATIONS.apply(old, stop_before="m006_order_expiry")
    old.execute(
        "INSERT INTO orders (client_id, pair, side, order_type, qty, limit_price, strategy, status, venue_order_id,"
        " filled_qty, filled_cost, fees, reason, created_ts_ns, updated_ts_ns, trade_ids)"
        " VALUES ('old-1', 'BTC/USD', 'buy', 'limit', '0.5', '65000.1', 's', 'new', 'P-old-1', '0', '0', '0', '',"
        " 7, 8, '[]')"
    )
    old.conn.commit()
    old.close()
    with Store.open(path) as store:
        assert "m006_order_expiry" in applied_migrations(store.db)
        [order] = store.load_orders(open_only=True)
    assert (order.client_id, order.expires_ns, order.limit_price) == ("old-1", None, D("65000.1"))
