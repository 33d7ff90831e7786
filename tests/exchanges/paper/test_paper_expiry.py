"""Good-till-date orders on the simulated venue: a limit order still open at its expiry expires (fills kept, the
rest of its hold released), by the market data's clock; the expiry survives a restart through the store.

Candles here are one minute long: candle ``i`` opens at ``i`` minutes and closes at ``i + 1`` minutes. Orders are
made at the close of candle 0 (one minute), as the engine makes them. Balances are checked against a plain
recomputation from the fills and Kraken's fee rule (the maker fee of an order's fills, rounded up once).
"""

from decimal import ROUND_UP, Decimal
from pathlib import Path

import pytest
from fakes.instruments import example_instruments

from engine.domain.market_data import NS_PER_SECOND, BookLevel, BookSnapshot, Candle, TradeTick
from engine.domain.orders import (
    ClientOrderId,
    Fill,
    Order,
    OrderAccepted,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderType,
    VenueOrderId,
)
from engine.domain.positions import Position
from engine.exchanges.paper import PaperExchange
from engine.exchanges.port import ERR_EXPIRY_NOT_FUTURE, ERR_EXPIRY_NOT_LIMIT, OrderRequest
from engine.execution.order_manager import OrderManager
from engine.persistence import Store
from engine.portfolio.performance import ClosedTrade
from engine.portfolio.portfolio import Portfolio

pytestmark = pytest.mark.anyio
D = Decimal
PAIR = "BTC/USDT"
INSTRUMENT = example_instruments()[PAIR]  # maker 0.25 %, taker 0.40 %, cost to 5 decimals, tick 0.1
MAKER = D("0.0025")
TAKER = D("0.004")
CENT = D("0.00001")
MINUTE = 60 * NS_PER_SECOND
START = {"USDT": D(1000), "BTC": D(1)}


def minute(i: int) -> int:
    return i * MINUTE


def candle(i: int, low: str, high: str, volume: str = "10", open_: str = "105.0") -> Candle:
    return Candle(PAIR, minute(i), 60, D(open_), D(high), D(low), D("105.0"), D(volume))


QUIET = "104.0", "106.0"  # a candle that crosses neither a buy at 100.0 nor a sell at 110.0


class Venue:
    """A simulated venue whose clock is the market data fed to it (as in a replay)."""

    def __init__(self, balances: dict[str, Decimal] | None = None, participation: str = "1") -> None:
        self.now = minute(1)
        self.events: list[OrderEvent] = []
        self.exchange = PaperExchange(
            {PAIR: INSTRUMENT},
            dict(START if balances is None else balances),
            clock=lambda: self.now,
            volume_participation=D(participation),
        )
        self.exchange.bind(self.events.append)

    def feed(self, event: Candle | TradeTick | BookSnapshot) -> None:
        self.now = event.close_ns if isinstance(event, Candle) else event.ts_ns
        self.exchange.on_market(event)

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.events]

    def fills(self) -> list[Fill]:
        return [e.fill for e in self.events if isinstance(e, OrderFilled)]

    def held(self, asset: str) -> Decimal:
        return self.exchange.balance_detail()[asset].held

    async def totals(self) -> dict[str, Decimal]:
        return await self.exchange.balances()


def gtd(
    cid: str, side: OrderSide, qty: str, limit: str | None, expires_ns: int | None, post_only: bool = False
) -> OrderRequest:
    order_type = OrderType.LIMIT if limit is not None else OrderType.MARKET
    price = None if limit is None else D(limit)
    return OrderRequest(
        ClientOrderId(cid), PAIR, side, order_type, D(qty), price, minute(1), "test", post_only, expires_ns=expires_ns
    )


def plain_totals(side: OrderSide, fills: list[tuple[str, str]]) -> dict[str, Decimal]:
    """START after maker ``(qty, price)`` fills of one order: cost, and the maker fee on its total rounded up."""
    qty = sum((D(q) for q, _ in fills), D(0))
    cost = sum((D(q) * D(p) for q, p in fills), D(0))
    fee = (cost * MAKER).quantize(CENT, rounding=ROUND_UP)
    if side is OrderSide.BUY:
        return {"USDT": START["USDT"] - cost - fee, "BTC": START["BTC"] + qty}
    return {"USDT": START["USDT"] + cost - fee, "BTC": START["BTC"] - qty}


def buy_hold(qty: str, limit: str) -> Decimal:
    """What a resting buy holds: quantity × limit × (1 + taker rate), plus four cost quanta against rounding."""
    return D(qty) * D(limit) * (1 + TAKER) + 4 * CENT


async def test_a_resting_limit_that_never_fills_expires_and_releases_its_hold() -> None:
    venue = Venue()
    await venue.exchange.submit_order(gtd("b", OrderSide.BUY, "0.5", "100.0", minute(3)))
    assert venue.held("USDT") == buy_hold("0.5", "100.0")
    venue.feed(candle(1, *QUIET))
    assert venue.kinds() == ["OrderAccepted"]
    venue.feed(candle(2, *QUIET))  # closes at minute 3, the expiry
    assert venue.events[-1] == OrderExpired(ClientOrderId("b"), minute(3))
    assert venue.held("USDT") == 0
    assert await venue.totals() == START
    assert await venue.exchange.open_orders() == []
    venue.feed(candle(3, "90.0", "120.0"))  # would have crossed: the order is gone
    assert venue.kinds() == ["OrderAccepted", "OrderExpired"]


@pytest.mark.parametrize("side", [OrderSide.BUY, OrderSide.SELL])
async def test_partial_fills_stay_and_the_rest_expires_with_exact_balances(side: OrderSide) -> None:
    venue = Venue()
    limit = "100.0" if side is OrderSide.BUY else "110.0"
    crossing = ("99.0", "106.0") if side is OrderSide.BUY else ("104.0", "111.0")
    await venue.exchange.submit_order(gtd("p", side, "0.5", limit, minute(4)))
    venue.feed(candle(1, *crossing, volume="0.2"))  # fills 0.2 as maker (the candle's whole volume)
    held_asset = "USDT" if side is OrderSide.BUY else "BTC"
    left_hold = buy_hold("0.3", "100.0") if side is OrderSide.BUY else D("0.3")
    assert venue.held(held_asset) == left_hold
    venue.feed(candle(2, *QUIET))
    venue.feed(candle(3, *crossing, volume="0.1"))  # fills 0.1, then its close (minute 4) is the expiry
    assert venue.kinds() == ["OrderAccepted", "OrderFilled", "OrderFilled", "OrderExpired"]
    maker = [(f.qty, f.price, f.liquidity) for f in venue.fills()]
    assert maker == [(D("0.2"), D(limit), "maker"), (D("0.1"), D(limit), "maker")]
    assert venue.events[-1] == OrderExpired(ClientOrderId("p"), minute(4))
    assert venue.fills()[-1].ts_ns <= minute(4)
    assert venue.held("USDT") == venue.held("BTC") == 0
    assert await venue.totals() == plain_totals(side, [("0.2", limit), ("0.1", limit)])
    order = Order(ClientOrderId("p"), PAIR, side, OrderType.LIMIT, D("0.5"), D(limit), minute(1))
    for event in venue.events:
        order.apply(event)
    assert (order.status, order.filled_qty, order.remaining) == (OrderStatus.EXPIRED, D("0.3"), D("0.2"))


async def test_a_post_only_order_expires_like_any_limit() -> None:
    venue = Venue()
    venue.feed(candle(0, *QUIET))  # the last price (105.0) is above the buy: it would not take
    await venue.exchange.submit_order(gtd("po", OrderSide.BUY, "0.5", "100.0", minute(3), post_only=True))
    venue.feed(candle(1, "100.0", "106.0"))  # touches the limit: no fill
    venue.feed(candle(2, *QUIET))
    assert venue.kinds() == ["OrderAccepted", "OrderExpired"]
    assert venue.events[-1] == OrderExpired(ClientOrderId("po"), minute(3))
    assert venue.held("USDT") == 0 and await venue.totals() == START


async def test_an_order_filled_before_its_expiry_never_expires() -> None:
    venue = Venue()
    await venue.exchange.submit_order(gtd("f", OrderSide.BUY, "0.5", "100.0", minute(3)))
    venue.feed(candle(1, "99.0", "106.0", volume="10"))  # fills it whole
    for i in range(2, 6):
        venue.feed(candle(i, "90.0", "120.0"))
    assert venue.kinds() == ["OrderAccepted", "OrderFilled"]
    assert await venue.totals() == plain_totals(OrderSide.BUY, [("0.5", "100.0")])
    assert venue.held("USDT") == 0


async def test_at_a_candle_boundary_the_candle_ending_there_fills_and_the_next_one_cannot() -> None:
    # Expiry at minute 3: candle 2 ([2, 3)) may still fill it, candle 3 ([3, 4)) may not.
    ending = Venue()
    await ending.exchange.submit_order(gtd("e", OrderSide.BUY, "0.5", "100.0", minute(3)))
    ending.feed(candle(1, *QUIET))
    ending.feed(candle(2, "99.0", "106.0", volume="0.2"))
    assert ending.kinds() == ["OrderAccepted", "OrderFilled", "OrderExpired"]
    assert ending.events[-1] == OrderExpired(ClientOrderId("e"), minute(3))
    assert await ending.totals() == plain_totals(OrderSide.BUY, [("0.2", "100.0")])

    # No candle ends at the expiry (a gap in the data): the first candle opening at it expires the order unfilled,
    # dated at that candle's close, when the venue learns of it.
    gap = Venue()
    await gap.exchange.submit_order(gtd("g", OrderSide.BUY, "0.5", "100.0", minute(3)))
    gap.feed(candle(1, *QUIET))
    gap.feed(candle(3, "90.0", "106.0", volume="10", open_="95.0"))
    assert gap.kinds() == ["OrderAccepted", "OrderExpired"]
    assert gap.events[-1] == OrderExpired(ClientOrderId("g"), minute(4))
    assert await gap.totals() == START and gap.held("USDT") == 0

    # An expiry within a candle: the candle that opened before it may fill, and the rest expires at its close.
    within = Venue()
    await within.exchange.submit_order(gtd("w", OrderSide.BUY, "0.5", "100.0", minute(2) + 30 * NS_PER_SECOND))
    within.feed(candle(1, *QUIET))
    within.feed(candle(2, "99.0", "106.0", volume="0.2"))
    assert within.kinds() == ["OrderAccepted", "OrderFilled", "OrderExpired"]
    assert within.events[-1] == OrderExpired(ClientOrderId("w"), minute(3))


async def test_trades_and_books_at_the_expiry_do_not_fill() -> None:
    venue = Venue()
    await venue.exchange.submit_order(gtd("t", OrderSide.BUY, "0.5", "100.0", minute(2)))
    venue.feed(TradeTick(PAIR, minute(1) + 1, D("101.0"), D("1"), "sell"))  # the order meets the market: rests
    venue.feed(TradeTick(PAIR, minute(2) - 1, D("99.0"), D("0.1"), "sell"))  # before the expiry: fills 0.1
    venue.feed(TradeTick(PAIR, minute(2), D("99.0"), D("5"), "sell"))  # at the expiry: expires first
    assert venue.kinds() == ["OrderAccepted", "OrderFilled", "OrderExpired"]
    assert venue.events[-1] == OrderExpired(ClientOrderId("t"), minute(2))
    assert await venue.totals() == plain_totals(OrderSide.BUY, [("0.1", "100.0")])

    book = Venue()
    await book.exchange.submit_order(gtd("k", OrderSide.BUY, "0.5", "100.0", minute(2)))
    crossing = BookSnapshot(PAIR, minute(2), (BookLevel(D("99.0"), D("1")),), (BookLevel(D("99.5"), D("1")),))
    book.feed(crossing)
    assert book.kinds() == ["OrderAccepted", "OrderExpired"]
    assert await book.totals() == START and book.held("USDT") == 0


async def test_an_expiry_on_a_market_order_or_in_the_past_is_refused_and_changes_nothing() -> None:
    venue = Venue()
    venue.feed(candle(0, *QUIET))
    await venue.exchange.submit_order(gtd("m", OrderSide.BUY, "0.5", None, minute(5)))
    await venue.exchange.submit_order(gtd("past", OrderSide.BUY, "0.5", "100.0", minute(1)))  # now is minute 1
    assert venue.events == [
        OrderRejected(ClientOrderId("m"), ERR_EXPIRY_NOT_LIMIT, minute(1)),
        OrderRejected(ClientOrderId("past"), ERR_EXPIRY_NOT_FUTURE, minute(1)),
    ]
    assert await venue.totals() == START and venue.held("USDT") == 0
    assert await venue.exchange.open_orders() == []


async def test_restore_keeps_the_expiry_and_expires_where_the_uninterrupted_run_does() -> None:
    straight = Venue(participation="0.5")
    await straight.exchange.submit_order(gtd("r", OrderSide.BUY, "0.5", "100.0", minute(4)))
    straight.feed(candle(1, "99.0", "106.0", volume="0.4"))  # fills 0.2
    straight.feed(candle(2, *QUIET))
    order = Order(ClientOrderId("r"), PAIR, OrderSide.BUY, OrderType.LIMIT, D("0.5"), D("100.0"), minute(1), "test")
    order.expires_ns = minute(4)
    for event in straight.events:
        order.apply(event)
    before = len(straight.events)

    restarted = Venue({}, participation="0.5")
    taken_back = restarted.exchange.restore(await straight.totals(), [order], latest=[candle(2, *QUIET)])
    assert taken_back == [] and restarted.held("USDT") == straight.held("USDT") == buy_hold("0.3", "100.0")
    for venue in (straight, restarted):
        venue.feed(candle(3, "99.0", "106.0", volume="0.2"))  # fills 0.1, then the close reaches the expiry
    assert restarted.events == straight.events[before:]
    assert [type(e).__name__ for e in restarted.events] == ["OrderFilled", "OrderExpired"]
    assert await restarted.totals() == plain_totals(OrderSide.BUY, [("0.2", "100.0"), ("0.1", "100.0")])
    assert restarted.held("USDT") == 0


async def test_restore_expires_an_order_whose_expiry_the_latest_data_had_passed() -> None:
    order = Order(
        ClientOrderId("x"), PAIR, OrderSide.BUY, OrderType.LIMIT, D("0.5"), D("100.0"), minute(1), expires_ns=minute(3)
    )
    order.apply(OrderAccepted(order.client_id, VenueOrderId("P-x"), minute(1)))
    venue = Venue({})
    events = venue.exchange.restore(START, [order], latest=[candle(2, *QUIET)])  # candle 2 closed at minute 3
    assert events == [OrderExpired(order.client_id, minute(3))]
    assert await venue.exchange.open_orders() == [] and venue.held("USDT") == 0
    order.apply(events[0])
    assert order.status is OrderStatus.EXPIRED


class StoreListener:
    """Keeps the store up to date as the engine's journal does: the intent, every change, fills with their order."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def order_intent(self, order: Order) -> None:
        self.store.upsert_order(order)

    def order_changed(self, order: Order) -> None:
        self.store.upsert_order(order)

    def fill_booked(self, fill: Fill, position: Position, closed: ClosedTrade | None, order: Order) -> None:
        self.store.add_fill(fill)
        self.store.upsert_order(order)

    def anomaly(self, kind: str, detail: str, payload: dict[str, object]) -> None:
        raise AssertionError(f"{kind}: {detail}")


async def test_the_expiry_goes_through_the_order_manager_and_the_store_to_the_restored_venue(
    tmp_path: Path,
) -> None:
    path = tmp_path / "engine.sqlite"
    first = Venue()
    with Store.open(path) as store:
        oms = OrderManager(first.exchange, Portfolio({PAIR: INSTRUMENT}, START, "USDT"), StoreListener(store), "t")

        def both(event: OrderEvent) -> None:
            first.events.append(event)
            oms.on_event(event)

        first.exchange.bind(both)
        order = await oms.submit(gtd("t-1", OrderSide.BUY, "0.5", "100.0", minute(4)))
        assert order.expires_ns == minute(4)
        first.feed(candle(1, "99.0", "106.0", volume="0.2"))  # fills 0.2
    # The process dies; a new one reads the open orders back and hands them to a new venue.
    with Store.open(path) as store:
        [saved] = store.load_orders(open_only=True)
        balances = {"USDT": START["USDT"], "BTC": START["BTC"]}
        for fill in store.load_fills():
            balances["USDT"] -= fill.qty * fill.price + fill.fee
            balances["BTC"] += fill.qty
    assert (saved.expires_ns, saved.status, saved.filled_qty) == (minute(4), OrderStatus.PARTIALLY_FILLED, D("0.2"))
    second = Venue({})
    assert second.exchange.restore(balances, [saved], latest=[candle(1, "99.0", "106.0", volume="0.2")]) == []
    second.feed(candle(2, *QUIET))
    second.feed(candle(3, *QUIET))  # closes at minute 4: the expiry
    assert second.events == [OrderExpired(ClientOrderId("t-1"), minute(4))]
    assert await second.totals() == plain_totals(OrderSide.BUY, [("0.2", "100.0")])
    assert second.held("USDT") == 0
