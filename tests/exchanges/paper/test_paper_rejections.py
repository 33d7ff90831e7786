"""The simulated venue refuses what Kraken refuses, with Kraken's error strings, checked against real figures."""

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.domain.instrument import Instrument
from engine.domain.market_data import BookLevel, BookSnapshot, Candle
from engine.domain.orders import (
    ClientOrderId,
    OrderAccepted,
    OrderEvent,
    OrderRejected,
    OrderSide,
    OrderType,
)
from engine.exchanges.paper import PaperExchange, PaperSetupError
from engine.exchanges.port import OrderRefused, OrderRequest

REPO_ROOT = Path(__file__).resolve().parents[3]
ASSET_PAIRS = REPO_ROOT.parent / "shared" / "data" / "kraken-rest-xbtusdt" / "http_asset_pairs.json"

# The BTC/USDT entry of Kraken's AssetPairs as captured on 2025-11-11 (first fee tiers: taker 0.40 %, maker 0.25 %).
XBTUSDT_INFO: dict[str, Any] = {
    "altname": "BTC/USDT",
    "wsname": "XBT/USDT",
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
    "status": "online",
}
# Kraken's official AssetPairs example entry (api-specs examples/responses/public/assets/pairs.yaml).
XBTUSD_EXAMPLE_INFO: dict[str, Any] = {
    "altname": "BTC/USD",
    "wsname": "XBT/USD",
    "base": "XXBT",
    "quote": "ZUSD",
    "cost_decimals": 5,
    "pair_decimals": 1,
    "lot_decimals": 8,
    "ordermin": "0.0001",
    "costmin": "0.5",
    "tick_size": "0.1",
    "status": "online",
}
# (source, ordermin, costmin, tick) as Kraken publishes them.
CASES = [
    ("kraken-capture", Decimal("0.00005"), Decimal("0.5"), Decimal("0.1")),
    ("xbtusdt-hardcoded", Decimal("0.00005"), Decimal("0.5"), Decimal("0.1")),
    ("xbtusd-official-example", Decimal("0.0001"), Decimal("0.5"), Decimal("0.1")),
]


def load_instrument(source: str) -> Instrument:
    if source == "kraken-capture":
        if not ASSET_PAIRS.is_file():
            pytest.skip(f"{ASSET_PAIRS} not present")
        result = json.loads(ASSET_PAIRS.read_text(encoding="utf-8"), parse_float=Decimal)["result"]
        return Instrument.from_kraken("XBTUSDT", result["XBTUSDT"])
    if source == "xbtusdt-hardcoded":
        return Instrument.from_kraken("XBTUSDT", XBTUSDT_INFO)
    return Instrument.from_kraken("XXBTZUSD", XBTUSD_EXAMPLE_INFO)


@pytest.fixture(params=CASES, ids=[case[0] for case in CASES])
def case(request: pytest.FixtureRequest) -> tuple[Instrument, Decimal, Decimal, Decimal]:
    source, ordermin, costmin, tick = request.param
    return load_instrument(source), ordermin, costmin, tick


class Venue:
    """A paper exchange with a recorder bound, rich in funds unless told otherwise."""

    def __init__(self, instrument: Instrument, balances: dict[str, Decimal] | None = None) -> None:
        self.instrument = instrument
        self.events: list[OrderEvent] = []
        funds = balances if balances is not None else {instrument.quote: Decimal(10**7), instrument.base: Decimal(10)}
        self.exchange = PaperExchange({instrument.pair: instrument}, funds, clock=lambda: 7)
        self.exchange.bind(self.events.append)
        self.n = 0

    async def submit(
        self,
        side: OrderSide,
        qty: str,
        limit: str | None = None,
        *,
        post_only: bool = False,
        pair: str | None = None,
    ) -> OrderEvent:
        self.n += 1
        request = OrderRequest(
            client_id=ClientOrderId(f"o{self.n}"),
            pair=pair or self.instrument.pair,
            side=side,
            order_type=OrderType.MARKET if limit is None else OrderType.LIMIT,
            qty=Decimal(qty),
            limit_price=None if limit is None else Decimal(limit),
            ts_ns=7,
            post_only=post_only,
        )
        before = len(self.events)
        await self.exchange.submit_order(request)
        return self.events[before]

    def candle(self, close: str) -> None:
        price = Decimal(close)
        self.exchange.on_market(Candle(self.instrument.pair, 0, 60, price, price, price, price, Decimal(1)))


def reason(event: OrderEvent) -> str:
    assert isinstance(event, OrderRejected), event
    return event.reason


def test_figures_match_kraken(case: tuple[Instrument, Decimal, Decimal, Decimal]) -> None:
    instrument, ordermin, costmin, tick = case
    assert (instrument.ordermin, instrument.costmin, instrument.tick_size) == (ordermin, costmin, tick)
    assert (instrument.pair_decimals, instrument.lot_decimals, instrument.cost_decimals) == (1, 8, 5)
    assert instrument.fee_rate(maker=False) == Decimal("0.004")
    assert instrument.fee_rate(maker=True) == Decimal("0.0025")


@pytest.mark.anyio
async def test_unknown_pair(case: tuple[Instrument, Decimal, Decimal, Decimal]) -> None:
    venue = Venue(case[0])
    event = await venue.submit(OrderSide.BUY, "1", "100.0", pair="DOGEUSD")
    assert reason(event) == "EQuery:Unknown asset pair"


@pytest.mark.anyio
async def test_order_minimum(case: tuple[Instrument, Decimal, Decimal, Decimal]) -> None:
    instrument, ordermin, _, _ = case
    venue = Venue(instrument)
    below = ordermin - Decimal("0.00000001")
    assert reason(await venue.submit(OrderSide.BUY, str(below), "100000.0")) == "EOrder:Order minimum not met"
    assert isinstance(await venue.submit(OrderSide.BUY, str(ordermin), "100000.0"), OrderAccepted)


@pytest.mark.anyio
async def test_cost_minimum(case: tuple[Instrument, Decimal, Decimal, Decimal]) -> None:
    instrument, ordermin, costmin, _ = case
    venue = Venue(instrument)
    # The cheapest price at which the minimum quantity still meets the minimum cost, and one tick below it.
    floor = costmin / ordermin
    below = floor - instrument.tick_size
    assert reason(await venue.submit(OrderSide.SELL, str(ordermin), str(below))) == "EOrder:Cost minimum not met"
    assert isinstance(await venue.submit(OrderSide.SELL, str(ordermin), str(floor)), OrderAccepted)


@pytest.mark.anyio
async def test_market_cost_minimum_uses_last_price(
    case: tuple[Instrument, Decimal, Decimal, Decimal],
) -> None:
    instrument, ordermin, _, _ = case
    venue = Venue(instrument)
    venue.candle("1000.0")  # ordermin × 1000 < 0.5
    assert reason(await venue.submit(OrderSide.BUY, str(ordermin))) == "EOrder:Cost minimum not met"
    venue.candle("100000.0")
    assert isinstance(await venue.submit(OrderSide.BUY, str(ordermin)), OrderAccepted)


@pytest.mark.anyio
async def test_tick_size(case: tuple[Instrument, Decimal, Decimal, Decimal]) -> None:
    venue = Venue(case[0])
    assert reason(await venue.submit(OrderSide.BUY, "0.01", "100000.05")) == "EOrder:Tick size check failed"
    assert isinstance(await venue.submit(OrderSide.BUY, "0.01", "100000.1"), OrderAccepted)


@pytest.mark.anyio
@pytest.mark.parametrize("qty", ["0.000500001", "0", "-0.01"])
async def test_invalid_volume(case: tuple[Instrument, Decimal, Decimal, Decimal], qty: str) -> None:
    venue = Venue(case[0])
    assert reason(await venue.submit(OrderSide.BUY, qty, "100000.0")) == "EGeneral:Invalid arguments:volume"


@pytest.mark.anyio
async def test_invalid_price(case: tuple[Instrument, Decimal, Decimal, Decimal]) -> None:
    venue = Venue(case[0])
    assert reason(await venue.submit(OrderSide.BUY, "0.01", "0")) == "EOrder:Invalid price"
    # A market order before any price is known: our choice of string.
    assert reason(await venue.submit(OrderSide.BUY, "0.01")) == "EOrder:Invalid price"


@pytest.mark.anyio
async def test_insufficient_funds_buy_limit_to_the_last_quantum(
    case: tuple[Instrument, Decimal, Decimal, Decimal],
) -> None:
    instrument = case[0]
    # 0.01 × 100000 × 1.004 plus the four-quantum fee reserve.
    needed = Decimal("1004.00004")
    short = Venue(instrument, {instrument.quote: needed - Decimal("0.00001")})
    assert reason(await short.submit(OrderSide.BUY, "0.01", "100000.0")) == "EOrder:Insufficient funds"
    enough = Venue(instrument, {instrument.quote: needed})
    assert isinstance(await enough.submit(OrderSide.BUY, "0.01", "100000.0"), OrderAccepted)
    # Everything is held now: a second order finds nothing available.
    assert reason(await enough.submit(OrderSide.BUY, "0.001", "1000.0")) == "EOrder:Insufficient funds"
    assert enough.exchange.balance_detail()[instrument.quote].held == needed


@pytest.mark.anyio
async def test_insufficient_funds_sell_and_market_buy_margin(
    case: tuple[Instrument, Decimal, Decimal, Decimal],
) -> None:
    instrument = case[0]
    venue = Venue(instrument, {instrument.base: Decimal("0.01"), instrument.quote: Decimal("1010")})
    assert reason(await venue.submit(OrderSide.SELL, "0.01000001", "100000.0")) == "EOrder:Insufficient funds"
    venue.candle("100000.0")
    # 0.01 at 100000 costs 1004 with fees, but a market buy holds 5 % more: 1054.2 + reserve.
    assert reason(await venue.submit(OrderSide.BUY, "0.01")) == "EOrder:Insufficient funds"
    assert isinstance(await venue.submit(OrderSide.BUY, "0.009"), OrderAccepted)


@pytest.mark.anyio
async def test_post_only_that_would_take(case: tuple[Instrument, Decimal, Decimal, Decimal]) -> None:
    instrument = case[0]
    venue = Venue(instrument)
    venue.candle("100000.0")
    assert reason(await venue.submit(OrderSide.BUY, "0.01", "100000.1", post_only=True)) == "EOrder:Post only order"
    assert isinstance(await venue.submit(OrderSide.BUY, "0.01", "100000.0", post_only=True), OrderAccepted)
    book = BookSnapshot(
        instrument.pair,
        1,
        (BookLevel(Decimal("99999.9"), Decimal(1)),),
        (BookLevel(Decimal("100000.0"), Decimal(1)),),
    )
    venue.exchange.on_market(book)
    assert reason(await venue.submit(OrderSide.BUY, "0.01", "100000.0", post_only=True)) == "EOrder:Post only order"
    assert reason(await venue.submit(OrderSide.SELL, "0.01", "99999.9", post_only=True)) == "EOrder:Post only order"
    assert isinstance(await venue.submit(OrderSide.SELL, "0.01", "100000.0", post_only=True), OrderAccepted)
    assert reason(await venue.submit(OrderSide.BUY, "0.01", post_only=True)) == "EGeneral:Invalid arguments"


@pytest.mark.anyio
async def test_market_status(case: tuple[Instrument, Decimal, Decimal, Decimal]) -> None:
    cancel_only = Venue(replace(case[0], status="cancel_only"))
    assert reason(await cancel_only.submit(OrderSide.BUY, "0.01", "100000.0")) == "EService:Market in cancel_only mode"
    post_only = Venue(replace(case[0], status="post_only"))
    assert reason(await post_only.submit(OrderSide.BUY, "0.01", "100000.0")) == "EService:Market in post_only mode"
    assert isinstance(await post_only.submit(OrderSide.BUY, "0.01", "100000.0", post_only=True), OrderAccepted)
    limit_only = Venue(replace(case[0], status="limit_only"))
    assert reason(await limit_only.submit(OrderSide.BUY, "0.01")) == "EService:Market in limit_only mode"
    assert isinstance(await limit_only.submit(OrderSide.BUY, "0.01", "100000.0"), OrderAccepted)
    delisted = Venue(replace(case[0], status="delisted"))
    assert reason(await delisted.submit(OrderSide.BUY, "0.01", "100000.0")) == "EService:Market in delisted mode"


@pytest.mark.anyio
async def test_reused_client_id_and_missing_handler_raise() -> None:
    instrument = load_instrument("xbtusdt-hardcoded")
    venue = Venue(instrument)
    await venue.submit(OrderSide.BUY, "0.01", "1.0")  # rejected (cost minimum) but the id is spent
    request = OrderRequest(ClientOrderId("o1"), "BTC/USDT", OrderSide.BUY, OrderType.LIMIT, Decimal(1), None, 0)
    with pytest.raises(OrderRefused, match="already used"):
        await venue.exchange.submit_order(request)
    unbound = PaperExchange({"BTC/USDT": instrument}, {}, clock=lambda: 0)
    with pytest.raises(PaperSetupError, match="bind"):
        await unbound.submit_order(replace(request, client_id=ClientOrderId("x")))
