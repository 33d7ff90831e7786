"""KrakenExchange against the fake Kraken: orders placed over WS (REST as fallback), executions turned into
engine events applied to real domain orders (so an illegal or duplicate event fails the test), cancels, the
dead man's switch, and recovery of what happened while the private connection was down."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio
import pytest
from fakes.instruments import example_instruments
from fakes.kraken_fake import FakeKraken
from fakes.kraken_fake_clients import FAST_WS, Ledger, order_request, rest_client

from engine.domain.orders import ClientOrderId, OrderFilled, OrderRejected, OrderStatus
from engine.exchanges.kraken.adapter import KrakenExchange
from engine.exchanges.port import ExchangeHealth, ExchangeUnavailable, OrderRefused

pytestmark = pytest.mark.anyio
D = Decimal
BOOK = ([("100.0", "1"), ("99.9", "2")], [("100.1", "1"), ("100.2", "3")])


@asynccontextmanager
async def adapter(fake: FakeKraken, *, ws: bool = True, **options: Any) -> AsyncIterator[tuple[KrakenExchange, Ledger]]:
    settings: dict[str, Any] = {"poll_interval_s": 0.05, "connect_wait_s": 5.0, "dead_man_interval_s": 30.0}
    settings.update(options)
    exchange = KrakenExchange(
        rest_client(fake),
        example_instruments(),
        ws_private_url=fake.ws_private_url if ws else None,
        settings=FAST_WS,
        **settings,
    )
    ledger = Ledger()
    exchange.bind(ledger)
    await exchange.start()
    try:
        await exchange.reconcile([], set())
        yield exchange, ledger
    finally:
        await exchange.stop()


async def submit(exchange: KrakenExchange, ledger: Ledger, *args: str) -> ClientOrderId:
    request = order_request(*args)
    ledger.track(request)
    await exchange.submit_order(request)
    return request.client_id


async def test_a_limit_order_goes_out_over_ws_rests_and_fills_as_maker() -> None:
    async with FakeKraken(balances={"USDT": D(1000)}) as fake, adapter(fake) as (exchange, ledger):
        fake.set_book("XBTUSDT", *BOOK)
        with anyio.fail_after(10):
            cid = await submit(exchange, ledger, "lim-1", "buy", "0.5", "99.5")
            assert ledger.kinds(cid) == ["OrderAccepted"]
            fake.public_trade("XBTUSDT", "99.4", "2", side="sell")
            await ledger.wait(lambda: ledger.orders[cid].status is OrderStatus.FILLED)
    order = ledger.orders[cid]
    (fake_order,) = fake.orders_by_cl_ord_id("lim-1")
    assert order.venue_order_id == fake_order.txid and fake.calls["AddOrder"] == 0
    fill = next(e.fill for e in ledger.events if isinstance(e, OrderFilled))
    (trade_id,) = fake_order.trades
    assert (fill.trade_id, fill.price, fill.qty, fill.liquidity) == (trade_id, D("99.5"), D("0.5"), "maker")
    assert (fill.fee, fill.fee_asset) == (D("0.12438"), "USDT")  # 0.25 % of 49.75, rounded up


async def test_a_market_order_fills_as_taker_and_balances_follow() -> None:
    async with FakeKraken(balances={"USDT": D(1000)}) as fake, adapter(fake) as (exchange, ledger):
        fake.set_book("XBTUSDT", *BOOK)
        with anyio.fail_after(10):
            cid = await submit(exchange, ledger, "mkt-1", "buy", "1.5")
            await ledger.wait(lambda: ledger.orders[cid].status is OrderStatus.FILLED)
            balances = await exchange.balances()
    fills = [e.fill for e in ledger.events if isinstance(e, OrderFilled)]
    assert [(f.price, f.qty, f.liquidity) for f in fills] == [
        (D("100.1"), D("1"), "taker"),
        (D("100.2"), D("0.5"), "taker"),
    ]
    assert balances["BTC"] == D("1.5") and balances["USDT"] == fake.market.balances["USDT"]


async def test_a_refused_order_is_rejected_with_krakens_reason() -> None:
    async with FakeKraken(balances={"USDT": D(10)}) as fake, adapter(fake) as (exchange, ledger):
        fake.set_book("XBTUSDT", *BOOK)
        with anyio.fail_after(10):
            cid = await submit(exchange, ledger, "poor-1", "buy", "1", "99.0")
    (event,) = ledger.events
    assert isinstance(event, OrderRejected) and event.reason == "EOrder:Insufficient funds"
    assert ledger.orders[cid].status is OrderStatus.REJECTED and not fake.market.orders


async def test_cancel_over_ws_and_cancel_all() -> None:
    async with FakeKraken(balances={"USDT": D(1000)}) as fake, adapter(fake) as (exchange, ledger):
        fake.set_book("XBTUSDT", *BOOK)
        with anyio.fail_after(10):
            first = await submit(exchange, ledger, "c-1", "buy", "0.1", "99.0")
            second = await submit(exchange, ledger, "c-2", "buy", "0.1", "98.0")
            third = await submit(exchange, ledger, "c-3", "buy", "0.1", "97.0")
            await exchange.cancel_order(first)
            await ledger.wait(lambda: ledger.orders[first].status is OrderStatus.CANCELED)
            with pytest.raises(OrderRefused):
                await exchange.cancel_order(first)
            assert await exchange.cancel_all() == 2
            await ledger.wait(lambda: not any(ledger.orders[c].is_open for c in (second, third)))
            assert await exchange.open_orders() == []
    assert [ledger.orders[c].status for c in (first, second, third)] == [OrderStatus.CANCELED] * 3


async def test_without_the_private_ws_orders_go_over_rest_and_outcomes_are_polled() -> None:
    async with FakeKraken(balances={"USDT": D(1000)}) as fake, adapter(fake, ws=False) as (exchange, ledger):
        fake.set_book("XBTUSDT", *BOOK)
        with anyio.fail_after(10):
            cid = await submit(exchange, ledger, "rest-1", "buy", "0.5", "99.5")
            listed = await exchange.open_orders()
            fake.public_trade("XBTUSDT", "99.0", "0.2", side="sell")
            fake.public_trade("XBTUSDT", "99.0", "0.3", side="sell")
            await ledger.wait(lambda: ledger.orders[cid].status is OrderStatus.FILLED)
            health = exchange.health()
    assert fake.calls["AddOrder"] == 1
    assert [(v.client_id, v.qty, v.limit_price) for v in listed] == [(cid, D("0.5"), D("99.5"))]
    assert ledger.kinds(cid) == ["OrderAccepted", "OrderFilled", "OrderFilled"]
    assert health == ExchangeHealth("kraken", True, None, "REST only")


async def test_an_unanswered_ws_add_order_is_looked_up_not_duplicated() -> None:
    async with FakeKraken(balances={"USDT": D(1000)}) as fake, adapter(fake) as (exchange, ledger):
        fake.set_book("XBTUSDT", *BOOK)
        fake.faults.ws_add_order_silent = 1
        lookups_before = fake.calls["OpenOrders"]
        with anyio.fail_after(10):
            cid = await submit(exchange, ledger, "quiet-1", "buy", "0.1", "99.0")
    (order,) = fake.orders_by_cl_ord_id("quiet-1")
    assert ledger.orders[cid].venue_order_id == order.txid and ledger.kinds(cid) == ["OrderAccepted"]
    assert fake.calls["AddOrder"] == 0 and fake.calls["OpenOrders"] == lookups_before + 1


async def test_fills_and_cancels_missed_while_disconnected_are_recovered_once() -> None:
    async with FakeKraken(balances={"USDT": D(1000)}) as fake, adapter(fake) as (exchange, ledger):
        fake.set_book("XBTUSDT", *BOOK)
        ws = exchange.private_ws
        assert ws is not None
        with anyio.fail_after(10):
            filled = await submit(exchange, ledger, "gone-1", "buy", "0.2", "99.5")
            canceled = await submit(exchange, ledger, "gone-2", "buy", "0.2", "98.0")
            fake.public_trade("XBTUSDT", "99.5", "0.1", side="sell")  # a partial fill seen live
            await ledger.wait(lambda: ledger.orders[filled].filled_qty == D("0.1"))
            fake.drop_ws(private=True)
            fake.public_trade("XBTUSDT", "99.5", "0.5", side="sell")  # the rest, while disconnected
            (lost,) = fake.orders_by_cl_ord_id("gone-2")
            fake.market.cancel(lost)
            await ledger.wait(lambda: not ledger.orders[filled].is_open and not ledger.orders[canceled].is_open)
            # Prove the reconnect snapshot (which repeats the fills) was processed: a later order's answer
            # arrives after it on the same connection.
            later = await submit(exchange, ledger, "after-1", "buy", "0.1", "97.0")
    assert ws.link.connections == 2
    assert ledger.kinds(filled) == ["OrderAccepted", "OrderFilled", "OrderFilled"]
    assert ledger.orders[filled].filled_qty == D("0.2") and ledger.orders[filled].status is OrderStatus.FILLED
    assert ledger.kinds(canceled) == ["OrderAccepted", "OrderCanceled"]
    assert ledger.kinds(later) == ["OrderAccepted"]


async def test_the_dead_mans_switch_is_armed_on_start_over_ws_and_over_rest_without_it() -> None:
    async with FakeKraken() as fake:
        async with adapter(fake) as (exchange, _):
            with anyio.fail_after(10):
                await fake.wait_until(lambda: fake.dms_calls >= 1)
            assert exchange.dms_armed_ns is not None
        assert fake.calls["CancelAllOrdersAfter"] == 0
        async with adapter(fake, ws=False) as (exchange, _):
            with anyio.fail_after(10):
                await fake.wait_until(lambda: fake.calls["CancelAllOrdersAfter"] >= 1)
    assert fake.dms_trigger_ns is not None
    assert fake.trigger_dead_man_switch() == 0  # nothing open to cancel


async def test_an_unreachable_venue_makes_submission_fail_as_unavailable() -> None:
    async with FakeKraken(balances={"USDT": D(1000)}) as fake, adapter(fake, ws=False) as (exchange, ledger):
        fake.faults.http_status["*"] = [503] * 40
        with anyio.fail_after(10), pytest.raises(ExchangeUnavailable):
            await submit(exchange, ledger, "down-1", "buy", "0.1", "99.0")
    assert not fake.market.orders and ledger.events == []
