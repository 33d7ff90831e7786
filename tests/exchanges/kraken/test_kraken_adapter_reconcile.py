"""Reconciliation after a restart: orders that changed while the engine was down, orders it never heard back
about, orders placed outside it; then live tracking resumes for what is still open."""

from dataclasses import replace
from decimal import Decimal

import anyio
import pytest
from fakes.instruments import example_instruments
from fakes.kraken_fake import FakeKraken
from fakes.kraken_fake_clients import FAST_WS, Ledger, order_request, rest_client

from engine.domain.orders import (
    ClientOrderId,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    VenueOrderId,
)
from engine.exchanges.kraken.adapter import KrakenExchange
from engine.exchanges.kraken.protocol.rest_account import KrakenOrder, KrakenTrade
from engine.exchanges.kraken.reconcile import NOT_FOUND_REASON, VenueRecords, reconcile_orders
from engine.exchanges.kraken.translate import EXTERNAL_STRATEGY, InstrumentIndex, cl_ord_id_for
from engine.exchanges.port import ExchangeUnavailable

pytestmark = pytest.mark.anyio
D = Decimal
BOOK = ([("100.0", "1"), ("99.9", "2")], [("100.1", "1"), ("100.2", "3")])


def exchange_for(fake: FakeKraken) -> KrakenExchange:
    return KrakenExchange(
        rest_client(fake),
        example_instruments(),
        ws_private_url=fake.ws_private_url,
        settings=FAST_WS,
        connect_wait_s=5.0,
        poll_interval_s=0.05,
    )


async def test_a_restart_reconciles_everything_that_changed_while_the_engine_was_down() -> None:
    async with FakeKraken(balances={"USDT": D(1000), "BTC": D(1)}) as fake:
        fake.set_book("XBTUSDT", *BOOK)
        ledger = Ledger()
        first = exchange_for(fake)
        first.bind(ledger)
        await first.start()
        with anyio.fail_after(10):
            await first.reconcile([], set())
            for args in (("a", "buy", "0.2", "99.5"), ("b", "buy", "0.2", "98.0"), ("c", "buy", "0.4", "97.0")):
                request = order_request(*args)
                ledger.track(request)
                await first.submit_order(request)
        await first.stop()
        # While the engine is down: a fills, b is canceled, c half fills, someone places x by hand; the engine
        # had also recorded d (never sent) and e (sent, answer lost) as pending.
        fake.public_trade("XBTUSDT", "99.5", "0.2", side="sell")
        fake.market.cancel(fake.orders_by_cl_ord_id("b")[0])
        fake.public_trade("XBTUSDT", "97.0", "0.2", side="sell")
        fake.market.place(pair_name="XBTUSDT", side="sell", ordertype="limit", vol=D("0.3"), price=D("120.0"))
        for cid in ("d", "e"):
            ledger.track(order_request(cid, "buy", "0.1", "90.0"))
        fake.market.place(
            pair_name="XBTUSDT", side="buy", ordertype="limit", vol=D("0.1"), price=D("90.0"), cl_ord_id="e"
        )
        local = [replace(o, trade_ids=set(o.trade_ids)) for o in ledger.orders.values()]
        known = {str(t) for o in local for t in o.trade_ids}

        expected_balances = dict(fake.market.balances)
        second = exchange_for(fake)
        second.bind(ledger)
        await second.start()
        with anyio.fail_after(10):
            report = await second.reconcile(local, known)
            (adopted,) = report.adopt
            ledger.orders[adopted.client_id] = adopted
            for event in report.events:
                ledger(event)
            # Live tracking resumes: c's rest fills after the restart.
            fake.public_trade("XBTUSDT", "96.0", "1", side="sell")
            await ledger.wait(lambda: ledger.orders[ClientOrderId("c")].status is OrderStatus.FILLED)
        await second.stop()
    orders = ledger.orders
    assert orders[ClientOrderId("a")].status is OrderStatus.FILLED
    assert orders[ClientOrderId("b")].status is OrderStatus.CANCELED and orders[ClientOrderId("b")].reason
    assert orders[ClientOrderId("c")].filled_qty == D("0.4")
    assert orders[ClientOrderId("d")].status is OrderStatus.REJECTED
    assert orders[ClientOrderId("d")].reason == NOT_FOUND_REASON
    e = orders[ClientOrderId("e")]
    assert e.status is OrderStatus.NEW and e.venue_order_id == fake.orders_by_cl_ord_id("e")[0].txid
    assert adopted.strategy == EXTERNAL_STRATEGY and adopted.status is OrderStatus.NEW and adopted.qty == D("0.3")
    assert report.balances == expected_balances
    assert any("adopted" in note for note in report.notes)
    kinds = [type(e).__name__ for e in report.events]
    assert kinds.count("OrderFilled") == 2 and kinds.count("OrderCanceled") == 1
    assert kinds.count("OrderAccepted") == 1 and kinds.count("OrderRejected") == 1


async def test_reconciliation_fails_as_unavailable_and_stops_the_adapter_when_kraken_cannot_be_asked() -> None:
    async with FakeKraken() as fake:
        exchange = KrakenExchange(rest_client(fake), example_instruments(), ws_private_url=fake.ws_private_url)
        exchange.bind(Ledger())
        with anyio.fail_after(10):
            await exchange.start()
            fake.faults.http_status["*"] = [503] * 50
            with pytest.raises(ExchangeUnavailable, match="reconciliation failed"):
                await exchange.reconcile([], set())
            await fake.wait_until(lambda: not fake.sessions)  # the private connection was closed
            await exchange.stop()  # a second stop is harmless


async def test_reconciliation_retries_through_transient_faults() -> None:
    async with FakeKraken(balances={"USD": D(7)}) as fake:
        exchange = KrakenExchange(rest_client(fake), example_instruments(), ws_private_url=None)
        exchange.bind(Ledger())
        await exchange.start()
        fake.faults.http_status["OpenOrders"] = [502]
        fake.faults.errors["ClosedOrders"] = ["EAPI:Rate limit exceeded"]
        fake.faults.errors["Balance"] = ["EService:Unavailable"]
        with anyio.fail_after(10):
            report = await exchange.reconcile([], set())
        await exchange.stop()
    assert report.balances == {"USD": D(7)} and report.events == ()


# -- pure -----------------------------------------------------------------------------------------------------

INDEX = InstrumentIndex.of(example_instruments().values())


def kraken_order(
    txid: str, cl: str | None, status: str, vol: str, vol_exec: str, reason: str | None = None
) -> KrakenOrder:
    return KrakenOrder(
        txid=txid,
        status=status,
        pair="XBTUSDT",
        side="buy",
        ordertype="limit",
        price=D("100.0"),
        price2=D(0),
        vol=D(vol),
        vol_exec=D(vol_exec),
        cost=D(0),
        fee=D(0),
        avg_price=D(0),
        opentm_ns=10,
        closetm_ns=50,
        cl_ord_id=cl,
        userref=None,
        reason=reason,
        oflags="",
        trades=(),
        descr_order="",
    )


def trade(txid: str, order: str, vol: str, t: int) -> KrakenTrade:
    return KrakenTrade(
        txid=txid,
        ordertxid=order,
        pair="XBTUSDT",
        time_ns=t,
        side="buy",
        ordertype="limit",
        price=D("100.0"),
        cost=D(vol) * 100,
        fee=D("0.01"),
        vol=D(vol),
        maker=True,
        trade_id=None,
    )


def local_order(cid: str, qty: str, status: OrderStatus = OrderStatus.NEW, venue: str | None = "O1") -> Order:
    return Order(
        client_id=ClientOrderId(cid),
        pair="XBTUSDT",
        side=order_request(cid, "buy", "1").side,
        order_type=order_request(cid, "buy", "1", "100.0").order_type,
        qty=D(qty),
        limit_price=D("100.0"),
        created_ts_ns=5,
        status=status,
        venue_order_id=VenueOrderId(venue) if venue else None,
    )


def test_a_closed_order_with_volume_left_is_canceled_after_its_fills_in_order() -> None:
    venue = VenueRecords(
        open={},
        closed={"O1": kraken_order("O1", "x-1", "closed", "1", "0.4", "Insufficient liquidity")},
        trades={"T2": trade("T2", "O1", "0.3", 30), "T1": trade("T1", "O1", "0.1", 20)},
    )
    outcome = reconcile_orders([local_order("x-1", "1")], {"T1"}, venue, INDEX)
    events = outcome.report.events
    assert [type(e) for e in events] == [OrderFilled, OrderCanceled]
    assert isinstance(events[0], OrderFilled) and events[0].fill.trade_id == "T2"
    assert isinstance(events[1], OrderCanceled) and events[1].reason == "Insufficient liquidity"
    assert outcome.still_open == [] and outcome.fill_ids == {"T2"}
    assert "0.4 executed, fills found for 0.3" in outcome.report.notes[0]


def test_a_pending_order_found_by_cl_ord_id_is_accepted_and_one_never_sent_is_rejected() -> None:
    long_id = "engine-prefix-000000001234"
    venue = VenueRecords(
        open={"O9": kraken_order("O9", cl_ord_id_for(long_id), "open", "1", "0")}, closed={}, trades={}
    )
    pending = local_order(long_id, "1", OrderStatus.PENDING_NEW, venue=None)
    lost = local_order("never", "1", OrderStatus.PENDING_NEW, venue=None)
    outcome = reconcile_orders([pending, lost], set(), venue, INDEX)
    rejected, accepted = outcome.report.events  # in time order: the lost one was created first
    assert isinstance(accepted, OrderAccepted) and accepted.venue_order_id == "O9"
    assert isinstance(rejected, OrderRejected) and rejected.client_id == "never"
    assert [s.txid for s in outcome.still_open] == ["O9"] and outcome.report.adopt == ()


def test_a_fill_that_would_overfill_is_noted_not_emitted() -> None:
    venue = VenueRecords(
        open={"O1": kraken_order("O1", None, "open", "1", "1")}, closed={}, trades={"T1": trade("T1", "O1", "1", 20)}
    )
    already = replace(local_order("y", "1", OrderStatus.PARTIALLY_FILLED), filled_qty=D("0.5"))
    outcome = reconcile_orders([already], set(), venue, INDEX)
    assert outcome.report.events == () and "would overfill" in outcome.report.notes[0]
