"""Orders as state machines.

An :class:`Order` changes only through :meth:`Order.apply`, which checks the event against the explicit
transition table ``ORDER_TRANSITIONS``. An event that the table does not allow raises
:class:`IllegalTransition`; a fill whose trade id was already applied raises :class:`DuplicateFill`. Nothing is
ever silently ignored.

    pending_new ──accepted──▶ new ──fill──▶ partially_filled ──fill──▶ filled
        │  └──fill──▶ partially_filled / filled        │
        ├──rejected──▶ rejected                        ├──canceled──▶ canceled
        └──canceled──▶ canceled                        └──expired───▶ expired
"""

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import NewType

from engine.domain.money import ZERO

__all__ = [
    "ORDER_TRANSITIONS",
    "ClientOrderId",
    "DuplicateFill",
    "Fill",
    "IllegalTransition",
    "Order",
    "OrderAccepted",
    "OrderCanceled",
    "OrderError",
    "OrderEvent",
    "OrderExpired",
    "OrderFilled",
    "OrderRejected",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "TradeId",
    "VenueOrderId",
]

ClientOrderId = NewType("ClientOrderId", str)
VenueOrderId = NewType("VenueOrderId", str)
TradeId = NewType("TradeId", str)


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is OrderSide.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in _OPEN


_OPEN = frozenset({OrderStatus.PENDING_NEW, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})


class OrderError(Exception):
    """Base of the order state machine's errors: a bug or a venue sending nonsense, never to be ignored."""


class IllegalTransition(OrderError):
    """The event is not allowed from the order's current status."""


class DuplicateFill(OrderError):
    """A fill with this trade id was already applied."""


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of (part of) an order. ``fee`` is in ``fee_asset`` (the quote asset on Kraken spot)."""

    trade_id: TradeId
    client_id: ClientOrderId
    pair: str
    side: OrderSide
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    ts_ns: int
    liquidity: str = "taker"
    strategy: str = ""
    venue_order_id: VenueOrderId | None = None

    @property
    def cost(self) -> Decimal:
        return self.qty * self.price


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    client_id: ClientOrderId
    venue_order_id: VenueOrderId
    ts_ns: int


@dataclass(frozen=True, slots=True)
class OrderRejected:
    client_id: ClientOrderId
    reason: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class OrderFilled:
    fill: Fill

    @property
    def client_id(self) -> ClientOrderId:
        return self.fill.client_id

    @property
    def ts_ns(self) -> int:
        return self.fill.ts_ns


@dataclass(frozen=True, slots=True)
class OrderCanceled:
    client_id: ClientOrderId
    ts_ns: int
    reason: str = "canceled"


@dataclass(frozen=True, slots=True)
class OrderExpired:
    client_id: ClientOrderId
    ts_ns: int


OrderEvent = OrderAccepted | OrderRejected | OrderFilled | OrderCanceled | OrderExpired

_S = OrderStatus
# (status, event type) -> the statuses the event may lead to. A fill goes to FILLED when nothing remains.
ORDER_TRANSITIONS: dict[tuple[OrderStatus, type], frozenset[OrderStatus]] = {
    (_S.PENDING_NEW, OrderAccepted): frozenset({_S.NEW}),
    (_S.PENDING_NEW, OrderRejected): frozenset({_S.REJECTED}),
    (_S.PENDING_NEW, OrderFilled): frozenset({_S.PARTIALLY_FILLED, _S.FILLED}),
    (_S.PENDING_NEW, OrderCanceled): frozenset({_S.CANCELED}),
    (_S.PENDING_NEW, OrderExpired): frozenset({_S.EXPIRED}),
    (_S.NEW, OrderFilled): frozenset({_S.PARTIALLY_FILLED, _S.FILLED}),
    (_S.NEW, OrderCanceled): frozenset({_S.CANCELED}),
    (_S.NEW, OrderExpired): frozenset({_S.EXPIRED}),
    (_S.PARTIALLY_FILLED, OrderFilled): frozenset({_S.PARTIALLY_FILLED, _S.FILLED}),
    (_S.PARTIALLY_FILLED, OrderCanceled): frozenset({_S.CANCELED}),
    (_S.PARTIALLY_FILLED, OrderExpired): frozenset({_S.EXPIRED}),
}


@dataclass(slots=True)
class Order:
    """An order's intent and its life so far. Change it only with :meth:`apply`."""

    client_id: ClientOrderId
    pair: str
    side: OrderSide
    order_type: OrderType
    qty: Decimal
    limit_price: Decimal | None
    created_ts_ns: int
    strategy: str = ""
    status: OrderStatus = OrderStatus.PENDING_NEW
    venue_order_id: VenueOrderId | None = None
    filled_qty: Decimal = ZERO
    filled_cost: Decimal = ZERO
    fees: Decimal = ZERO
    reason: str = ""
    updated_ts_ns: int = 0
    trade_ids: set[TradeId] = field(default_factory=set)
    expires_ns: int | None = None
    """Good-till-date: when the venue expires what is left of it (UTC ns); None: it rests until canceled."""
    reprice_of: str | None = None
    """A strategy's limit entry sent again after an earlier one expired: that one's client id (the chain a restart
    follows to know how many reprices are left)."""

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def avg_price(self) -> Decimal | None:
        return self.filled_cost / self.filled_qty if self.filled_qty else None

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    def apply(self, event: OrderEvent) -> None:
        """Move the order along the transition table.

        Raises:
            IllegalTransition: the event is not allowed now, belongs to another order, or overfills it.
            DuplicateFill: a fill with the same trade id was applied before.
        """
        if event.client_id != self.client_id:
            raise IllegalTransition(f"event for {event.client_id} applied to order {self.client_id}")
        allowed = ORDER_TRANSITIONS.get((self.status, type(event)))
        if allowed is None:
            raise IllegalTransition(f"order {self.client_id}: {type(event).__name__} not allowed when {self.status}")
        if isinstance(event, OrderFilled):
            self._apply_fill(event.fill)
            target = OrderStatus.FILLED if self.remaining == 0 else OrderStatus.PARTIALLY_FILLED
        elif isinstance(event, OrderAccepted):
            self.venue_order_id = event.venue_order_id
            target = OrderStatus.NEW
        elif isinstance(event, OrderRejected):
            self.reason = event.reason
            target = OrderStatus.REJECTED
        elif isinstance(event, OrderCanceled):
            self.reason = event.reason
            target = OrderStatus.CANCELED
        else:
            target = OrderStatus.EXPIRED
        assert target in allowed
        self.status = target
        self.updated_ts_ns = event.ts_ns

    def _apply_fill(self, fill: Fill) -> None:
        if fill.trade_id in self.trade_ids:
            raise DuplicateFill(f"order {self.client_id}: trade {fill.trade_id} already applied")
        if fill.qty <= 0:
            raise IllegalTransition(f"order {self.client_id}: fill quantity {fill.qty} must be positive")
        if fill.side is not self.side or fill.pair != self.pair:
            raise IllegalTransition(f"order {self.client_id}: fill {fill.trade_id} is for another side or pair")
        if fill.qty > self.remaining:
            raise IllegalTransition(f"order {self.client_id}: fill {fill.qty} exceeds remaining {self.remaining}")
        self.trade_ids.add(fill.trade_id)
        self.filled_qty += fill.qty
        self.filled_cost += fill.qty * fill.price
        self.fees += fill.fee
        if self.venue_order_id is None and fill.venue_order_id is not None:
            self.venue_order_id = fill.venue_order_id
