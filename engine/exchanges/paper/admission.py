"""What the simulated venue accepts, and how much it holds for what it accepts.

Refusals mirror Kraken: the checks run in Kraken's order of concern (market status, arguments, precision and
minimums, post-only, funds) and each returns Kraken's error string. An expiry (``expires_ns``) is an argument:
refused on a market order and when not after the venue's now (:func:`~engine.exchanges.port.expiry_error`, the
rule the Kraken adapter applies too). Funds held on acceptance:

* buy limit: ``qty × limit × (1 + taker rate)`` of quote (the dearer taker rate, as a limit may take);
* buy market: ``qty × reference × (1 + MARKET_BUY_MARGIN) × (1 + taker rate)``. The matching rules cancel what
  is left of a market buy once the price runs beyond ``reference × (1 + margin)``, so the hold always pays;
* sell: ``qty`` of base;
* buys also reserve ``FEE_RESERVE_QUANTA`` units of the pair's cost precision for fee rounding (see ``fees``).
"""

from dataclasses import dataclass
from decimal import Decimal

from engine.domain.balances import ERR_INSUFFICIENT_FUNDS
from engine.domain.instrument import ERR_INVALID_PRICE, Instrument
from engine.domain.market_data import BookSnapshot, Candle, MarketEvent, Ticker, TradeTick
from engine.domain.money import ZERO, quantum
from engine.domain.orders import Order, OrderSide, OrderType
from engine.exchanges.paper.book import MutableBook
from engine.exchanges.port import OrderRequest, expiry_error

__all__ = [
    "ERR_CANCEL_ONLY",
    "ERR_INVALID_ARGUMENTS",
    "ERR_POST_ONLY",
    "ERR_POST_ONLY_MODE",
    "ERR_UNKNOWN_ORDER",
    "ERR_UNKNOWN_PAIR",
    "FEE_RESERVE_QUANTA",
    "MARKET_BUY_MARGIN",
    "Hold",
    "fills_so_far",
    "hold_for",
    "plan_order",
    "reference_price",
]

ERR_UNKNOWN_PAIR = "EQuery:Unknown asset pair"
ERR_UNKNOWN_ORDER = "EOrder:Unknown order"
# Kraken documents no error string for a post-only order that would take; this one is our choice.
ERR_POST_ONLY = "EOrder:Post only order"
ERR_CANCEL_ONLY = "EService:Market in cancel_only mode"
ERR_POST_ONLY_MODE = "EService:Market in post_only mode"
ERR_LIMIT_ONLY_MODE = "EService:Market in limit_only mode"
# A market order with the post-only flag: Kraken accepts ``post`` on limit orders only.
ERR_INVALID_ARGUMENTS = "EGeneral:Invalid arguments"

MARKET_BUY_MARGIN = Decimal("0.05")
"""How far above the reference price a market buy's held funds reach (5 %)."""
FEE_RESERVE_QUANTA = 4
"""Cost quanta a buy holds beyond its price, against fee rounding."""

_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Hold:
    """Funds held for an order: ``proportional`` is released as it fills, ``reserve`` when it closes.

    ``protection`` is the highest price a market buy's hold pays for (None otherwise).
    """

    asset: str
    proportional: Decimal
    reserve: Decimal
    protection: Decimal | None = None


def reference_price(latest: MarketEvent | None, side: OrderSide) -> Decimal | None:
    """The last known price a ``side`` taker would face: book or ticker side, last trade, or candle close."""
    if isinstance(latest, Candle):
        return latest.close
    if isinstance(latest, TradeTick):
        return latest.price
    if isinstance(latest, Ticker):
        quoted = latest.ask if side is OrderSide.BUY else latest.bid
        return quoted if quoted > 0 else latest.last
    if isinstance(latest, BookSnapshot):
        if side is OrderSide.BUY:
            return latest.best_ask or latest.best_bid
        return latest.best_bid or latest.best_ask
    return None


def hold_for(
    instrument: Instrument,
    side: OrderSide,
    qty: Decimal,
    price: Decimal,
    taker_rate: Decimal,
    *,
    market: bool,
) -> Hold:
    """The hold for ``qty`` at ``price`` (the limit, or for a market order the reference price)."""
    if side is OrderSide.SELL:
        return Hold(instrument.base, qty, ZERO)
    protection = price * (_ONE + MARKET_BUY_MARGIN) if market else None
    worst = protection or price
    reserve = FEE_RESERVE_QUANTA * quantum(instrument.cost_decimals)
    return Hold(instrument.quote, qty * worst * (_ONE + taker_rate), reserve, protection)


def _would_take(book: MutableBook | None, reference: Decimal | None, side: OrderSide, limit: Decimal) -> bool:
    """Whether a limit order would match on arrival (the post-only check)."""
    buy = side is OrderSide.BUY
    if book is not None:
        best = book.best(side)
        return best is not None and (limit >= best if buy else limit <= best)
    # Without a book only the last price is known: a buy above it (a sell below it) would take.
    return reference is not None and (limit > reference if buy else limit < reference)


def plan_order(
    request: OrderRequest,
    instrument: Instrument,
    *,
    latest: MarketEvent | None,
    book: MutableBook | None,
    taker_rate: Decimal,
    available: Decimal,
    now_ns: int,
) -> str | Hold:
    """Kraken's error string for ``request``, or the hold to take when accepting it.

    Args:
        request: the order.
        instrument: its pair.
        latest: the pair's latest market event (None before any).
        book: the pair's consumable book when the latest event is book data.
        taker_rate: the pair's taker fee rate.
        available: the available balance of the asset the order would hold (quote for buys, base for sells).
        now_ns: the venue's clock (an expiry must be after it).
    """
    status = instrument.status
    is_limit = request.order_type is OrderType.LIMIT
    if status != "online":
        # Kraken's AssetPairs status: a market not online takes only what its mode allows, and says so.
        if status == "cancel_only":
            return ERR_CANCEL_ONLY
        if status == "post_only" and not (is_limit and request.post_only):
            return ERR_POST_ONLY_MODE
        if status == "limit_only" and not is_limit:
            return ERR_LIMIT_ONLY_MODE
        if status not in ("post_only", "limit_only"):
            return f"EService:Market in {status} mode"
    if request.post_only and not is_limit:
        return ERR_INVALID_ARGUMENTS
    expiry = expiry_error(request, now_ns)
    if expiry is not None:
        return expiry
    side = request.side
    reference = reference_price(latest, side)
    # A market order's reference may be off the tick (a foreign feed): it serves the cost check only.
    price = request.limit_price if is_limit else (None if reference is None else instrument.round_price(reference))
    error = instrument.check_order(request.qty, price)
    if error is not None:
        return error
    if price is None:
        # A market order before any price is known: nothing to check the cost or hold funds against.
        return ERR_INVALID_PRICE
    if request.post_only and _would_take(book, reference, side, price):
        return ERR_POST_ONLY
    hold = hold_for(instrument, side, request.qty, price, taker_rate, market=not is_limit)
    if available < hold.proportional + hold.reserve:
        return ERR_INSUFFICIENT_FUNDS
    return hold


def fills_so_far(order: Order) -> int:
    """How many fills ``order`` has had: its trade ids, or the highest ``<client id>-<n>`` among them."""
    count = len(order.trade_ids)
    prefix = f"{order.client_id}-"
    for trade_id in order.trade_ids:
        suffix = trade_id[len(prefix) :] if trade_id.startswith(prefix) else ""
        if suffix.isdigit():
            count = max(count, int(suffix))
    return count
