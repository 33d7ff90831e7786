"""The order tracker turns whatever Kraken sends, repeated or out of order, into well-formed engine events."""

from decimal import Decimal

from fakes.instruments import example_instruments
from fakes.kraken_fake_clients import Ledger, order_request

from engine.domain.orders import ClientOrderId, OrderFilled, OrderSide
from engine.exchanges.kraken.order_tracker import LiveOrder, OrderTracker
from engine.exchanges.kraken.protocol.ws_messages import ExecutionReport, ExecutionsMsg, Fee

D = Decimal


def setup() -> tuple[OrderTracker, Ledger, LiveOrder]:
    ledger = Ledger()
    ledger.track(order_request("t-1", "buy", "1", "100.0", pair="BTC/USD"))
    tracker = OrderTracker(example_instruments(), ledger, lambda: 123)
    live = LiveOrder(ClientOrderId("t-1"), "t-1", "BTC/USD", OrderSide.BUY, D(1), "test")
    tracker.register(live)
    return tracker, ledger, live


def trade(exec_id: str, qty: str, sequence: int) -> ExecutionsMsg:
    report = ExecutionReport(
        order_id="O1",
        exec_type="trade",
        cl_ord_id="t-1",
        exec_id=exec_id,
        symbol="BTC/USD",
        last_qty=D(qty),
        last_price=D("100.0"),
        liquidity_ind="t",
        fees=(Fee("USD", D("0.04")),),
        ts_ns=1000,
    )
    return ExecutionsMsg("update", sequence, (report,))


def test_a_fill_before_the_answer_is_preceded_by_the_acceptance_and_repeats_are_dropped() -> None:
    tracker, ledger, live = setup()
    assert tracker.on_executions(trade("T1", "0.4", 1)) == []
    assert tracker.on_executions(trade("T1", "0.4", 2)) == []  # the same fill again (e.g. a reconnect snapshot)
    tracker.accept(live, "O1")  # the add_order answer, late
    assert ledger.kinds("t-1") == ["OrderAccepted", "OrderFilled"]
    fill = next(e.fill for e in ledger.events if isinstance(e, OrderFilled))
    assert (fill.trade_id, fill.fee, fill.fee_asset, fill.liquidity) == ("T1", D("0.04"), "USD", "taker")


def test_a_gap_in_the_sequence_and_orders_missing_from_a_snapshot_call_for_settling() -> None:
    tracker, _, live = setup()
    tracker.on_executions(trade("T1", "0.1", 1))
    assert tracker.on_executions(trade("T2", "0.1", 5)) == [live]
    empty_snapshot = ExecutionsMsg("snapshot", 1, ())
    assert tracker.on_executions(empty_snapshot) == [live]


def test_nothing_is_emitted_for_a_closed_order() -> None:
    tracker, ledger, live = setup()
    tracker.accept(live, "O1")
    tracker.on_executions(trade("T1", "1", 1))
    closed = ExecutionReport(order_id="O1", exec_type="canceled", order_status="canceled", ts_ns=2000)
    tracker.apply_report(live, closed)
    tracker.reject(live, "late refusal")
    assert ledger.kinds("t-1") == ["OrderAccepted", "OrderFilled"] and not live.open
    assert ledger.orders[ClientOrderId("t-1")].filled_qty == D(1)
