"""A partly filled order taken back after a restart goes on paying its fee as one order.

The simulated venue rounds an order's fee on its running total (Kraken rounds fees up; rounding each small fill
would charge a quantum per fill). Restored without its earlier fills, the meter would start again from zero and the
next fill would pay a quantum the uninterrupted venue does not charge: here three maker fills of 0.0024 USDT each
owe 0.000006 each, 0.00002 in all rounded up, paid as 0.00001, 0.00001 and 0 (recomputed by hand below).
"""

from decimal import Decimal

import pytest
from exchanges.paper.test_paper_expiry import PAIR, START, Venue, candle, gtd

from engine.domain.orders import ClientOrderId, Order, OrderSide, OrderType

pytestmark = pytest.mark.anyio
D = Decimal
THIN = {"low": "99.0", "high": "106.0", "volume": "0.000048"}  # half of it (participation 0.5) fills per candle


def _order() -> Order:
    return Order(ClientOrderId("f"), PAIR, OrderSide.BUY, OrderType.LIMIT, D("0.01"), D("100.0"), 60 * 10**9, "test")


async def test_the_fee_meter_resumes_where_the_order_stood() -> None:
    straight = Venue(participation="0.5")
    await straight.exchange.submit_order(gtd("f", OrderSide.BUY, "0.01", "100.0", None))
    for i in (1, 2, 3):
        straight.feed(candle(i, **THIN))
    fees = [f.fee for f in straight.fills()]
    assert [f.qty for f in straight.fills()] == [D("0.000024")] * 3
    assert fees == [
        D("0.00001"),
        D("0.00001"),
        D("0"),
    ]  # ceil(0.000006), ceil(0.000012) - 0.00001, ceil(0.000018) - 0.00002

    def restarted(seed: bool) -> Venue:
        venue = Venue({}, participation="0.5")
        order = _order()
        first_two = [e for e in straight.events][: 1 + 2]  # accepted, then two fills
        for event in first_two:
            order.apply(event)
        if seed:
            venue.exchange.seed_fee_volume(straight.fills()[:2])
        balances = dict(START)
        balances["USDT"] -= sum((f.qty * f.price + f.fee for f in straight.fills()[:2]), D(0))
        balances["BTC"] += sum((f.qty for f in straight.fills()[:2]), D(0))
        assert venue.exchange.restore(balances, [order], latest=[candle(2, **THIN)]) == []
        venue.feed(candle(3, **THIN))
        return venue

    assert [f.fee for f in restarted(seed=True).fills()] == [fees[2]]
    # Without the earlier fills the meter starts afresh and charges a quantum more: the test can tell.
    assert [f.fee for f in restarted(seed=False).fills()] == [D("0.00001")]
