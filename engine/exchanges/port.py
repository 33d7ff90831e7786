"""The exchange port: the one interface every venue implements.

Strategies, risk, the order manager and the MCP server see only this. The simulated exchange (paper trading and
backtests) and Kraken are adapters behind it; nothing upstream branches on which one it is.

Execution outcomes (accepted, rejected, filled, canceled, expired) are not return values: a venue reports them as
:data:`~engine.domain.orders.OrderEvent` values through the handler given to :meth:`ExchangePort.bind`, in the order
they happened. A simulated venue may call the handler from inside ``submit_order`` or ``on_market``.

Errors (drawn here once)::

    ExchangeError
    ├── ExchangeUnavailable   transport down or venue in maintenance: retry later, order state unknown
    └── OrderRefused          the venue refused a request outright (not an order event): do not retry
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

from engine.domain.instrument import Instrument
from engine.domain.market_data import MarketEvent
from engine.domain.orders import (
    ClientOrderId,
    Fill,
    Order,
    OrderEvent,
    OrderSide,
    OrderStatus,
    OrderType,
    VenueOrderId,
)

__all__ = [
    "ERR_EXPIRY_NOT_FUTURE",
    "ERR_EXPIRY_NOT_LIMIT",
    "ExchangeError",
    "ExchangeHealth",
    "ExchangePort",
    "ExchangeUnavailable",
    "ExecutionHandler",
    "OrderRefused",
    "OrderRequest",
    "Reconciliation",
    "Reconciling",
    "Restorable",
    "VenueOrder",
    "expiry_error",
]


class ExchangeError(Exception):
    """Base of errors raised by exchange adapters."""


class ExchangeUnavailable(ExchangeError):
    """The venue cannot be reached or is not accepting requests; the outcome of the request is unknown."""


class OrderRefused(ExchangeError):
    """The venue refused the request (``str()`` is the venue's error text)."""


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What the order manager asks a venue to do. Prices and quantities are already at the pair's precision."""

    client_id: ClientOrderId
    pair: str
    side: OrderSide
    order_type: OrderType
    qty: Decimal
    limit_price: Decimal | None
    ts_ns: int
    strategy: str = ""
    post_only: bool = False
    expires_ns: int | None = None
    reprice_of: str | None = None
    """The expired entry this order sends again (a strategy's reprice); the venue ignores it."""
    """Good-till-date: a limit order still open at this time (UTC ns, the venue's clock) expires. None: never."""


# Kraken documents a time-in-force for every order type but no expiring market order (a market order never
# rests); the venues refuse one here, with these reasons, rather than send something whose meaning is undocumented.
ERR_EXPIRY_NOT_LIMIT = "EGeneral:Invalid arguments: only a limit order can have an expiry (expires_ns)"
ERR_EXPIRY_NOT_FUTURE = "EGeneral:Invalid arguments: the order's expiry (expires_ns) is not after the venue's now"


def expiry_error(request: OrderRequest, now_ns: int) -> str | None:
    """Why ``request``'s expiry cannot be accepted at ``now_ns`` (the venue's clock), or None when it can."""
    expires = request.expires_ns
    if expires is None:
        return None
    if request.order_type is not OrderType.LIMIT:
        return ERR_EXPIRY_NOT_LIMIT
    if expires <= now_ns:
        return ERR_EXPIRY_NOT_FUTURE
    return None


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """An order as the venue reports it (for reconciliation)."""

    client_id: ClientOrderId | None
    venue_order_id: VenueOrderId
    pair: str
    side: OrderSide
    order_type: OrderType
    qty: Decimal
    filled_qty: Decimal
    limit_price: Decimal | None
    status: OrderStatus


@dataclass(frozen=True, slots=True)
class ExchangeHealth:
    """What diagnostics need to know about a venue connection."""

    venue: str
    connected: bool
    last_message_ts_ns: int | None
    detail: str = ""


ExecutionHandler = Callable[[OrderEvent], None]


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """What a venue says happened while the engine was not looking, for the engine to apply at start-up.

    ``adopt``: venue orders the engine has no record of (built with their current status and no fills yet);
    ``events``: what happened to known and adopted orders (fills, cancels, expiries), in time order;
    ``balances``: the venue's totals, which the engine's books are corrected to; ``notes``: human-readable
    findings, each written to the event log.
    """

    adopt: tuple[Order, ...] = ()
    events: tuple[OrderEvent, ...] = ()
    balances: Mapping[str, Decimal] | None = None
    notes: tuple[str, ...] = ()


@runtime_checkable
class Reconciling(Protocol):
    """A venue that can reconcile the engine's open orders and fills with its own records."""

    async def reconcile(self, local_orders: list[Order], known_trade_ids: set[str]) -> Reconciliation:
        """Compare and report; applies nothing itself."""
        ...


@runtime_checkable
class Restorable(Protocol):
    """A venue that lives in the engine's process (the simulated one): its open orders die with the process and
    are handed back to it at a restart, with the last market data known before the restart point."""

    def restore(
        self, balances: Mapping[str, Decimal], open_orders: Iterable[Order], *, latest: Iterable[MarketEvent] = ()
    ) -> list[OrderEvent]:
        """Take the account back; returns the events the engine must apply (accepted, canceled with a reason,
        expired when the market data had passed an order's expiry already)."""
        ...

    def seed_fee_volume(self, fills: Iterable[Fill]) -> None:
        """Count the fills made before the restart toward the account's 30-day fee volume (oldest first)."""
        ...


@runtime_checkable
class ExchangePort(Protocol):
    """A venue: where orders go and where their outcomes come from."""

    @property
    def name(self) -> str:
        """Short venue name: ``paper`` or ``kraken``."""
        ...

    @property
    def is_live(self) -> bool:
        """True when orders spend real money."""
        ...

    def bind(self, handler: ExecutionHandler) -> None:
        """Register the one handler that receives every order event."""
        ...

    def instruments(self) -> Mapping[str, Instrument]:
        """The venue's instruments, keyed by pair name."""
        ...

    async def start(self) -> None:
        """Connect (a no-op for the simulated venue)."""
        ...

    async def stop(self) -> None:
        """Disconnect and release resources."""
        ...

    def on_market(self, event: MarketEvent) -> None:
        """See market data before strategies do (the simulated venue matches resting orders here)."""
        ...

    async def submit_order(self, request: OrderRequest) -> None:
        """Send a new order. The outcome arrives as events.

        Raises:
            ExchangeUnavailable: the venue could not be reached; the order's fate is unknown.
        """
        ...

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        """Ask to cancel one order. The outcome arrives as an event.

        Raises:
            OrderRefused: the venue does not know the order or it can no longer be canceled.
            ExchangeUnavailable: the venue could not be reached.
        """
        ...

    async def cancel_all(self) -> int:
        """Cancel every open order; returns how many the venue canceled."""
        ...

    async def balances(self) -> dict[str, Decimal]:
        """Total balance per asset as the venue sees it."""
        ...

    async def open_orders(self) -> list[VenueOrder]:
        """The venue's open orders."""
        ...

    def health(self) -> ExchangeHealth:
        """The connection's current health."""
        ...
