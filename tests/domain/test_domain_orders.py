"""The order state machine: every transition in the table works, everything else is refused."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.orders import (
    ORDER_TRANSITIONS,
    ClientOrderId,
    DuplicateFill,
    Fill,
    IllegalTransition,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderType,
    TradeId,
    VenueOrderId,
)

CID = ClientOrderId("c-1")


def new_order(qty: str = "1") -> Order:
    return Order(CID, "BTC/USD", OrderSide.BUY, OrderType.LIMIT, Decimal(qty), Decimal("100"), created_ts_ns=1)


def status_of(order: Order) -> OrderStatus:
    return order.status


def fill(trade: str, qty: str, price: str = "100") -> OrderFilled:
    return OrderFilled(
        Fill(
            TradeId(trade),
            CID,
            "BTC/USD",
            OrderSide.BUY,
            Decimal(qty),
            Decimal(price),
            Decimal("0.1"),
            "USD",
            2,
        )
    )


def test_accept_then_partial_then_full_fill() -> None:
    order = new_order("1")
    order.apply(OrderAccepted(CID, VenueOrderId("V1"), 1))
    assert status_of(order) is OrderStatus.NEW and order.venue_order_id == "V1"
    order.apply(fill("t1", "0.4", "100"))
    assert status_of(order) is OrderStatus.PARTIALLY_FILLED
    order.apply(fill("t2", "0.6", "110"))
    assert status_of(order) is OrderStatus.FILLED
    assert order.filled_qty == Decimal("1")
    assert order.avg_price == Decimal("106")
    assert order.fees == Decimal("0.2")
    assert not order.is_open


def test_duplicate_trade_id_is_refused_and_changes_nothing() -> None:
    order = new_order("1")
    order.apply(fill("t1", "0.5"))
    with pytest.raises(DuplicateFill):
        order.apply(fill("t1", "0.5"))
    assert order.filled_qty == Decimal("0.5")


def test_overfill_is_refused() -> None:
    order = new_order("1")
    with pytest.raises(IllegalTransition):
        order.apply(fill("t1", "1.5"))
    assert order.status is OrderStatus.PENDING_NEW and order.filled_qty == 0


def test_event_for_another_order_is_refused() -> None:
    order = new_order()
    with pytest.raises(IllegalTransition):
        order.apply(OrderCanceled(ClientOrderId("other"), 1))


@pytest.mark.parametrize("terminal", ["rejected", "canceled", "expired", "filled"])
def test_terminal_states_accept_nothing(terminal: str) -> None:
    order = new_order("1")
    if terminal == "rejected":
        order.apply(OrderRejected(CID, "EOrder:Insufficient funds", 1))
    elif terminal == "canceled":
        order.apply(OrderCanceled(CID, 1))
    elif terminal == "expired":
        order.apply(OrderAccepted(CID, VenueOrderId("V"), 1))
        order.apply(OrderExpired(CID, 2))
    else:
        order.apply(fill("t1", "1"))
    for event in (
        OrderAccepted(CID, VenueOrderId("V"), 3),
        OrderCanceled(CID, 3),
        OrderExpired(CID, 3),
        OrderRejected(CID, "x", 3),
        fill("t9", "0.1"),
    ):
        with pytest.raises(IllegalTransition):
            order.apply(event)
    assert order.status.value == terminal


def _event_of(kind: type, n: int) -> OrderEvent:
    if kind is OrderAccepted:
        return OrderAccepted(CID, VenueOrderId("V"), n)
    if kind is OrderRejected:
        return OrderRejected(CID, "r", n)
    if kind is OrderCanceled:
        return OrderCanceled(CID, n)
    if kind is OrderExpired:
        return OrderExpired(CID, n)
    return fill(f"t{n}", "0.1")


@given(st.lists(st.sampled_from([OrderAccepted, OrderRejected, OrderCanceled, OrderExpired, OrderFilled]), max_size=12))
def test_any_event_sequence_follows_the_table(kinds: list[type]) -> None:
    order = new_order("100")
    for n, kind in enumerate(kinds):
        before = order.status
        allowed = ORDER_TRANSITIONS.get((before, kind))
        if allowed is None:
            with pytest.raises(IllegalTransition):
                order.apply(_event_of(kind, n))
            assert order.status is before
        else:
            order.apply(_event_of(kind, n))
            assert order.status in allowed
    assert order.filled_qty == sum((Decimal("0.1") for _ in order.trade_ids), Decimal(0))
