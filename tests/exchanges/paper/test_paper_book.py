"""Fills against book data (L2 snapshots, tickers) and trade ticks."""

import json
from decimal import ROUND_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.domain.instrument import Instrument
from engine.domain.market_data import BookLevel, BookSnapshot, Candle, Ticker, TradeTick
from engine.domain.orders import (
    ClientOrderId,
    Fill,
    OrderCanceled,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderType,
)
from engine.exchanges.paper import REASON_PRICE_PROTECTION, FixedBpsSlippage, PaperExchange
from engine.exchanges.port import OrderRequest

REPO_ROOT = Path(__file__).resolve().parents[3]
ORDER_BOOK = REPO_ROOT.parent / "shared" / "data" / "kraken-rest-xbtusdt" / "http_order_book.json"
XBTUSDT_INFO: dict[str, Any] = {
    "altname": "BTC/USDT",
    "base": "XXBT",
    "quote": "USDT",
    "cost_decimals": 5,
    "pair_decimals": 1,
    "lot_decimals": 8,
    "fees": [[0, "0.4"]],
    "fees_maker": [[0, "0.25"]],
    "ordermin": "0.00005",
    "costmin": "0.5",
    "tick_size": "0.1",
}
XBTUSDT = Instrument.from_kraken("XBTUSDT", XBTUSDT_INFO)
D = Decimal
# The five-level BTC/USDT book Kraken returned on 2025-11-11 (shared/data/kraken-rest-xbtusdt/http_order_book.json).
ASKS = [
    ("105944.3", "0.136"),
    ("105946.9", "0.095"),
    ("105955.8", "0.003"),
    ("105955.9", "0.103"),
    ("105963.6", "0.024"),
]
BIDS = [
    ("105944.2", "0.002"),
    ("105935.4", "0.024"),
    ("105918.8", "0.095"),
    ("105916.8", "0.016"),
    ("105916.7", "0.005"),
]


def book(ts: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> BookSnapshot:
    return BookSnapshot(
        "BTC/USDT",
        ts,
        tuple(BookLevel(D(p), D(q)) for p, q in bids),
        tuple(BookLevel(D(p), D(q)) for p, q in asks),
    )


class Venue:
    def __init__(self) -> None:
        self.now = 1_000
        self.events: list[OrderEvent] = []
        self.exchange = PaperExchange(
            {"BTC/USDT": XBTUSDT},
            {"USDT": D("1000000"), "BTC": D("10")},
            clock=lambda: self.now,
            slippage=FixedBpsSlippage(D("10")),  # must not touch book fills
        )
        self.exchange.bind(self.events.append)

    async def submit(
        self, cid: str, side: OrderSide, qty: str, limit: str | None = None, *, post_only: bool = False
    ) -> None:
        order_type = OrderType.MARKET if limit is None else OrderType.LIMIT
        price = None if limit is None else D(limit)
        request = OrderRequest(ClientOrderId(cid), "BTC/USDT", side, order_type, D(qty), price, 0, post_only=post_only)
        await self.exchange.submit_order(request)

    def fills(self, cid: str | None = None) -> list[Fill]:
        fills = [event.fill for event in self.events if isinstance(event, OrderFilled)]
        return [fill for fill in fills if cid is None or fill.client_id == cid]


def vwap(fills: list[Fill]) -> Decimal:
    return sum((fill.cost for fill in fills), D(0)) / sum((fill.qty for fill in fills), D(0))


@pytest.mark.anyio
async def test_market_buy_walks_the_book_level_by_level() -> None:
    venue = Venue()
    venue.exchange.on_market(book(500, BIDS, ASKS))
    await venue.submit("m", OrderSide.BUY, "0.2")
    fills = venue.fills()
    assert [(f.price, f.qty) for f in fills] == [(D("105944.3"), D("0.136")), (D("105946.9"), D("0.064"))]
    assert vwap(fills) == (D("0.136") * D("105944.3") + D("0.064") * D("105946.9")) / D("0.2")
    assert vwap(fills) == D("105945.132")
    assert all(f.liquidity == "taker" and f.ts_ns == 1_000 for f in fills)
    assert [f.trade_id for f in fills] == ["m-1", "m-2"]
    # The order's fees add up to its whole cost's fee, rounded up once: 21189.0264 × 0.40 % = 84.7561056.
    assert sum(f.fee for f in fills) == D("84.75611")
    assert fills[0].fee == (fills[0].cost * D("0.004")).quantize(D("0.00001"), rounding=ROUND_UP)


@pytest.mark.anyio
async def test_consumed_levels_are_not_taken_twice_and_the_rest_waits() -> None:
    venue = Venue()
    venue.exchange.on_market(book(500, BIDS, ASKS))
    await venue.submit("a", OrderSide.BUY, "0.1")
    await venue.submit("b", OrderSide.BUY, "0.4")  # the book has 0.361 in all, 0.1 of it gone
    assert [(f.price, f.qty) for f in venue.fills("b")] == [
        (D("105944.3"), D("0.036")),
        (D("105946.9"), D("0.095")),
        (D("105955.8"), D("0.003")),
        (D("105955.9"), D("0.103")),
        (D("105963.6"), D("0.024")),
    ]
    [waiting] = await venue.exchange.open_orders()
    assert waiting.filled_qty == D("0.261")
    venue.exchange.on_market(book(2_000, BIDS, [("106000.0", "1")]))
    last = venue.fills("b")[-1]
    assert (last.price, last.qty, last.ts_ns, last.trade_id) == (D("106000.0"), D("0.139"), 2_000, "b-6")
    assert await venue.exchange.open_orders() == []


@pytest.mark.anyio
async def test_market_sell_walks_the_bids() -> None:
    venue = Venue()
    venue.exchange.on_market(book(500, BIDS, ASKS))
    await venue.submit("s", OrderSide.SELL, "0.03")
    assert [(f.price, f.qty) for f in venue.fills()] == [
        (D("105944.2"), D("0.002")),
        (D("105935.4"), D("0.024")),
        (D("105918.8"), D("0.004")),
    ]


@pytest.mark.anyio
async def test_marketable_limit_takes_up_to_its_price_then_rests_and_fills_as_maker() -> None:
    venue = Venue()
    venue.exchange.on_market(book(500, BIDS, ASKS))
    await venue.submit("l", OrderSide.BUY, "0.3", "105946.9")
    assert [(f.price, f.qty, f.liquidity) for f in venue.fills()] == [
        (D("105944.3"), D("0.136"), "taker"),
        (D("105946.9"), D("0.095"), "taker"),
    ]
    # A new book whose best ask only touches the limit: no fill.
    venue.exchange.on_market(book(2_000, BIDS, [("105946.9", "5")]))
    assert len(venue.fills()) == 2
    # An ask strictly below the limit: the resting order fills at its limit as maker, for what is offered.
    venue.exchange.on_market(book(3_000, BIDS, [("105940.0", "0.05"), ("105946.0", "1")]))
    maker = venue.fills()[-1]
    assert (maker.price, maker.qty, maker.liquidity, maker.ts_ns) == (D("105946.9"), D("0.069"), "maker", 3_000)
    assert maker.fee == D("18.27585")  # 7310.3361 × 0.25 % = 18.27584025, rounded up


@pytest.mark.anyio
async def test_post_only_rests_even_when_a_later_book_crosses() -> None:
    venue = Venue()
    venue.exchange.on_market(book(500, BIDS, ASKS))
    await venue.submit("p", OrderSide.SELL, "0.01", "105944.3", post_only=True)
    assert venue.fills() == []
    venue.exchange.on_market(book(2_000, [("105950.0", "1")], ASKS))
    [fill] = venue.fills()
    assert (fill.price, fill.liquidity) == (D("105944.3"), "maker")


@pytest.mark.anyio
async def test_market_buy_stops_at_its_protection_price() -> None:
    venue = Venue()
    venue.exchange.on_market(book(500, [("99.9", "1")], [("100.0", "1"), ("110.0", "5")]))
    await venue.submit("m", OrderSide.BUY, "2")
    [fill] = venue.fills()
    assert (fill.price, fill.qty) == (D("100.0"), D("1"))
    assert isinstance(venue.events[-1], OrderCanceled)
    assert venue.events[-1].reason == REASON_PRICE_PROTECTION
    assert venue.exchange.balance_detail()["USDT"].held == 0


@pytest.mark.anyio
async def test_ticker_is_a_one_level_book() -> None:
    venue = Venue()
    venue.exchange.on_market(Ticker("BTC/USDT", 500, D("99.9"), D("3"), D("100.0"), D("0.2"), D("100.0")))
    await venue.submit("m", OrderSide.BUY, "0.5")
    assert [(f.price, f.qty) for f in venue.fills()] == [(D("100.0"), D("0.2"))]
    venue.exchange.on_market(Ticker("BTC/USDT", 600, D("100.0"), D("3"), D("100.1"), D("1"), D("100.1")))
    assert [(f.price, f.qty) for f in venue.fills()][-1] == (D("100.1"), D("0.3"))


@pytest.mark.anyio
async def test_trade_ticks_market_at_next_trade_and_limits_capped_by_trade_size() -> None:
    venue = Venue()
    venue.exchange.on_market(TradeTick("BTC/USDT", 500, D("100000.0"), D("0.5"), "buy"))
    await venue.submit("m", OrderSide.BUY, "0.1")
    await venue.submit("l", OrderSide.BUY, "0.1", "99900.0")
    venue.exchange.on_market(TradeTick("BTC/USDT", 600, D("100000.0"), D("0.01"), "buy"))
    [market] = venue.fills()
    assert (market.price, market.qty, market.ts_ns) == (D("100100.0"), D("0.1"), 600)  # + 10 bps
    venue.exchange.on_market(TradeTick("BTC/USDT", 700, D("99900.0"), D("1"), "sell"))  # touch
    assert venue.fills("l") == []
    venue.exchange.on_market(TradeTick("BTC/USDT", 800, D("99899.9"), D("0.04"), "sell"))
    venue.exchange.on_market(TradeTick("BTC/USDT", 900, D("99800.0"), D("1"), "sell"))
    assert [(f.price, f.qty, f.liquidity) for f in venue.fills("l")] == [
        (D("99900.0"), D("0.04"), "maker"),
        (D("99900.0"), D("0.06"), "maker"),
    ]


@pytest.mark.anyio
async def test_a_candle_after_a_book_makes_the_book_stale() -> None:
    venue = Venue()
    venue.exchange.on_market(book(500, BIDS, ASKS))
    venue.exchange.on_market(Candle("BTC/USDT", 600, 60, D("1"), D("1"), D("1"), D("100000.0"), D("1")))
    await venue.submit("m", OrderSide.BUY, "0.01")
    assert venue.fills() == []  # waits for the next event instead of walking the old book
    assert not any(isinstance(event, OrderRejected) for event in venue.events)


@pytest.mark.anyio
async def test_real_kraken_book_capture() -> None:
    if not ORDER_BOOK.is_file():
        pytest.skip(f"{ORDER_BOOK} not present")
    raw = json.loads(ORDER_BOOK.read_text(encoding="utf-8"))["result"]["XBTUSDT"]
    asks = [(str(price), str(qty)) for price, qty, _ in raw["asks"]]
    bids = [(str(price), str(qty)) for price, qty, _ in raw["bids"]]
    venue = Venue()
    venue.exchange.on_market(book(500, bids, asks))
    await venue.submit("m", OrderSide.BUY, "0.2")
    assert vwap(venue.fills()) == D("105945.132")
