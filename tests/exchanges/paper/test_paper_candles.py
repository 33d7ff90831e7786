"""Fills on candle data: next-open market fills, strict crossing for resting limits, thin-volume partials, fees."""

from decimal import Decimal
from typing import Any

import pytest

from engine.domain.instrument import Instrument
from engine.domain.market_data import NS_PER_SECOND, Candle
from engine.domain.orders import (
    ClientOrderId,
    Fill,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderFilled,
    OrderSide,
    OrderType,
)
from engine.exchanges.paper import (
    REASON_PRICE_PROTECTION,
    FixedBpsSlippage,
    NoSlippage,
    PaperExchange,
    SlippageModel,
)
from engine.exchanges.port import OrderRequest

XBTUSDT_INFO: dict[str, Any] = {
    "altname": "BTC/USDT",
    "base": "XXBT",
    "quote": "USDT",
    "cost_decimals": 5,
    "pair_decimals": 1,
    "lot_decimals": 8,
    "fees": [[0, "0.4"], [10000, "0.35"], [50000, "0.24"]],
    "fees_maker": [[0, "0.25"], [10000, "0.2"], [50000, "0.14"]],
    "ordermin": "0.00005",
    "costmin": "0.5",
    "tick_size": "0.1",
}
XBTUSDT = Instrument.from_kraken("XBTUSDT", XBTUSDT_INFO)
D = Decimal


def candle(i: int, o: str, h: str, low: str, c: str, v: str = "10") -> Candle:
    return Candle("BTC/USDT", i * 60 * NS_PER_SECOND, 60, D(o), D(h), D(low), D(c), D(v))


class Venue:
    def __init__(
        self,
        *,
        slippage: SlippageModel | None = None,
        participation: str = "1",
        fee_volume: str = "0",
        usdt: str = "100000",
        btc: str = "1",
    ) -> None:
        self.events: list[OrderEvent] = []
        self.exchange = PaperExchange(
            {"BTC/USDT": XBTUSDT},
            {"USDT": D(usdt), "BTC": D(btc)},
            clock=lambda: 0,
            slippage=slippage or NoSlippage(),
            fee_volume_30d=D(fee_volume),
            volume_participation=D(participation),
        )
        self.exchange.bind(self.events.append)

    async def submit(self, cid: str, side: OrderSide, qty: str, limit: str | None = None) -> None:
        order_type = OrderType.MARKET if limit is None else OrderType.LIMIT
        price = None if limit is None else D(limit)
        request = OrderRequest(ClientOrderId(cid), "BTC/USDT", side, order_type, D(qty), price, 0, strategy="s1")
        await self.exchange.submit_order(request)
        assert isinstance(self.events[-1], OrderAccepted), self.events[-1]

    def fills(self) -> list[Fill]:
        return [event.fill for event in self.events if isinstance(event, OrderFilled)]

    def total(self, asset: str) -> Decimal:
        return self.exchange.balance_detail()[asset].total

    def held(self, asset: str) -> Decimal:
        return self.exchange.balance_detail()[asset].held


@pytest.mark.anyio
async def test_market_order_fills_at_next_candle_open() -> None:
    venue = Venue()
    venue.exchange.on_market(candle(0, "99000.0", "100100.0", "98900.0", "100000.0"))
    await venue.submit("c1", OrderSide.BUY, "0.01")
    assert venue.fills() == []  # decided on candle 0's close: nothing fills before candle 1
    venue.exchange.on_market(candle(1, "100500.0", "101000.0", "100000.0", "100800.0"))
    [fill] = venue.fills()
    assert (fill.price, fill.qty, fill.liquidity) == (D("100500.0"), D("0.01"), "taker")
    assert fill.fee == D("4.02000")  # 1005 × 0.40 %
    assert (fill.fee_asset, fill.strategy, fill.ts_ns) == ("USDT", "s1", 60 * NS_PER_SECOND)
    assert (fill.trade_id, fill.venue_order_id) == ("c1-1", "P-c1")
    assert venue.total("USDT") == D("100000") - D("1005.000") - D("4.02")
    assert venue.total("BTC") == D("1.01")
    assert venue.held("USDT") == 0
    assert await venue.exchange.open_orders() == []


@pytest.mark.anyio
async def test_market_orders_with_fixed_bps_slippage() -> None:
    venue = Venue(slippage=FixedBpsSlippage(D("10")))
    venue.exchange.on_market(candle(0, "100000.0", "100000.0", "100000.0", "100000.0"))
    await venue.submit("b", OrderSide.BUY, "0.01")
    await venue.submit("s", OrderSide.SELL, "0.01")
    venue.exchange.on_market(candle(1, "100000.3", "100001.0", "99999.0", "100000.0"))
    buy, sell = venue.fills()
    # 100000.3 × 1.001 = 100100.3003 rounds up a tick; × 0.999 = 99900.2997 rounds down.
    assert buy.price == D("100100.4")
    assert sell.price == D("99900.2")
    assert buy.fee == D("4.00402")  # 1001.004 × 0.40 % = 4.004016, rounded up
    assert sell.fee == D("3.99601")  # 999.002 × 0.40 % = 3.996008, rounded up


@pytest.mark.anyio
async def test_resting_limit_fills_on_crossing_not_on_touching() -> None:
    venue = Venue()
    venue.exchange.on_market(candle(0, "100000.0", "100000.0", "100000.0", "100000.0"))
    await venue.submit("b", OrderSide.BUY, "0.01", "99000.0")
    await venue.submit("s", OrderSide.SELL, "0.01", "101000.0")
    venue.exchange.on_market(candle(1, "100000.0", "101000.0", "99000.0", "100000.0"))  # touches both
    assert venue.fills() == []
    assert len(await venue.exchange.open_orders()) == 2
    venue.exchange.on_market(candle(2, "100000.0", "100500.0", "98999.9", "99500.0"))
    venue.exchange.on_market(candle(3, "100000.0", "101000.1", "99900.0", "100500.0"))
    buy, sell = venue.fills()
    assert (buy.price, buy.liquidity, buy.ts_ns) == (D("99000.0"), "maker", 3 * 60 * NS_PER_SECOND)
    assert buy.fee == D("2.47500")  # 990 × 0.25 %
    assert (sell.price, sell.liquidity) == (D("101000.0"), "maker")
    assert sell.fee == D("2.52500")  # 1010 × 0.25 %
    assert venue.total("USDT") == D("100000") - D("990") - D("2.475") + D("1010") - D("2.525")
    assert venue.total("BTC") == D("1")
    assert venue.held("USDT") == venue.held("BTC") == 0


@pytest.mark.anyio
async def test_thin_candle_fills_partially_then_completes() -> None:
    venue = Venue(participation="0.5")
    venue.exchange.on_market(candle(0, "100000.0", "100000.0", "100000.0", "100000.0"))
    await venue.submit("s", OrderSide.SELL, "0.3", "100100.0")
    venue.exchange.on_market(candle(1, "100000.0", "100200.0", "99900.0", "100000.0", v="0.2"))
    [first] = venue.fills()
    assert first.qty == D("0.1")  # half of the candle's 0.2
    [resting] = await venue.exchange.open_orders()
    assert (resting.filled_qty, resting.status) == (D("0.1"), "partially_filled")
    assert venue.held("BTC") == D("0.2")
    venue.exchange.on_market(candle(2, "100000.0", "100200.0", "99900.0", "100000.0", v="5"))
    first, second = venue.fills()
    assert (second.qty, second.trade_id, first.trade_id) == (D("0.2"), "s-2", "s-1")
    assert first.fee + second.fee == D("75.07500")  # 30030 × 0.25 %
    assert venue.held("BTC") == 0
    assert venue.total("BTC") == D("0.7")


@pytest.mark.anyio
async def test_partial_buy_releases_its_hold_in_proportion() -> None:
    venue = Venue(participation="0.5")
    venue.exchange.on_market(candle(0, "100000.0", "100000.0", "100000.0", "100000.0"))
    await venue.submit("b", OrderSide.BUY, "0.3", "99000.0")
    reserve = D("0.00004")
    assert venue.held("USDT") == D("0.3") * D("99000.0") * D("1.004") + reserve
    venue.exchange.on_market(candle(1, "100000.0", "100000.0", "98000.0", "99000.0", v="0.2"))
    assert venue.held("USDT") == D("0.2") * D("99000.0") * D("1.004") + reserve
    await venue.exchange.cancel_order(ClientOrderId("b"))
    assert venue.held("USDT") == 0


@pytest.mark.anyio
async def test_thin_volume_is_shared_by_the_orders_of_the_pair() -> None:
    venue = Venue()
    venue.exchange.on_market(candle(0, "100000.0", "100000.0", "100000.0", "100000.0"))
    await venue.submit("a", OrderSide.BUY, "0.1", "99000.0")
    await venue.submit("b", OrderSide.BUY, "0.1", "99000.0")
    venue.exchange.on_market(candle(1, "100000.0", "100000.0", "98000.0", "99000.0", v="0.15"))
    assert [(fill.client_id, fill.qty) for fill in venue.fills()] == [("a", D("0.1")), ("b", D("0.05"))]


@pytest.mark.anyio
async def test_limit_through_the_next_open_takes_at_the_open() -> None:
    venue = Venue(slippage=FixedBpsSlippage(D("10")))
    venue.exchange.on_market(candle(0, "100000.0", "100000.0", "100000.0", "100000.0"))
    await venue.submit("far", OrderSide.BUY, "0.01", "101000.0")
    await venue.submit("near", OrderSide.BUY, "0.01", "100200.5")
    venue.exchange.on_market(candle(1, "100200.0", "100300.0", "100100.0", "100250.0"))
    far, near = venue.fills()
    # Taker at the open plus 10 bps (100300.2), but never above the limit.
    assert (far.price, far.liquidity, far.fee) == (D("100300.2"), "taker", D("4.01201"))
    assert (near.price, near.liquidity) == (D("100200.5"), "taker")


@pytest.mark.anyio
async def test_fee_is_rounded_up_to_cost_decimals() -> None:
    venue = Venue()
    venue.exchange.on_market(candle(0, "105944.3", "105944.3", "105944.3", "105944.3"))
    await venue.submit("b", OrderSide.BUY, "0.00012345")
    venue.exchange.on_market(candle(1, "105944.3", "105944.3", "105944.3", "105944.3"))
    [fill] = venue.fills()
    assert fill.cost == D("13.078823835")
    assert fill.fee == D("0.05232")  # 0.05231529534 rounded up


@pytest.mark.anyio
async def test_fee_tier_follows_the_30_day_volume() -> None:
    venue = Venue(fee_volume="10000")
    venue.exchange.on_market(candle(0, "100000.0", "100000.0", "100000.0", "100000.0"))
    await venue.submit("b", OrderSide.BUY, "0.01")
    venue.exchange.on_market(candle(1, "100000.0", "100000.0", "100000.0", "100000.0"))
    assert venue.fills()[0].fee == D("3.50000")  # 0.35 % from 10000 on


@pytest.mark.anyio
async def test_market_buy_beyond_the_protection_price_is_canceled() -> None:
    venue = Venue()
    venue.exchange.on_market(candle(0, "100000.0", "100000.0", "100000.0", "100000.0"))
    await venue.submit("b", OrderSide.BUY, "0.01")
    venue.exchange.on_market(candle(1, "105000.1", "106000.0", "105000.0", "105500.0"))  # > 5 % gap up
    assert venue.fills() == []
    assert isinstance(venue.events[-1], OrderCanceled)
    assert venue.events[-1].reason == REASON_PRICE_PROTECTION
    assert venue.held("USDT") == 0
    assert venue.total("USDT") == D("100000")
