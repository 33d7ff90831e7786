"""micro_scalper end to end: a replay of hand-made L2 book snapshots through the engine and the paper venue, the
orders and fills read back from the SQLite state file.

The script below is worked through by hand (ttl_s 10, order_quote_amount 300, max_inventory_quote 500, the
default min_spread_bps 60 and min_imbalance 0.2; BTC/USD: tick 0.1, 8 lot decimals, maker fee 0.25 %):

=====  ===============================  =======================================================================
t (s)  book (best bid / best ask)       what happens
=====  ===============================  =======================================================================
0      50000.0 / 50400.0, imb 0.2       bid 0.006 (300 / 50000) at 50000.0
2      49800.0 / 49900.0                the asks cross the bid: 0.006 fills at 50000.0 as maker; the position is
                                        offered at the ask 49900.0; spread 20 bps: no new bid
4      49850.0 / 50250.0, imb 0.6       bid at 49850.0, sized by the inventory limit: 500 / 49850 - 0.006 =
                                        0.00403009 (the budget would buy 0.00601805)
6      49800.0 / 49840.0                the asks cross it: 0.00403009 fills at 49850.0 (inventory 0.01003009,
                                        worth 499.99998... at 49850: within 500)
8      49950.0 / 50300.0, imb 0         the bids cross the offer: 0.006 sold at 49900.0; the rest offered at 50300.0
18     49800.0 / 50300.0                that offer (expiry 18) expires unfilled; offered again at 50300.0
20     49800.0 / 50300.0, imb 0.5       bid at 49800.0: room 500 / 49800 - 0.00403009 = 0.00601007
22     50350.0 / 50500.0                the bids cross the offer: 0.00403009 sold at 50300.0; flat
40     50350.0 / 50500.0                the bid of t=20 (expiry 30) expires unfilled
=====  ===============================  =======================================================================
"""

from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import anyio
import pytest

from engine.domain.market_data import BookLevel, BookSnapshot
from engine.domain.orders import OrderSide, OrderStatus, OrderType
from engine.exchanges.replay import ReplaySource
from engine.persistence import Store
from engine.runtime.app import Engine
from engine.runtime.config import config_from_mapping
from engine.runtime.sources import ReplayMarketSource

pytestmark = pytest.mark.anyio
D = Decimal
NS = 10**9
LOT = D("1e-8")
TTL_S = 10
MAX_INVENTORY = D(500)
MAKER = D("0.0025")


def book(t: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> BookSnapshot:
    return BookSnapshot(
        "BTC/USD",
        t * NS,
        tuple(BookLevel(D(p), D(q)) for p, q in bids),
        tuple(BookLevel(D(p), D(q)) for p, q in asks),
    )


SCRIPT = [
    book(0, [("50000.0", "2"), ("49990.0", "1")], [("50400.0", "1"), ("50410.0", "1")]),
    book(2, [("49800.0", "3")], [("49900.0", "0.01"), ("50400.0", "1")]),
    book(4, [("49850.0", "4")], [("50250.0", "1")]),
    book(6, [("49800.0", "1")], [("49840.0", "0.01"), ("50300.0", "1")]),
    book(8, [("49950.0", "1")], [("50300.0", "1")]),
    book(18, [("49800.0", "1")], [("50300.0", "1")]),
    book(20, [("49800.0", "3")], [("50300.0", "1")]),
    book(22, [("50350.0", "1")], [("50500.0", "1")]),
    book(40, [("50350.0", "1")], [("50500.0", "1")]),
]


def down(value: Decimal) -> Decimal:
    return value.quantize(LOT, rounding=ROUND_DOWN)


async def test_quotes_rest_fill_as_maker_expire_and_keep_within_the_inventory_limit(tmp_path: Path) -> None:
    config = config_from_mapping(
        {
            "paper": {"starting_balances": {"USD": "10000"}, "fee_volume_30d": "0"},
            "strategies": [
                {
                    "name": "scalp",
                    "kind": "micro_scalper",
                    "pair": "BTC/USD",
                    "order_quote_amount": "300",
                    "params": {"ttl_s": TTL_S, "max_inventory_quote": str(MAX_INVENTORY)},
                }
            ],
        }
    )
    source = ReplayMarketSource(ReplaySource.from_events(SCRIPT, name="book script"), None, "book script")
    db = tmp_path / "scalp.db"
    engine = Engine.from_config(config, db, source=source)
    with anyio.fail_after(30):
        await engine.run()
    with Store.open_readonly(db) as store:
        orders = sorted(store.load_orders(), key=lambda o: o.client_id)
        fills = sorted(store.load_fills(), key=lambda f: (f.ts_ns, f.trade_id))

    # Sizes worked out from the script (see the module's docstring).
    second_bid = down(MAX_INVENTORY / D("49850.0") - D("0.006"))
    assert second_bid == D("0.00403009") < down(D(300) / D("49850.0"))  # the inventory limit, not the budget
    third_bid = down(min(D(300) / D("49800.0"), MAX_INVENTORY / D("49800.0") - second_bid))
    assert third_bid == D("0.00601007")
    expected_orders = [
        # side, limit, qty, created (s), final status, filled
        (OrderSide.BUY, D("50000.0"), D("0.006"), 0, OrderStatus.FILLED, D("0.006")),
        (OrderSide.SELL, D("49900.0"), D("0.006"), 2, OrderStatus.FILLED, D("0.006")),
        (OrderSide.BUY, D("49850.0"), second_bid, 4, OrderStatus.FILLED, second_bid),
        (OrderSide.SELL, D("50300.0"), second_bid, 8, OrderStatus.EXPIRED, D(0)),
        (OrderSide.SELL, D("50300.0"), second_bid, 18, OrderStatus.FILLED, second_bid),
        (OrderSide.BUY, D("49800.0"), third_bid, 20, OrderStatus.EXPIRED, D(0)),
    ]
    assert [(o.side, o.limit_price, o.qty, o.created_ts_ns // NS, o.status, o.filled_qty) for o in orders] == (
        expected_orders
    )
    books = {b.ts_ns: b for b in SCRIPT}
    for order in orders:
        assert order.order_type is OrderType.LIMIT and order.strategy == "scalp"
        assert order.expires_ns == order.created_ts_ns + TTL_S * NS
        decided_on = books[order.created_ts_ns]
        touch = decided_on.best_bid if order.side is OrderSide.BUY else decided_on.best_ask
        assert order.limit_price == touch  # at the touch of the book it was decided on
        if order.status is OrderStatus.EXPIRED:
            # Expired at the first snapshot stamped at or after its expiry, without trading.
            first_after = min(t for t in books if t >= order.expires_ns)
            assert order.updated_ts_ns == first_after

    assert [(f.side, f.qty, f.price, f.ts_ns // NS) for f in fills] == [
        (OrderSide.BUY, D("0.006"), D("50000.0"), 2),
        (OrderSide.BUY, second_bid, D("49850.0"), 6),
        (OrderSide.SELL, D("0.006"), D("49900.0"), 8),
        (OrderSide.SELL, second_bid, D("50300.0"), 22),
    ]
    for fill in fills:
        assert fill.liquidity == "maker" and fill.strategy == "scalp"
        assert abs(fill.fee - fill.qty * fill.price * MAKER) <= D("0.00001")  # 0.25 %, to Kraken's cost decimals

    # The inventory limit, from the fills: after every buy the position is worth at most 500 at that buy's price.
    position, largest = D(0), D(0)
    for fill in fills:
        position += fill.qty if fill.side is OrderSide.BUY else -fill.qty
        if fill.side is OrderSide.BUY:
            assert position * fill.price <= MAX_INVENTORY
        largest = max(largest, position)
    assert position == 0 and largest == D("0.006") + second_bid

    spent = sum((f.qty * f.price + f.fee for f in fills if f.side is OrderSide.BUY), D(0))
    received = sum((f.qty * f.price - f.fee for f in fills if f.side is OrderSide.SELL), D(0))
    assert engine.portfolio.balances.total("USD") == D(10000) - spent + received
