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


async def test_a_candle_replayed_after_the_restart_does_not_fill_the_order_twice() -> None:
    """The engine replays the events after its last saved cursor: a candle that already filled part of a resting
    order before the crash reaches the restored order again, and must not fill it again; the next candle does."""
    straight = Venue(participation="0.5")
    await straight.exchange.submit_order(gtd("f", OrderSide.BUY, "0.01", "100.0", None))
    straight.feed(candle(1, **THIN))
    (first,) = straight.fills()
    venue = Venue({}, participation="0.5")
    order = _order()
    for event in straight.events:
        order.apply(event)
    venue.exchange.seed_fee_volume([first])
    balances = dict(START)
    balances["USDT"] -= first.qty * first.price + first.fee
    balances["BTC"] += first.qty
    assert venue.exchange.restore(balances, [order], latest=[candle(0, **THIN)]) == []
    venue.feed(candle(1, **THIN))  # replayed: it filled the order before the restart
    assert venue.fills() == []
    venue.feed(candle(2, **THIN))
    straight.feed(candle(2, **THIN))
    assert venue.fills() == straight.fills()[1:] and len(venue.fills()) == 1


async def test_a_limit_order_taken_back_before_it_met_the_market_may_still_take_at_the_open() -> None:
    """Restored before any market data after its creation, a limit buy whose next open is through its limit takes
    there (as a taker), as it would have without the restart."""
    through = {"low": "90.0", "high": "96.0", "open_": "95.0"}
    straight = Venue()
    await straight.exchange.submit_order(gtd("t", OrderSide.BUY, "0.01", "100.0", None))
    straight.feed(candle(1, **through))
    venue = Venue({})
    order = Order(ClientOrderId("t"), PAIR, OrderSide.BUY, OrderType.LIMIT, D("0.01"), D("100.0"), 60 * 10**9, "t")
    order.apply(straight.events[0])  # accepted before the restart
    assert venue.exchange.restore(dict(START), [order], latest=[candle(0, **THIN)]) == []
    venue.feed(candle(1, **through))
    assert [(f.price, f.liquidity) for f in venue.fills()] == [(f.price, f.liquidity) for f in straight.fills()]
    assert [f.liquidity for f in venue.fills()] == ["taker"]
