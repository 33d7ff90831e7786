"""Order lifecycle on the simulated venue: cancel, cancel_all, restore after a restart, determinism."""

from decimal import Decimal
from typing import Any

import pytest

from engine.domain.instrument import Instrument
from engine.domain.market_data import NS_PER_SECOND, Candle
from engine.domain.orders import (
    ClientOrderId,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderFilled,
    OrderSide,
    OrderStatus,
    OrderType,
    VenueOrderId,
)
from engine.exchanges.paper import FixedBpsSlippage, PaperExchange, PaperSetupError
from engine.exchanges.port import ExchangePort, OrderRefused, OrderRequest

XBTUSDT = Instrument.from_kraken(
    "BTC/USDT",
    {
        "altname": "BTC/USDT",
        "base": "XXBT",
        "quote": "USDT",
        "cost_decimals": 5,
        "pair_decimals": 1,
        "lot_decimals": 8,
        "ordermin": "0.00005",
        "costmin": "0.5",
        "tick_size": "0.1",
    },
)
D = Decimal


def candle(i: int, o: str, h: str, low: str, c: str, v: str = "10") -> Candle:
    return Candle("BTC/USDT", i * 60 * NS_PER_SECOND, 60, D(o), D(h), D(low), D(c), D(v))


def request(cid: str, side: OrderSide, qty: str, limit: str | None = None) -> OrderRequest:
    order_type = OrderType.MARKET if limit is None else OrderType.LIMIT
    return OrderRequest(
        ClientOrderId(cid), "BTC/USDT", side, order_type, D(qty), None if limit is None else D(limit), 0
    )


class Venue:
    def __init__(self, balances: dict[str, Decimal] | None = None, **kwargs: Any) -> None:
        self.now = 0
        self.events: list[OrderEvent] = []
        self.exchange = PaperExchange(
            {"BTC/USDT": XBTUSDT},
            balances if balances is not None else {"USDT": D("100000"), "BTC": D("1")},
            clock=lambda: self.now,
            **kwargs,
        )
        self.exchange.bind(self.events.append)

    def feed(self, event: Candle) -> None:
        self.now = event.close_ns
        self.exchange.on_market(event)


def test_is_an_exchange_port() -> None:
    venue = Venue()
    assert isinstance(venue.exchange, ExchangePort)
    assert (venue.exchange.name, venue.exchange.is_live) == ("paper", False)
    assert venue.exchange.instruments() == {"BTC/USDT": XBTUSDT}
    health = venue.exchange.health()
    assert (health.venue, health.connected, health.last_message_ts_ns) == ("paper", True, None)
    venue.feed(candle(3, "1.0", "1.0", "1.0", "1.0"))
    assert venue.exchange.health().last_message_ts_ns == 180 * NS_PER_SECOND


@pytest.mark.anyio
async def test_start_stop_and_balances() -> None:
    venue = Venue()
    await venue.exchange.start()
    assert await venue.exchange.balances() == {"USDT": D("100000"), "BTC": D("1")}
    await venue.exchange.stop()


@pytest.mark.anyio
async def test_cancel_releases_the_hold_and_unknown_orders_are_refused() -> None:
    venue = Venue()
    venue.now = 42
    await venue.exchange.submit_order(request("b", OrderSide.BUY, "0.01", "90000.0"))
    assert venue.events == [OrderAccepted(ClientOrderId("b"), VenueOrderId("P-b"), 42)]
    [open_order] = await venue.exchange.open_orders()
    assert (open_order.venue_order_id, open_order.status, open_order.limit_price) == (
        "P-b",
        OrderStatus.NEW,
        D("90000.0"),
    )
    venue.now = 43
    await venue.exchange.cancel_order(ClientOrderId("b"))
    assert venue.events[-1] == OrderCanceled(ClientOrderId("b"), 43)
    assert venue.exchange.balance_detail()["USDT"].held == 0
    with pytest.raises(OrderRefused, match="EOrder:Unknown order"):
        await venue.exchange.cancel_order(ClientOrderId("b"))
    with pytest.raises(OrderRefused, match="EOrder:Unknown order"):
        await venue.exchange.cancel_order(ClientOrderId("never"))


@pytest.mark.anyio
async def test_cancel_all() -> None:
    venue = Venue()
    assert await venue.exchange.cancel_all() == 0
    await venue.exchange.submit_order(request("a", OrderSide.BUY, "0.01", "90000.0"))
    await venue.exchange.submit_order(request("b", OrderSide.SELL, "0.5", "110000.0"))
    assert await venue.exchange.cancel_all() == 2
    assert [type(e).__name__ for e in venue.events] == ["OrderAccepted"] * 2 + ["OrderCanceled"] * 2
    assert await venue.exchange.open_orders() == []
    assert all(entry.held == 0 for entry in venue.exchange.balance_detail().values())


def orders_from(events: list[OrderEvent], requests: list[OrderRequest]) -> dict[ClientOrderId, Order]:
    """What an order manager would know: the domain orders driven by the venue's events."""
    orders = {
        r.client_id: Order(r.client_id, r.pair, r.side, r.order_type, r.qty, r.limit_price, r.ts_ns) for r in requests
    }
    for event in events:
        orders[event.client_id].apply(event)
    return orders


SCENARIO = [
    candle(1, "100000.0", "100400.0", "99600.0", "100000.0", v="0.2"),
    candle(2, "100000.0", "100600.0", "99400.0", "100100.0", v="0.3"),
    candle(3, "100100.0", "100700.0", "99000.0", "100200.0", v="5"),
]


async def run_to_restart(venue: Venue) -> list[OrderRequest]:
    requests = [
        request("sell", OrderSide.SELL, "0.4", "100500.0"),
        request("buy", OrderSide.BUY, "0.5", "99500.0"),
    ]
    venue.feed(candle(0, "100000.0", "100000.0", "100000.0", "100000.0"))
    for r in requests:
        await venue.exchange.submit_order(r)
    venue.feed(SCENARIO[0])  # low 99600 < 99500? no; high 100400 < 100500: nothing
    venue.feed(SCENARIO[1])  # both cross; 0.5 × 0.3 = 0.15 shared
    return requests


@pytest.mark.anyio
async def test_restore_continues_exactly_where_the_uninterrupted_run_goes() -> None:
    kwargs: dict[str, Any] = {"volume_participation": D("0.5"), "slippage": FixedBpsSlippage(D("5"))}
    straight = Venue(**kwargs)
    requests = await run_to_restart(straight)
    assert [e.fill.qty for e in straight.events if isinstance(e, OrderFilled)] == [D("0.15")]
    before = list(straight.events)

    orders = orders_from(before, requests)
    assert orders[ClientOrderId("sell")].status is OrderStatus.PARTIALLY_FILLED
    restarted = Venue({}, **kwargs)
    restarted.feed(SCENARIO[1])  # the market data the new process saw last
    restarted.exchange.restore(await straight.exchange.balances(), [o for o in orders.values() if o.is_open])

    assert restarted.exchange.balance_detail() == straight.exchange.balance_detail()
    assert await restarted.exchange.open_orders() == await straight.exchange.open_orders()
    straight.feed(SCENARIO[2])
    restarted.feed(SCENARIO[2])
    after = straight.events[len(before) :]
    assert restarted.events == after
    assert [e.fill.trade_id for e in after if isinstance(e, OrderFilled)] == ["sell-2", "buy-1"]
    assert await restarted.exchange.balances() == await straight.exchange.balances()


@pytest.mark.anyio
async def test_restore_takes_back_what_it_can_and_names_the_rest() -> None:
    venue = Venue()
    requests = await run_to_restart(venue)
    orders = orders_from(venue.events, requests)
    open_orders = [o for o in orders.values() if o.is_open]
    fresh = Venue({})
    foreign = Order(ClientOrderId("y"), "ETHUSD", OrderSide.SELL, OrderType.LIMIT, D(1), D(1), 0)
    unanswered = Order(ClientOrderId("y2"), "BTC/USDT", OrderSide.SELL, OrderType.LIMIT, D("0.1"), D("200000.0"), 7)
    events = fresh.exchange.restore({"USDT": D(1), "BTC": D(1)}, [*open_orders, foreign, unanswered])
    # The sell's base is there; the buy's quote is not; the foreign pair is unknown. A restart never fails on one:
    # what cannot be taken back is canceled with the reason, and an order that never heard back is accepted.
    assert events == [
        OrderCanceled(
            ClientOrderId("buy"), 0, "canceled at restart: the balance of USDT cannot cover its hold of 49949.00004"
        ),
        OrderCanceled(ClientOrderId("y"), 0, "canceled at restart: unknown pair 'ETHUSD' at the simulated venue"),
        OrderAccepted(ClientOrderId("y2"), VenueOrderId("P-y2"), 7),
    ]
    assert [o.client_id for o in await fresh.exchange.open_orders()] == ["sell", "y2"]
    closed = Order(ClientOrderId("x"), "BTC/USDT", OrderSide.BUY, OrderType.LIMIT, D(1), D(1), 0)
    closed.apply(OrderCanceled(ClientOrderId("x"), 1))
    with pytest.raises(PaperSetupError, match="not open"):
        fresh.exchange.restore({}, [closed])
    assert [o.client_id for o in await fresh.exchange.open_orders()] == ["sell", "y2"]  # unchanged by the refusal
    # A market sell needs no price: it holds its base quantity, and fills at the next candle's open.
    sell = Order(ClientOrderId("m"), "BTC/USDT", OrderSide.SELL, OrderType.MARKET, D("0.5"), None, 0)
    assert fresh.exchange.restore({"BTC": D("0.5")}, [sell]) == [OrderAccepted(sell.client_id, VenueOrderId("P-m"), 0)]
    assert fresh.exchange.balance_detail()["BTC"].held == D("0.5")
    fresh.feed(SCENARIO[0])
    [filled] = fresh.events
    assert isinstance(filled, OrderFilled)
    assert (filled.fill.price, filled.fill.trade_id) == (D("100000.0"), "m-1")


def decided_on(i: int, cid: str = "mb", qty: str = "0.5") -> Order:
    """A market buy decided on the close of candle ``i`` (made at that close, as the engine makes them)."""
    return Order(
        ClientOrderId(cid),
        "BTC/USDT",
        OrderSide.BUY,
        OrderType.MARKET,
        D(qty),
        None,
        candle(i, "1", "1", "1", "1").close_ns,
    )


FIRST = candle(0, "99900.0", "99900.0", "99900.0", "99900.0")  # the candle before SCENARIO[0] (candle 1)


@pytest.mark.anyio
async def test_a_market_buy_restored_before_any_price_holds_at_the_first_one() -> None:
    venue = Venue({})
    [accepted] = venue.exchange.restore({"USDT": D(100000)}, [decided_on(1)])
    assert accepted == OrderAccepted(ClientOrderId("mb"), VenueOrderId("P-mb"), decided_on(1).created_ts_ns)
    assert venue.exchange.balance_detail()["USDT"].held == 0  # nothing to hold it at yet
    venue.feed(SCENARIO[0])  # candle 1 closed when the order was made: history to it
    assert venue.events == []
    assert venue.exchange.balance_detail()["USDT"].held > 0
    venue.feed(SCENARIO[1])
    [filled] = venue.events
    assert isinstance(filled, OrderFilled) and filled.fill.price == SCENARIO[1].open
    assert venue.exchange.balance_detail()["USDT"].held == 0

    poor = Venue({})
    assert len(poor.exchange.restore({"USDT": D(10)}, [decided_on(1)])) == 1
    poor.feed(SCENARIO[1])  # after the order: it would trade, but its funds cannot be held
    [canceled] = poor.events
    assert isinstance(canceled, OrderCanceled) and "funds could not be held" in canceled.reason
    assert await poor.exchange.open_orders() == []


@pytest.mark.anyio
async def test_a_restored_market_buy_never_trades_on_the_candle_that_decided_it() -> None:
    # Uninterrupted: candle 1 decides, the order goes in at its close, candle 2's open fills it.
    straight = Venue()
    straight.feed(FIRST)
    straight.feed(SCENARIO[0])
    order = decided_on(1)
    await straight.exchange.submit_order(
        OrderRequest(order.client_id, order.pair, order.side, order.order_type, order.qty, None, order.created_ts_ns)
    )
    held = straight.exchange.balance_detail()["USDT"].held
    straight.feed(SCENARIO[1])
    # Crashed after the intent was saved but before candle 1 was recorded as processed: the restart primes the
    # venue with candle 0 and replays candle 1, which must not fill the order (it was made at its close).
    restarted = Venue()
    # The intent was saved, the answer never was: taking the order back accepts it as the venue did the first time.
    taken_back = restarted.exchange.restore(await Venue().exchange.balances(), [order], latest=[FIRST])
    assert taken_back == straight.events[:1]
    assert restarted.exchange.balance_detail()["USDT"].held != held  # held at candle 0's close so far
    restarted.feed(SCENARIO[0])
    assert restarted.events == []
    assert restarted.exchange.balance_detail()["USDT"].held == held  # at candle 1's close, as when accepted
    restarted.feed(SCENARIO[1])
    assert restarted.events == straight.events[1:]  # the same fill (the restart does not replay the accept)
    [filled] = restarted.events
    assert isinstance(filled, OrderFilled)
    assert filled.fill.price == SCENARIO[1].open and filled.fill.ts_ns >= order.created_ts_ns
    assert await restarted.exchange.balances() == await straight.exchange.balances()


@pytest.mark.anyio
async def test_no_fill_is_dated_before_its_order() -> None:
    # Live data: the engine decides a moment after a candle's interval ended; the next candle opened before that.
    venue = Venue()
    venue.feed(SCENARIO[0])
    made_at = SCENARIO[0].close_ns + 2 * NS_PER_SECOND
    venue.now = made_at
    await venue.exchange.submit_order(
        OrderRequest(ClientOrderId("late"), "BTC/USDT", OrderSide.BUY, OrderType.MARKET, D("0.1"), None, made_at)
    )
    venue.feed(SCENARIO[1])
    filled = venue.events[-1]
    assert isinstance(filled, OrderFilled)
    assert SCENARIO[1].ts_ns < made_at == filled.fill.ts_ns


def test_restored_orders_need_a_handler_before_they_can_fill() -> None:
    unbound = PaperExchange({"BTC/USDT": XBTUSDT}, {}, clock=lambda: 0)
    unbound.on_market(SCENARIO[0])  # nothing open: no handler needed
    order = Order(ClientOrderId("s"), "BTC/USDT", OrderSide.SELL, OrderType.LIMIT, D(1), D("100.0"), 0)
    unbound.restore({"BTC": D(1)}, [order])
    with pytest.raises(PaperSetupError, match="bind"):
        unbound.on_market(SCENARIO[0])


async def scripted_run() -> list[OrderEvent]:
    venue = Venue(volume_participation=D("0.3"), slippage=FixedBpsSlippage(D("7")))
    for i in range(40):
        price = 100000 + (i * 7919 % 997) - 498
        venue.feed(candle(i, f"{price}.0", f"{price + 300}.0", f"{price - 300}.0", f"{price + 50}.0", v="0.37"))
        side = OrderSide.BUY if i % 3 else OrderSide.SELL
        limit = None if i % 4 == 0 else f"{price + (150 if side is OrderSide.SELL else -150)}.0"
        await venue.exchange.submit_order(request(f"o{i}", side, "0.05", limit))
    await venue.exchange.cancel_all()
    return venue.events


@pytest.mark.anyio
async def test_same_inputs_give_identical_events() -> None:
    first = await scripted_run()
    second = await scripted_run()
    assert any(isinstance(event, OrderFilled) for event in first)
    assert first == second
    trade_ids = [event.fill.trade_id for event in first if isinstance(event, OrderFilled)]
    assert len(trade_ids) == len(set(trade_ids))
