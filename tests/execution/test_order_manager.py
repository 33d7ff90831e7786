"""The order manager: intent first, then send; a stop that lands while the intent is being saved wins."""

from decimal import Decimal

import anyio
import pytest
from fakes.instruments import example_instruments

from engine.domain.orders import ClientOrderId, Fill, Order, OrderSide, OrderStatus, OrderType
from engine.domain.positions import Position
from engine.exchanges.paper import PaperExchange
from engine.exchanges.port import OrderRequest
from engine.execution.order_manager import REASON_STOPPED_BEFORE_SEND, OrderManager
from engine.portfolio.performance import ClosedTrade
from engine.portfolio.portfolio import Portfolio

pytestmark = pytest.mark.anyio


class SlowJournal:
    """Records what it hears; saving an intent waits until the test lets it finish."""

    def __init__(self) -> None:
        self.saving = anyio.Event()
        self.release = anyio.Event()
        self.intents: list[str] = []
        self.anomalies: list[str] = []

    async def order_intent(self, order: Order) -> None:
        self.intents.append(order.client_id)
        self.saving.set()
        await self.release.wait()

    def order_changed(self, order: Order) -> None:
        pass

    def fill_booked(self, fill: Fill, position: Position, closed: ClosedTrade | None, order: Order) -> None:
        pass

    def anomaly(self, kind: str, detail: str, payload: dict[str, object]) -> None:
        self.anomalies.append(kind)


def request(cid: str) -> OrderRequest:
    return OrderRequest(
        ClientOrderId(cid), "BTC/USD", OrderSide.BUY, OrderType.LIMIT, Decimal("0.01"), Decimal("50000"), 1
    )


async def test_a_stop_during_the_intent_write_keeps_the_order_from_the_venue() -> None:
    instruments = example_instruments()
    venue = PaperExchange(instruments, {"USD": Decimal(10000)}, clock=lambda: 1)
    journal = SlowJournal()
    trading = True
    oms = OrderManager(venue, Portfolio(instruments, {"USD": Decimal(10000)}, "USD"), journal, "t", lambda: trading)
    async with anyio.create_task_group() as tg:
        tg.start_soon(oms.submit, request("t-1"))
        with anyio.fail_after(5):
            await journal.saving.wait()
        trading = False  # the emergency stop lands while the intent is being made durable
        journal.release.set()
    order = oms.orders[ClientOrderId("t-1")]
    assert order.status is OrderStatus.REJECTED and order.reason == REASON_STOPPED_BEFORE_SEND
    assert await venue.open_orders() == []
    assert journal.intents == ["t-1"]


async def test_forced_orders_go_even_when_stopped() -> None:
    instruments = example_instruments()
    venue = PaperExchange(instruments, {"USD": Decimal(10000)}, clock=lambda: 1)
    journal = SlowJournal()
    journal.release.set()
    oms = OrderManager(venue, Portfolio(instruments, {"USD": Decimal(10000)}, "USD"), journal, "t", lambda: False)
    with anyio.fail_after(5):
        order = await oms.submit(request("t-2"), force=True)
    assert order.status is OrderStatus.NEW
    assert [o.client_id for o in await venue.open_orders()] == ["t-2"]


async def test_unknown_order_events_are_reported_not_applied() -> None:
    from engine.domain.orders import OrderCanceled

    instruments = example_instruments()
    venue = PaperExchange(instruments, {"USD": Decimal(10000)}, clock=lambda: 1)
    journal = SlowJournal()
    oms = OrderManager(venue, Portfolio(instruments, {"USD": Decimal(10000)}, "USD"), journal, "t")
    oms.on_event(OrderCanceled(ClientOrderId("nobody"), 1))
    assert journal.anomalies == ["unknown_order_event"] and oms.orders == {}


async def test_only_recent_closed_orders_stay_in_memory() -> None:
    instruments = example_instruments()
    venue = PaperExchange(instruments, {"USD": Decimal(10000)}, clock=lambda: 1)
    journal = SlowJournal()
    journal.release.set()
    oms = OrderManager(venue, Portfolio(instruments, {"USD": Decimal(10000)}, "USD"), journal, "t", keep_closed=2)
    with anyio.fail_after(5):
        for n in range(1, 5):
            await oms.submit(request(f"t-{n}"))
        await oms.submit(request("t-5"))
        for n in range(1, 5):
            await venue.cancel_order(ClientOrderId(f"t-{n}"))
    assert sorted(oms.orders) == ["t-3", "t-4", "t-5"]  # the two latest closed, and the open one
    assert oms.open_ids == {ClientOrderId("t-5")}
