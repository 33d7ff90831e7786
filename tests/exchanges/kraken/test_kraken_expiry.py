"""Good-till-date orders on Kraken, against the fake Kraken whose clock the test moves (no sleeping for an expiry):
the expiry goes out as Kraken documents it (WebSocket ``time_in_force: "gtd"`` + RFC3339 ``expire_time``, REST
``timeinforce=GTD`` + UNIX ``expiretm``), Kraken's ``expired`` report (live, over REST, or found at
reconciliation) ends the engine's order EXPIRED with its fills booked, and an expiring market order never leaves
the engine."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from decimal import ROUND_UP, Decimal

import anyio
import pytest
from fakes.instruments import example_instruments
from fakes.kraken_fake import FakeClock, FakeKraken
from fakes.kraken_fake_clients import FAST_WS, Ledger, order_request, rest_client

from engine.domain.orders import ClientOrderId, OrderExpired, OrderFilled, OrderRejected, OrderStatus
from engine.exchanges.kraken.adapter import KrakenExchange
from engine.exchanges.kraken.protocol import ws_requests
from engine.exchanges.port import ERR_EXPIRY_NOT_FUTURE, ERR_EXPIRY_NOT_LIMIT

pytestmark = pytest.mark.anyio
D = Decimal
NS = 1_000_000_000
T0 = 1_700_000_000 * NS  # 2023-11-14T22:13:20Z
BOOK = ([("100.0", "1"), ("99.9", "2")], [("100.1", "1"), ("100.2", "3")])
MAKER = D("0.0025")  # BTC/USDT's first maker tier


@asynccontextmanager
async def adapter(
    fake: FakeKraken, clock: FakeClock, *, ws: bool = True
) -> AsyncIterator[tuple[KrakenExchange, Ledger]]:
    exchange = KrakenExchange(
        rest_client(fake),
        example_instruments(),
        ws_private_url=fake.ws_private_url if ws else None,
        settings=FAST_WS,
        poll_interval_s=0.05,
        connect_wait_s=5.0,
        dead_man_interval_s=30.0,
        clock_ns=clock,
    )
    ledger = Ledger()
    exchange.bind(ledger)
    await exchange.start()
    try:
        await exchange.reconcile([], set())
        yield exchange, ledger
    finally:
        await exchange.stop()


def plain_usdt(fills: list[tuple[str, str]]) -> Decimal:
    """1000 USDT after maker buys ``(qty, price)`` of one order, each fill's fee rounded up (the fake's rule)."""
    spent = D(0)
    for qty, price in fills:
        cost = D(qty) * D(price)
        spent += cost + (cost * MAKER).quantize(D("0.00001"), rounding=ROUND_UP)
    return D(1000) - spent


def test_the_websocket_request_carries_gtd_and_an_rfc3339_expiry() -> None:
    text = ws_requests.add_order(
        "tok",
        symbol="BTC/USDT",
        side="buy",
        order_type="limit",
        order_qty=D("0.5"),
        limit_price=D("99.5"),
        time_in_force="gtd",
        expire_time="2023-11-14T22:14:20Z",
    )
    params = json.loads(text)["params"]
    assert (params["time_in_force"], params["expire_time"]) == ("gtd", "2023-11-14T22:14:20Z")


@pytest.mark.parametrize("ws", [True, False], ids=["websocket", "rest"])
async def test_a_gtd_limit_rests_partially_fills_and_expires_with_its_fills_booked(ws: bool) -> None:
    clock = FakeClock(T0)
    expires = T0 + 60 * NS + 700_000_000  # sent to the second, rounded down: T0 + 60 s
    async with (
        FakeKraken(balances={"USDT": D(1000)}, clock_ns=clock) as fake,
        adapter(fake, clock, ws=ws) as (
            exchange,
            ledger,
        ),
    ):
        fake.set_book("XBTUSDT", *BOOK)
        request = order_request("gtd-1", "buy", "0.5", "99.5", expires_ns=expires)
        ledger.track(request)
        cid = request.client_id
        with anyio.fail_after(10):
            await exchange.submit_order(request)
            await ledger.wait(lambda: ledger.orders[cid].status is OrderStatus.NEW)
            (resting,) = fake.orders_by_cl_ord_id("gtd-1")
            assert (resting.status, resting.time_in_force, resting.expire_ns) == ("open", "GTD", T0 + 60 * NS)
            fake.public_trade("XBTUSDT", "99.4", "0.2", side="sell")
            await ledger.wait(lambda: ledger.orders[cid].filled_qty == D("0.2"))
            assert fake.advance_clock(59) == 0 and resting.status == "open"  # one second before: still there
            assert fake.advance_clock(1) == 1
            await ledger.wait(lambda: not ledger.orders[cid].is_open)
            balances = await exchange.balances()
    order = ledger.orders[cid]
    assert ledger.kinds(cid) == ["OrderAccepted", "OrderFilled", "OrderExpired"]
    assert (order.status, order.filled_qty, order.remaining) == (OrderStatus.EXPIRED, D("0.2"), D("0.3"))
    (fill,) = [e.fill for e in ledger.events if isinstance(e, OrderFilled)]
    assert (fill.qty, fill.price, fill.liquidity, fill.trade_id) == (D("0.2"), D("99.5"), "maker", resting.trades[0])
    assert ledger.events[-1] == OrderExpired(cid, T0 + 60 * NS)
    assert fake.calls["AddOrder"] == (0 if ws else 1)
    assert resting.status == "expired" and fake.market.held("USDT") == 0
    assert balances == {"USDT": plain_usdt([("0.2", "99.5")]), "BTC": D("0.2")}


async def test_an_order_filled_before_its_expiry_never_expires() -> None:
    clock = FakeClock(T0)
    async with (
        FakeKraken(balances={"USDT": D(1000)}, clock_ns=clock) as fake,
        adapter(fake, clock) as (
            exchange,
            ledger,
        ),
    ):
        fake.set_book("XBTUSDT", *BOOK)
        request = order_request("gtd-2", "buy", "0.5", "99.5", expires_ns=T0 + 60 * NS)
        ledger.track(request)
        with anyio.fail_after(10):
            await exchange.submit_order(request)
            fake.public_trade("XBTUSDT", "99.0", "1", side="sell")
            await ledger.wait(lambda: ledger.orders[request.client_id].status is OrderStatus.FILLED)
            assert fake.advance_clock(120) == 0
            # A later order's answer arrives after anything the fake published about the first one.
            after = order_request("after-1", "buy", "0.1", "90.0")
            ledger.track(after)
            await exchange.submit_order(after)
            await ledger.wait(lambda: ledger.orders[after.client_id].status is OrderStatus.NEW)
    assert ledger.kinds(request.client_id) == ["OrderAccepted", "OrderFilled"]


async def test_an_expiring_market_order_or_a_past_expiry_is_rejected_before_sending() -> None:
    clock = FakeClock(T0)
    async with (
        FakeKraken(balances={"USDT": D(1000)}, clock_ns=clock) as fake,
        adapter(fake, clock) as (
            exchange,
            ledger,
        ),
    ):
        fake.set_book("XBTUSDT", *BOOK)
        market = order_request("mkt-gtd", "buy", "0.1", expires_ns=T0 + 60 * NS)
        past = order_request("past-gtd", "buy", "0.1", "99.0", expires_ns=T0)
        for request in (market, past):
            ledger.track(request)
            with anyio.fail_after(10):
                await exchange.submit_order(request)
    rejected = [e for e in ledger.events if isinstance(e, OrderRejected)]
    assert [(e.client_id, e.reason) for e in rejected] == [
        (ClientOrderId("mkt-gtd"), ERR_EXPIRY_NOT_LIMIT),
        (ClientOrderId("past-gtd"), ERR_EXPIRY_NOT_FUTURE),
    ]
    assert not fake.market.orders and fake.calls["AddOrder"] == 0
    assert [ledger.orders[c].status for c in (market.client_id, past.client_id)] == [OrderStatus.REJECTED] * 2


async def test_an_order_that_expired_while_the_engine_was_down_is_reconciled_expired() -> None:
    clock = FakeClock(T0)
    async with FakeKraken(balances={"USDT": D(1000)}, clock_ns=clock) as fake:
        fake.set_book("XBTUSDT", *BOOK)
        async with adapter(fake, clock) as (exchange, ledger):
            request = order_request("gtd-3", "buy", "0.5", "99.5", expires_ns=T0 + 300 * NS)
            ledger.track(request)
            with anyio.fail_after(10):
                await exchange.submit_order(request)
                await ledger.wait(lambda: ledger.orders[request.client_id].status is OrderStatus.NEW)
        # While the engine is down: a partial fill, then the expiry; and someone places a GTD order by hand.
        fake.public_trade("XBTUSDT", "99.5", "0.1", side="sell")
        assert fake.advance_clock(301) == 1
        fake.market.place(
            pair_name="XBTUSDT",
            side="buy",
            ordertype="limit",
            vol=D("0.1"),
            price=D("90.0"),
            time_in_force="GTD",
            expire_ns=T0 + 900 * NS,
        )
        local = [replace(o, trade_ids=set(o.trade_ids)) for o in ledger.orders.values()]
        second = KrakenExchange(
            rest_client(fake),
            example_instruments(),
            ws_private_url=fake.ws_private_url,
            settings=FAST_WS,
            connect_wait_s=5.0,
            clock_ns=clock,
        )
        second.bind(ledger)
        await second.start()
        try:
            with anyio.fail_after(10):
                report = await second.reconcile(local, set())
        finally:
            await second.stop()
    (adopted,) = report.adopt
    assert adopted.expires_ns == T0 + 900 * NS
    ledger.orders[adopted.client_id] = adopted
    for event in report.events:
        ledger(event)
    order = ledger.orders[request.client_id]
    assert ledger.kinds(request.client_id) == ["OrderAccepted", "OrderFilled", "OrderExpired"]
    assert (order.status, order.filled_qty) == (OrderStatus.EXPIRED, D("0.1"))
    assert order.updated_ts_ns == T0 + 300 * NS
    assert report.balances is not None and report.balances["USDT"] == plain_usdt([("0.1", "99.5")])
