"""Reconciliation of the engine's orders with what Kraken reports (pure: records in, a report out).

Given the engine's orders and the trade ids it already booked, and Kraken's open orders, recent closed orders,
recent fills and balances, :func:`reconcile_orders` decides:

* Kraken orders the engine has no record of and that are still open are **adopted** (with their fills);
* for each engine order still open locally: ``OrderAccepted`` if the engine never heard back, every fill Kraken
  has that the engine has not booked (by trade id), then ``OrderCanceled`` / ``OrderExpired`` if Kraken closed
  it (a ``closed`` order with volume left is reported canceled);
* an order the engine sent (``pending_new``) that Kraken does not know never arrived: ``OrderRejected``;
* anything that does not add up becomes a note for the event log.

It also returns what the adapter needs to keep tracking: the orders still open after the events, with their
Kraken txids.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from engine.domain.orders import (
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    VenueOrderId,
)
from engine.exchanges.kraken.protocol.rest_account import KrakenOrder, KrakenTrade
from engine.exchanges.kraken.translate import InstrumentIndex, adopted_order, cl_ord_id_for, fill_from_trade
from engine.exchanges.port import Reconciliation

__all__ = ["NOT_FOUND_REASON", "Outcome", "StillOpen", "VenueRecords", "reconcile_orders"]

NOT_FOUND_REASON = "never reached Kraken (not found at reconciliation)"


@dataclass(frozen=True, slots=True)
class VenueRecords:
    """What Kraken said: open and closed orders keyed by txid, fills keyed by trade txid, total balances."""

    open: Mapping[str, KrakenOrder]
    closed: Mapping[str, KrakenOrder]
    trades: Mapping[str, KrakenTrade]
    balances: Mapping[str, Decimal] | None = None


@dataclass(frozen=True, slots=True)
class StillOpen:
    """An order that is open after the reconciliation's events are applied."""

    order: Order
    txid: str | None
    filled: Decimal


@dataclass(slots=True)
class Outcome:
    report: Reconciliation
    still_open: list[StillOpen] = field(default_factory=list)
    fill_ids: set[str] = field(default_factory=set)


def _monotonic(events: list[OrderEvent]) -> list[tuple[int, OrderEvent]]:
    """Stamp one order's events so that a global sort by time keeps their logical order."""
    out = []
    last = 0
    for event in events:
        last = max(last, event.ts_ns)
        out.append((last, event))
    return out


def _settle(
    order: Order,
    ko: KrakenOrder | None,
    trades: list[KrakenTrade],
    known: set[str],
    index: InstrumentIndex,
    notes: list[str],
) -> tuple[list[OrderEvent], Decimal, bool]:
    """Events for one locally open order; returns them, the filled quantity after them, and whether open."""
    cid = order.client_id
    filled = order.filled_qty
    events: list[OrderEvent] = []
    if ko is None:
        if order.status is OrderStatus.PENDING_NEW:
            return [OrderRejected(cid, NOT_FOUND_REASON, order.updated_ts_ns or order.created_ts_ns)], filled, False
        notes.append(f"order {cid} ({order.venue_order_id}) is open locally but Kraken does not report it")
        return [], filled, True
    if order.status is OrderStatus.PENDING_NEW:
        events.append(OrderAccepted(cid, VenueOrderId(ko.txid), ko.opentm_ns))
    instrument = index.find(ko.pair) or index.find(order.pair)
    for trade in sorted(trades, key=lambda t: t.time_ns):
        if trade.txid in known:
            continue
        if instrument is None:
            notes.append(f"trade {trade.txid} of {cid}: unknown pair {trade.pair}")
            continue
        if filled + trade.vol > order.qty:
            notes.append(f"trade {trade.txid} of {cid} would overfill it ({filled} + {trade.vol} > {order.qty})")
            continue
        events.append(OrderFilled(fill_from_trade(trade, cid, order.strategy, instrument)))
        filled += trade.vol
    if filled < ko.vol_exec:
        notes.append(f"order {cid}: Kraken reports {ko.vol_exec} executed, fills found for {filled}")
    closed_at = ko.closetm_ns or ko.opentm_ns
    if ko.status == "canceled" or (ko.status == "closed" and filled < order.qty):
        if filled < order.qty:
            events.append(OrderCanceled(cid, closed_at, ko.reason or "canceled"))
        return events, filled, False
    if ko.status == "expired":
        events.append(OrderExpired(cid, closed_at))
        return events, filled, False
    return events, filled, ko.status in ("open", "pending") and filled < order.qty


def reconcile_orders(
    local_orders: list[Order],
    known_trade_ids: set[str],
    venue: VenueRecords,
    index: InstrumentIndex,
) -> Outcome:
    """Compare the engine's orders with Kraken's records (see the module docstring)."""
    everything = {**venue.closed, **venue.open}
    by_cl: dict[str, KrakenOrder] = {}
    for ko in everything.values():
        if ko.cl_ord_id:
            by_cl[ko.cl_ord_id] = ko
    trades_of: dict[str, list[KrakenTrade]] = {}
    for trade in venue.trades.values():
        trades_of.setdefault(trade.ordertxid, []).append(trade)
    known = set(known_trade_ids)
    notes: list[str] = []
    stamped: list[tuple[int, OrderEvent]] = []
    outcome = Outcome(Reconciliation())
    matched: set[str] = set()
    local_ids = {o.client_id for o in local_orders}
    for order in local_orders:
        found = everything.get(order.venue_order_id or "") or by_cl.get(cl_ord_id_for(order.client_id))
        if found is not None:
            matched.add(found.txid)
        if not order.is_open:
            continue
        own_trades = trades_of.get(found.txid, []) if found else []
        events, filled, still_open = _settle(order, found, own_trades, known, index, notes)
        stamped.extend(_monotonic(events))
        if still_open:
            outcome.still_open.append(StillOpen(order, found.txid if found else order.venue_order_id, filled))
    adopt: list[Order] = []
    for ko in venue.open.values():
        if ko.txid in matched:
            continue
        order = adopted_order(ko, index.find(ko.pair))
        if order.client_id in local_ids:
            notes.append(f"Kraken order {ko.txid} reuses client id {order.client_id}; not adopted")
            continue
        adopt.append(order)
        matched.add(ko.txid)
        notes.append(f"adopted Kraken order {ko.txid} ({ko.descr_order or ko.side}) placed outside the engine")
        events, filled, still_open = _settle(order, ko, trades_of.get(ko.txid, []), known, index, notes)
        stamped.extend(_monotonic(events))
        if still_open:
            outcome.still_open.append(StillOpen(order, ko.txid, filled))
    for ko in venue.closed.values():
        if ko.txid not in matched and ko.cl_ord_id is not None:
            notes.append(f"Kraken order {ko.txid} (cl_ord_id {ko.cl_ord_id}) closed while unknown to the engine")
    for txid, trade in venue.trades.items():
        if trade.ordertxid not in matched and txid not in known:
            notes.append(f"Kraken fill {txid} of order {trade.ordertxid} matches no engine order")
    stamped.sort(key=lambda pair: pair[0])
    ordered = tuple(event for _, event in stamped)
    outcome.fill_ids = {str(e.fill.trade_id) for e in ordered if isinstance(e, OrderFilled)}
    outcome.report = Reconciliation(adopt=tuple(adopt), events=ordered, balances=venue.balances, notes=tuple(notes))
    return outcome
