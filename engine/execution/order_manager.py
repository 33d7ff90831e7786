"""The order manager: tracks every order, applies the venue's events, and books fills on the portfolio.

Sequence for a new order: the intent (with its client order id) is handed to the listener's ``order_intent`` and
awaited, so the runtime can make it durable, and only then sent to the venue. Venue events arrive through
:meth:`OrderManager.on_event` (synchronously, possibly while ``submit`` is still running): each is applied to its
order through the order's transition table; fills are booked on the portfolio. An event the table refuses (an
illegal transition, a duplicate trade id, an unknown order) is reported to the listener as an anomaly and changes
nothing: it is never silently ignored and never crashes the trading loop.
"""

from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from engine import faults
from engine.domain.balances import BalanceError
from engine.domain.orders import (
    ClientOrderId,
    Fill,
    Order,
    OrderError,
    OrderEvent,
    OrderFilled,
    OrderRejected,
)
from engine.domain.positions import Position
from engine.exchanges.port import ExchangePort, ExchangeUnavailable, OrderRequest
from engine.portfolio.performance import ClosedTrade
from engine.portfolio.portfolio import Portfolio

__all__ = ["REASON_STOPPED_BEFORE_SEND", "OrderListener", "OrderManager"]

REASON_STOPPED_BEFORE_SEND = "trading stopped before the order was sent"
# Closed orders kept in memory (for the facade's recent orders); older ones live only in the store, which keeps a
# long-running engine's memory, and the garbage collector's full passes, bounded.
KEEP_CLOSED = 1000


class OrderListener(Protocol):
    """What the runtime hears from the order manager (persistence, notifications, the event log)."""

    async def order_intent(self, order: Order) -> None: ...

    def order_changed(self, order: Order) -> None: ...

    def fill_booked(self, fill: Fill, position: Position, closed: ClosedTrade | None, order: Order) -> None:
        """A fill was booked; ``order`` is its order after the fill. The fill and the order's new state must be
        recorded together (a crash between the two would leave an order that looks unfilled, and fills it twice)."""
        ...

    def anomaly(self, kind: str, detail: str, payload: dict[str, object]) -> None: ...


class OrderManager:
    """Owns the engine's view of every order."""

    def __init__(
        self,
        exchange: ExchangePort,
        portfolio: Portfolio,
        listener: OrderListener,
        id_prefix: str,
        may_send: Callable[[], bool] = lambda: True,
        keep_closed: int = KEEP_CLOSED,
    ) -> None:
        self.exchange = exchange
        self.portfolio = portfolio
        self.listener = listener
        self.id_prefix = id_prefix
        self.may_send = may_send
        self.keep_closed = keep_closed
        self._closed: deque[ClientOrderId] = deque()
        self.orders: dict[ClientOrderId, Order] = {}
        self.open_ids: set[ClientOrderId] = set()
        self.sequence = 0
        self.rejections = 0
        exchange.bind(self.on_event)

    def restore(self, orders: Iterable[Order], sequence: int) -> None:
        for order in sorted(orders, key=lambda o: (o.updated_ts_ns, o.client_id)):
            self.orders[order.client_id] = order
            if order.is_open:
                self.open_ids.add(order.client_id)
            else:
                self._retire(order.client_id)
        self.sequence = max(self.sequence, sequence)

    def _retire(self, client_id: ClientOrderId) -> None:
        """Keep only the most recent closed orders in memory; the store keeps them all."""
        closed = self._closed
        closed.append(client_id)
        while len(closed) > self.keep_closed:
            self.orders.pop(closed.popleft(), None)

    def next_client_id(self) -> ClientOrderId:
        self.sequence += 1
        return ClientOrderId(f"{self.id_prefix}-{self.sequence:09d}")

    def open_orders(self) -> list[Order]:
        return [self.orders[cid] for cid in sorted(self.open_ids)]

    def has_open_order(self, strategy: str, pair: str) -> bool:
        return any((order := self.orders[cid]).strategy == strategy and order.pair == pair for cid in self.open_ids)

    async def submit(self, request: OrderRequest, *, force: bool = False) -> Order:
        """Record the intent, make it durable, then send it, unless trading stopped meanwhile.

        While the intent is being made durable, a pause or an emergency stop may land; ``may_send`` is asked
        again just before sending, and an order that may no longer go is rejected locally (``force`` is for the
        emergency stop's own flattening orders). A venue that cannot be reached leaves the order ``pending_new``
        with its fate unknown; startup reconciliation settles it.
        """
        order = Order(
            client_id=request.client_id,
            pair=request.pair,
            side=request.side,
            order_type=request.order_type,
            qty=request.qty,
            limit_price=request.limit_price,
            created_ts_ns=request.ts_ns,
            strategy=request.strategy,
            updated_ts_ns=request.ts_ns,
            expires_ns=request.expires_ns,
            reprice_of=request.reprice_of,
        )
        self.orders[order.client_id] = order
        self.open_ids.add(order.client_id)
        await self.listener.order_intent(order)
        if not force and not self.may_send():
            self.on_event(OrderRejected(order.client_id, REASON_STOPPED_BEFORE_SEND, request.ts_ns))
            return order
        try:
            await self.exchange.submit_order(request)
        except ExchangeUnavailable as exc:
            self.listener.anomaly("order_outcome_unknown", f"{order.client_id}: {exc}", {"client_id": order.client_id})
        faults.hit("venue")
        return order

    def reject_locally(self, order: Order, reason: str, ts_ns: int) -> None:
        """Reject an order that never left the engine (e.g. the venue refused it outright)."""
        self.on_event(OrderRejected(order.client_id, reason, ts_ns))

    def on_event(self, event: OrderEvent) -> None:
        """Apply one venue event (the exchange port's handler)."""
        order = self.orders.get(event.client_id)
        if order is None:
            self.listener.anomaly(
                "unknown_order_event",
                f"{type(event).__name__} for unknown order {event.client_id}",
                {"client_id": event.client_id, "event": type(event).__name__},
            )
            return
        try:
            order.apply(event)
        except OrderError as exc:
            self.listener.anomaly("order_event_refused", str(exc), {"client_id": order.client_id})
            return
        if isinstance(event, OrderRejected):
            self.rejections += 1
        if not order.is_open and order.client_id in self.open_ids:
            self.open_ids.discard(order.client_id)
            self._retire(order.client_id)
        if isinstance(event, OrderFilled):
            try:
                position, closed = self.portfolio.apply_fill(event.fill)
            except (OrderError, BalanceError) as exc:
                self.listener.anomaly("fill_not_booked", str(exc), {"trade_id": event.fill.trade_id})
            else:
                self.listener.fill_booked(event.fill, position, closed, order)
                return
        self.listener.order_changed(order)
