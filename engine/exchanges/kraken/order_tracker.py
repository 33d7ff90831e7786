"""The orders the Kraken adapter follows until they close, and the engine events they produce (no I/O).

Kraken reports an order's life through ``executions`` messages (and, after a gap, through REST). The same fact can
arrive twice (a reconnect's snapshot repeats the last fills; a REST settle repeats what the WebSocket said), out of
the expected order (a fill before the ``add_order`` answer), or not at all (while disconnected). The tracker makes
the events the engine sees well formed whatever arrives:

* ``OrderAccepted`` once per order, before anything else about it;
* ``OrderFilled`` once per Kraken trade id, never beyond the order's quantity;
* ``OrderCanceled`` / ``OrderExpired`` / ``OrderRejected`` once, only while the order is open.

What it cannot settle from a message (an order listed as filled whose fills it has not seen; orders missing from a
snapshot; a sequence gap) it returns as "settle these over REST" for the adapter to do.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from engine.domain.instrument import Instrument
from engine.domain.money import ZERO
from engine.domain.orders import (
    ClientOrderId,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    VenueOrderId,
)
from engine.exchanges.kraken.protocol.rest_account import KrakenOrder, KrakenTrade
from engine.exchanges.kraken.protocol.ws_messages import ExecutionReport, ExecutionsMsg
from engine.exchanges.kraken.translate import InstrumentIndex, fill_from_report, fill_from_trade
from engine.redaction import redacted_logger

__all__ = ["LiveOrder", "OrderTracker"]

log = redacted_logger(__name__)


@dataclass(slots=True)
class LiveOrder:
    """An order followed until it closes."""

    client_id: ClientOrderId
    cl_ord_id: str
    pair: str
    side: OrderSide
    qty: Decimal
    strategy: str
    txid: str | None = None
    accepted: bool = False
    filled: Decimal = ZERO
    open: bool = True


class OrderTracker:
    """Live orders by client id, txid and cl_ord_id; turns Kraken's reports into engine events via ``emit``."""

    def __init__(
        self, instruments: Mapping[str, Instrument], emit: Callable[[OrderEvent], None], clock_ns: Callable[[], int]
    ) -> None:
        self._instruments = instruments
        self._index = InstrumentIndex.of(instruments.values())
        self._emit = emit
        self._clock_ns = clock_ns
        self.orders: dict[ClientOrderId, LiveOrder] = {}
        self._by_txid: dict[str, LiveOrder] = {}
        self._by_cl: dict[str, LiveOrder] = {}
        self.fill_ids: set[str] = set()
        self._sequence: int | None = None
        self.unknown_reports = 0
        self.notes: list[str] = []

    def register(self, live: LiveOrder) -> None:
        self.orders[live.client_id] = live
        self._by_cl[live.cl_ord_id] = live
        if live.txid is not None:
            self._by_txid[live.txid] = live

    def by_ids(self, txid: str | None, cl_ord_id: str | None) -> LiveOrder | None:
        live = self._by_txid.get(txid) if txid is not None else None
        if live is None and cl_ord_id is not None:
            live = self._by_cl.get(cl_ord_id)
        return live

    def open_orders(self) -> list[LiveOrder]:
        return [o for o in self.orders.values() if o.open]

    # -- the only places events are emitted -----------------------------------------------------------------

    def accept(self, live: LiveOrder, txid: str, ts_ns: int | None = None) -> None:
        if live.txid is None:
            live.txid = txid
            self._by_txid[txid] = live
        if not live.accepted and live.open:
            live.accepted = True
            self._emit(OrderAccepted(live.client_id, VenueOrderId(txid), ts_ns or self._clock_ns()))

    def reject(self, live: LiveOrder, reason: str) -> None:
        if live.open and not live.accepted:
            live.open = False
            self._emit(OrderRejected(live.client_id, reason, self._clock_ns()))

    def fill(self, live: LiveOrder, event: OrderFilled) -> None:
        fill = event.fill
        trade_id = str(fill.trade_id)
        if trade_id in self.fill_ids:
            return
        self.fill_ids.add(trade_id)
        if live.filled + fill.qty > live.qty:
            self.notes.append(f"fill {trade_id} would overfill {live.client_id}; not applied")
            log.error("kraken: fill %s would overfill %s", trade_id, live.client_id)
            return
        live.filled += fill.qty
        if live.filled >= live.qty:
            live.open = False
        self._emit(event)

    def close(self, live: LiveOrder, event: OrderCanceled | OrderExpired) -> None:
        if live.open:
            live.open = False
            self._emit(event)

    # -- Kraken's reports -----------------------------------------------------------------------------------

    def on_executions(self, msg: ExecutionsMsg) -> list[LiveOrder]:
        """Apply an executions message; returns the orders to settle over REST."""
        settle: list[LiveOrder] = []
        last = self._sequence
        if msg.type == "update" and msg.sequence is not None and last is not None and msg.sequence != last + 1:
            log.warning("kraken executions: sequence gap (%s after %s); settling over REST", msg.sequence, last)
            settle.extend(self.open_orders())
        self._sequence = msg.sequence
        listed: set[ClientOrderId] = set()
        for report in msg.reports:
            live = self.by_ids(report.order_id, report.cl_ord_id)
            if live is None:
                if msg.type == "update":
                    self.unknown_reports += 1
                    log.warning("kraken executions: report for unknown order %s", report.order_id)
                continue
            if report.exec_type != "trade":
                listed.add(live.client_id)
            if self.apply_report(live, report):
                settle.append(live)
        if msg.type == "snapshot":
            # Orders we think open that Kraken no longer lists closed while we were not connected.
            settle.extend(o for o in self.open_orders() if o.txid and o.client_id not in listed)
        return settle

    def apply_report(self, live: LiveOrder, report: ExecutionReport) -> bool:
        """Apply one report; True when the order needs settling over REST (filled, but fills are missing)."""
        now = self._clock_ns()
        ts = report.ts_ns or now
        kind = report.exec_type
        status = report.order_status
        self.accept(live, report.order_id, ts)
        if kind == "trade":
            instrument = self._index.find(report.symbol) or self._instruments[live.pair]
            fill = fill_from_report(report, live.client_id, live.side, live.strategy, instrument, now)
            if fill is not None:
                self.fill(live, OrderFilled(fill))
        elif kind == "canceled" or (kind is None and status == "canceled"):
            self.close(live, OrderCanceled(live.client_id, ts, report.reason or "canceled"))
        elif kind == "expired" or (kind is None and status == "expired"):
            self.close(live, OrderExpired(live.client_id, ts))
        elif kind == "filled" or status == "filled":
            return live.open and live.filled < live.qty
        return False

    def apply_venue(self, live: LiveOrder, order: KrakenOrder, trades: list[KrakenTrade]) -> None:
        """Bring ``live`` up to date from REST records: its fills first, then how it ended."""
        self.accept(live, order.txid, order.opentm_ns)
        instrument = self._instruments[live.pair]
        for trade in sorted(trades, key=lambda t: t.time_ns):
            self.fill(live, OrderFilled(fill_from_trade(trade, live.client_id, live.strategy, instrument)))
        closed_at = order.closetm_ns or self._clock_ns()
        if order.status == "expired":
            self.close(live, OrderExpired(live.client_id, closed_at))
        elif order.status in ("canceled", "closed") and live.filled < live.qty:
            self.close(live, OrderCanceled(live.client_id, closed_at, order.reason or "canceled"))
