"""The simulated venue's matching rules: which market event fills which order, at what price and how much.

Pure functions over :class:`SimOrder` values; balances, fees and events are the exchange's business.

Rules (every choice here is the simulated venue's, not Kraken's):

* **Book data** (:class:`BookSnapshot`, or a :class:`Ticker` read as a one-level book) is walked level by
  level as a taker: market orders take what the book shows (a market buy no further than its protection
  price), limit orders take levels at or better than their limit on arrival. What the book cannot fill waits
  for the next event. A resting order is crossed by levels strictly better than its limit and fills at its
  limit (maker) for the quantity those levels show.
* **Candles**: an order submitted after a candle's close reaches the market at the next candle's open. A
  market order fills there in full, at the open adjusted by the slippage model. A limit order whose limit the
  open is strictly through takes at that adjusted open (never worse than its limit); otherwise it rests. A
  resting order fills when the candle trades strictly through it (buy: low < limit; sell: high > limit).
  Touching does not fill: at the touch the order may still be behind others in the queue. It then fills at
  its limit as maker, for at most ``participation × volume`` of the candle shared by all orders of the pair,
  so a thin candle fills partially and the rest keeps resting.
* **Trade ticks**: as candles, with the trade's price in place of the open and the trade's quantity in place
  of the candle's volume.
* **Expiry** (good-till-date, ``OrderRequest.expires_ns``): the venue's clock is the pair's market data. A
  candle is the market over ``[open, close)``. One that *opens* at or after an order's expiry lies wholly after
  the order's life: the order expires on it and never trades on it. One that opens before the expiry may fill
  the order by the rules above (a candle does not say when within it a price was reached, and the order was
  live for part of it); if its *close* is at or past the expiry, what is left then expires on that same
  candle, after its fills. So with the expiry exactly on a boundary (one candle's close, the next one's open)
  the candle ending there may fill the order and no later one can. A trade, book or ticker stamped at or after
  the expiry expires the order before it can trade. The expiry is dated when the venue learns of it: the
  candle's close, or the event's own time (never before a fill of the same event).
"""

from dataclasses import dataclass, field
from decimal import Decimal

from engine.domain.instrument import Instrument
from engine.domain.market_data import NS_PER_SECOND, Candle, MarketEvent, TradeTick, event_time_ns
from engine.domain.money import ZERO
from engine.domain.orders import OrderSide, OrderType, VenueOrderId
from engine.exchanges.paper.book import MutableBook
from engine.exchanges.paper.fees import FeeMeter
from engine.exchanges.paper.slippage import SlippageModel
from engine.exchanges.port import OrderRequest

__all__ = [
    "REASON_PRICE_PROTECTION",
    "Execution",
    "MatchContext",
    "Outcome",
    "SimOrder",
    "match",
]

REASON_PRICE_PROTECTION = "market price protection"
"""Why a market buy's remainder is canceled when the price runs past the level its funds were held for."""


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill the rules decided on: ``qty`` at ``price``, as maker or taker, at ``ts_ns``."""

    price: Decimal
    qty: Decimal
    maker: bool
    ts_ns: int


@dataclass(slots=True)
class Outcome:
    """What one event did to one order: fills, then possibly the cancellation of the rest."""

    executions: list[Execution] = field(default_factory=list)
    cancel_reason: str | None = None


@dataclass(slots=True, eq=False)
class SimOrder:
    """An open order as the simulated venue keeps it.

    Attributes:
        request: the order as submitted (or rebuilt on restore).
        hold_asset: the asset held for it (quote for buys, base for sells).
        hold_var: the held amount released in proportion to the quantity filled.
        hold_fixed: a fee-rounding reserve released when the order closes.
        protection: for market buys, the highest price the held funds pay for.
        arrived: whether the order has met the market once (limit orders only take liquidity on arrival).
        filled_qty: base quantity filled so far; fill_count: fills so far (numbers the trade ids).
        not_before_ns: the time of the latest market data the venue had when the order arrived (for an order
            taken back after a restart, its creation time): data up to then is history to it (see too_early).
        rereference: a market buy taken back after a restart: until it meets the market, its hold follows the
            latest price known at or before its creation (as it was when the order was first accepted).
        unheld: taken back after a restart before any price was known: nothing is held for it yet.
    """

    request: OrderRequest
    instrument: Instrument
    venue_order_id: VenueOrderId
    hold_asset: str
    hold_var: Decimal
    hold_fixed: Decimal
    protection: Decimal | None = None
    arrived: bool = False
    filled_qty: Decimal = ZERO
    fill_count: int = 0
    fees: FeeMeter = field(default_factory=FeeMeter)
    not_before_ns: int = 0
    rereference: bool = False
    unheld: bool = False
    traded_until_ns: int = -1
    """Taken back after a restart partly filled: the time of its latest fill. A candle that had closed by then (or
    a trade printed by then) already traded with it before the restart and must not fill it again."""

    @property
    def remaining(self) -> Decimal:
        return self.request.qty - self.filled_qty

    def too_early(self, event: MarketEvent) -> bool:
        """Whether ``event`` is market data the order was made after, which it must never trade on.

        A candle that had closed by ``not_before_ns`` (the one that decided the order, replayed after a restart)
        and a trade printed before it are history to the order. Book and ticker data are the state of the
        market when they arrive, so they are never too early.
        """
        if type(event) is Candle:
            close_ns = event.ts_ns + event.interval_s * NS_PER_SECOND
            # (A candle fills a resting order at its close: a fill dated at or after a candle's close was made
            # by that candle or a later one.)
            return self.not_before_ns >= close_ns or close_ns <= self.traded_until_ns
        if isinstance(event, TradeTick):
            return self.not_before_ns > event.ts_ns or event.ts_ns <= self.traded_until_ns
        return False

    def expired_before(self, event: MarketEvent) -> bool:
        """Whether ``event`` starts at or after the order's expiry (it expires without trading on it)."""
        expires = self.request.expires_ns
        return expires is not None and event.ts_ns >= expires

    def expires_after(self, event: MarketEvent) -> bool:
        """Whether the order's expiry has come by the end of ``event`` (what is left expires after its fills)."""
        expires = self.request.expires_ns
        return expires is not None and event_time_ns(event) >= expires


class MatchContext:
    """One market event as the orders of its pair see it, with what is left to fill against.

    Attributes:
        event: the market event.
        ts_ns: the timestamp of fills against the book (the event's, or the submit time).
        book: the consumable book for book data, else None.
    """

    __slots__ = ("_budget", "_capacity", "book", "event", "ts_ns")

    def __init__(
        self, event: MarketEvent, ts_ns: int, book: MutableBook | None = None, capacity: Decimal = ZERO
    ) -> None:
        self.event = event
        self.ts_ns = ts_ns
        self.book = book
        self._capacity = capacity
        self._budget: Decimal | None = None

    def allot(self, want: Decimal, instrument: Instrument) -> Decimal:
        """Take up to ``want`` from what resting orders may still fill on this candle or trade.

        ``capacity`` (participation × volume) is rounded down to the lot only when first needed: most candles
        cross no order, and this is the backtest's hot path.
        """
        budget = self._budget
        if budget is None:
            budget = instrument.round_qty_down(self._capacity)
        granted = min(want, budget)
        self._budget = budget - granted
        return granted


def _through(side: OrderSide, price: Decimal, limit: Decimal) -> bool:
    """Whether the market trading at ``price`` is strictly through a ``side`` order's ``limit``."""
    return price < limit if side is OrderSide.BUY else price > limit


def _cap(side: OrderSide, price: Decimal, limit: Decimal) -> Decimal:
    """``price``, but never worse than ``limit`` for the trader."""
    return min(price, limit) if side is OrderSide.BUY else max(price, limit)


def match(order: SimOrder, ctx: MatchContext, slippage: SlippageModel) -> Outcome | None:
    """Decide what ``ctx`` does to ``order`` (None: nothing); consumes the book or budget in ``ctx`` as it fills."""
    if ctx.book is not None:
        return _on_book(order, ctx.book, ctx.ts_ns)
    event = ctx.event
    if isinstance(event, Candle):
        return _on_price(order, ctx, slippage, event.open, event.low, event.high, event.ts_ns, event.close_ns)
    if isinstance(event, TradeTick):
        price = event.price
        return _on_price(order, ctx, slippage, price, price, price, event.ts_ns, event.ts_ns)
    return None


def _on_book(order: SimOrder, book: MutableBook, ts_ns: int) -> Outcome:
    side = order.request.side
    left = order.remaining
    outcome = Outcome()
    limit = order.request.limit_price
    if order.request.order_type is OrderType.MARKET or limit is None:
        for price, qty in book.take(side, left, order.protection, inclusive=True):
            outcome.executions.append(Execution(price, qty, False, ts_ns))
            left -= qty
        if left > 0 and order.protection is not None and book.opposite(side):
            # Liquidity is there but beyond what the held funds pay for.
            outcome.cancel_reason = REASON_PRICE_PROTECTION
        return outcome
    if not order.arrived:
        order.arrived = True
        if not order.request.post_only:
            for price, qty in book.take(side, left, limit, inclusive=True):
                outcome.executions.append(Execution(price, qty, False, ts_ns))
                left -= qty
    crossed = sum((qty for _, qty in book.take(side, left, limit, inclusive=False)), ZERO)
    if crossed > 0:
        outcome.executions.append(Execution(limit, crossed, True, ts_ns))
    return outcome


def _on_price(
    order: SimOrder,
    ctx: MatchContext,
    slippage: SlippageModel,
    first: Decimal,
    low: Decimal,
    high: Decimal,
    first_ts: int,
    last_ts: int,
) -> Outcome | None:
    """Candles and trades: ``first`` is where a newly arrived order meets the market, low/high its range."""
    request = order.request
    side = request.side
    left = order.remaining
    limit = request.limit_price
    if request.order_type is OrderType.MARKET or limit is None:
        price = slippage.adjust(side, first, order.instrument)
        if order.protection is not None and price > order.protection:
            return Outcome(cancel_reason=REASON_PRICE_PROTECTION)
        return Outcome([Execution(price, left, False, first_ts)])
    if not order.arrived:
        order.arrived = True
        if not request.post_only and _through(side, first, limit):
            price = _cap(side, slippage.adjust(side, first, order.instrument), limit)
            return Outcome([Execution(price, left, False, first_ts)])
    if not (low < limit if side is OrderSide.BUY else high > limit):
        return None
    qty = ctx.allot(left, order.instrument)
    if qty <= 0:
        return None
    return Outcome([Execution(limit, qty, True, last_ts)])
