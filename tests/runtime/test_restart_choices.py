"""What a restart decides: orders agree with their fills; the operator's configuration and caps outrank what the
MCP client saved."""

from decimal import Decimal

import pytest

from engine.domain.orders import ClientOrderId, Fill, Order, OrderAccepted, OrderSide, OrderStatus, OrderType, TradeId
from engine.risk.limits import RiskLimits
from engine.runtime.restart import RestartError, choose_limits, choose_params, orders_agreeing_with_fills
from engine.strategies import strategy_class

D = Decimal
CAPS = RiskLimits(
    max_order_qty=D(5),
    max_order_notional=D(1000),
    max_pair_notional=D(10000),
    max_total_notional=D(20000),
    max_open_orders=50,
)
CONFIGURED = RiskLimits(max_order_notional=D(900))


def order(cid: str, qty: str = "1", status: OrderStatus = OrderStatus.PENDING_NEW) -> Order:
    made = Order(ClientOrderId(cid), "BTC/USD", OrderSide.BUY, OrderType.MARKET, D(qty), None, 10)
    if status is not OrderStatus.PENDING_NEW:
        made.apply(OrderAccepted(made.client_id, f"P-{cid}", 11))  # type: ignore[arg-type]
    return made


def fill(cid: str, n: int, qty: str, price: str = "100") -> Fill:
    return Fill(
        TradeId(f"{cid}-{n}"), ClientOrderId(cid), "BTC/USD", OrderSide.BUY, D(qty), D(price), D("0.4"), "USD", 20
    )


def test_an_order_row_that_lags_its_fills_is_rebuilt_from_them() -> None:
    # The fill was saved, the order's new state was not (an older version wrote them apart, then a crash).
    lagging = order("a", "1", OrderStatus.NEW)
    partial = order("b", "2", OrderStatus.NEW)
    fine = order("c", "1")
    decided = orders_agreeing_with_fills([lagging, partial, fine], [fill("a", 1, "1"), fill("b", 1, "0.5", "90")])
    a, b, c = decided.value
    assert (a.status, a.filled_qty, a.trade_ids, a.fees) == (OrderStatus.FILLED, D(1), {"a-1"}, D("0.4"))
    assert (b.status, b.filled_qty, b.filled_cost, b.venue_order_id) == (
        OrderStatus.PARTIALLY_FILLED,
        D("0.5"),
        D(45),
        "P-b",
    )
    assert c is fine  # nothing to rebuild
    assert [note["client_id"] for note in decided.notes] == ["a", "b"]


def test_fills_beyond_an_orders_quantity_stop_the_start_in_one_line() -> None:
    with pytest.raises(RestartError, match="order a has fills for 2, more than its quantity 1"):
        orders_agreeing_with_fills([order("a")], [fill("a", 1, "1"), fill("a", 2, "1")])


def test_saved_limits_apply_but_never_above_the_caps_in_force() -> None:
    saved = CONFIGURED.model_copy(update={"max_order_notional": D(3000), "max_open_orders": 7})
    decided = choose_limits(CONFIGURED, CAPS, saved.model_dump(mode="json"), CONFIGURED.model_dump(mode="json"))
    # The MCP client's tighter max_open_orders stays; its max_order_notional, above the lowered cap, is clamped.
    assert decided.value.max_open_orders == 7
    assert decided.value.max_order_notional == D(1000)
    assert [note.get("limit") for note in decided.notes] == ["max_order_notional"]
    assert "3000 is above the operator's cap 1000" in str(decided.notes[0]["detail"])


def test_the_operators_new_limits_outrank_the_saved_ones() -> None:
    older = RiskLimits(max_order_notional=D(500))
    saved = older.model_copy(update={"max_open_orders": 3})
    decided = choose_limits(CONFIGURED, CAPS, saved.model_dump(mode="json"), older.model_dump(mode="json"))
    assert decided.value == CONFIGURED
    assert "the operator changed [risk.limits]" in str(decided.notes[0]["detail"])


def test_a_state_without_saved_limits_takes_the_configured_ones_clamped() -> None:
    too_high = RiskLimits(max_order_qty=D(9))
    decided = choose_limits(too_high, CAPS, None, None)
    assert decided.value.max_order_qty == D(5)


EMA = strategy_class("ema_cross")
BOUNDS = {"fast": (D(5), D(20))}


def test_tuned_parameters_survive_a_restart_when_the_operator_changed_nothing() -> None:
    choice = choose_params(
        EMA,
        ({"fast": 12, "slow": 26}, True),
        ({"fast": 15, "slow": 26}, False),
        ({"fast": 12, "slow": 26}, True),
        BOUNDS,
    )
    assert (choice.values, choice.enabled, choice.save_as) == (
        EMA.validate({"fast": 15, "slow": 26}, base=None),
        False,
        None,
    )


def test_the_operators_new_configuration_outranks_tuned_parameters() -> None:
    choice = choose_params(
        EMA,
        ({"fast": 10, "slow": 30}, True),
        ({"fast": 15, "slow": 26}, True),
        ({"fast": 12, "slow": 26}, True),
        BOUNDS,
    )
    assert (choice.values, choice.save_as) == (EMA.validate({"fast": 10, "slow": 30}, base=None), "config")
    assert "operator changed" in str(choice.notes[0]["detail"])


def test_tuned_values_outside_narrowed_bounds_are_clamped_but_configured_ones_never() -> None:
    narrowed = {"fast": (D(5), D(14)), "slow": (D(3), D(20))}
    choice = choose_params(
        EMA,
        ({"fast": 12, "slow": 26}, True),
        ({"fast": 18, "slow": 26}, True),
        ({"fast": 12, "slow": 26}, True),
        narrowed,
    )
    # fast was tuned to 18, above the narrowed 14: clamped; slow = 26 is the operator's own value: kept.
    assert (choice.values, choice.save_as) == (EMA.validate({"fast": 14, "slow": 26}, base=None), "restart-clamp")
    assert choice.notes[0]["param"] == "fast"


def test_a_first_start_saves_the_configuration() -> None:
    choice = choose_params(EMA, ({"fast": 12, "slow": 26}, True), None, None, BOUNDS)
    assert (choice.values, choice.enabled, choice.save_as) == (
        EMA.validate({"fast": 12, "slow": 26}, base=None),
        True,
        "config",
    )
