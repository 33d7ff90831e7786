"""Book strategies: an L2 book snapshot in, post-only limit orders at the touch out.

The trader hands each :class:`BookSnapshot` of a pair to :meth:`BookQuoting.on_book` when a strategy on that pair
trades on the book (:meth:`Strategy.uses_book`); strategies that do not cost nothing per book event (no
:class:`BookQuoting` is made when none does). For each such strategy:

* it is asked only while trading is on and it is enabled; its bids are dropped while a circuit breaker stopped it
  or it is out of a scanner-chosen universe (its offers still go: they only reduce the position);
* it sees its position, the remaining quantity of its open buys and sells on the pair, what one buy may spend
  (``order_quote_amount`` × weight, in the pair's quote asset: converted at the marks for a pair quoted in another
  asset than the account's, and no bid while that cannot be valued) and the pair's order minimum;
* each :class:`~engine.strategies.base.Quote` it answers becomes a post-only limit order: the price rounded to the
  tick away from the other side (a buy down, a sell up, so rounding never makes a quote cross), the quantity down
  to the lot, the expiry (good-till-date) ``ttl_ns`` after now on the engine's clock; then the usual pre-trade
  risk checks (:meth:`RiskEngine.assess`, with the exposure the trader computes for any order) decide, and the
  order manager sends what they accept, to the paper venue or Kraken alike;
* a quote risk refuses is recorded like any refused order (:meth:`Trader._refuse`: counted, journaled) and that
  side of that strategy is not asked again for the quote's time-to-live, so a book feed of several snapshots a
  second does not journal the same refusal several times a second.

A strategy that raises is counted and told to the breakers, as on candles; the snapshot is then skipped for it.
"""

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import TYPE_CHECKING

from engine.domain.instrument import Instrument
from engine.domain.market_data import BookSnapshot
from engine.domain.money import ZERO
from engine.domain.orders import OrderSide, OrderType
from engine.exchanges.port import OrderRequest
from engine.strategies.base import BookContext, Quote

if TYPE_CHECKING:
    from engine.runtime.trader import StrategySlot, Trader

__all__ = ["BookQuoting", "quote_price", "quote_qty"]

_ONE = Decimal(1)


def quote_price(quote: Quote, instrument: Instrument) -> Decimal:
    """The quote's price on the pair's tick, rounded away from the other side: a buy down, a sell up."""
    return instrument.round_price(quote.price, ROUND_DOWN if quote.side == "buy" else ROUND_UP)


def quote_qty(quote: Quote, instrument: Instrument) -> Decimal:
    """The quote's quantity rounded down to the pair's lot (never more than the strategy asked for)."""
    return instrument.round_qty_down(quote.qty)


class BookQuoting:
    """The book strategies of one trader, by pair, and how their quotes become orders."""

    __slots__ = ("_quiet_until", "by_pair", "trader")

    def __init__(self, trader: "Trader", slots: Sequence["StrategySlot"]) -> None:
        self.trader = trader
        self.by_pair: dict[str, list[StrategySlot]] = {}
        for slot in slots:
            if slot.strategy.uses_book():
                self.by_pair.setdefault(slot.pair, []).append(slot)
        # (strategy, side) -> engine time before which a refused side is not asked again.
        self._quiet_until: dict[tuple[str, str], int] = {}

    def on_book(self, book: BookSnapshot, trading: bool) -> list[OrderRequest]:
        """The orders the book strategies of ``book``'s pair post on it (none while trading is off)."""
        slots = self.by_pair.get(book.pair)
        if not slots or not trading:
            return []
        requests: list[OrderRequest] = []
        for slot in slots:
            if not slot.enabled:
                continue
            for quote in self._ask(slot, book):
                request = self._order(slot, quote)
                if request is not None:
                    requests.append(request)
        return requests

    def _ask(self, slot: "StrategySlot", book: BookSnapshot) -> tuple[Quote, ...]:
        trader = self.trader
        instrument = trader.instruments[slot.pair]
        buys = sells = ZERO
        orders = trader.oms.orders
        for cid in trader.oms.open_ids:
            order = orders[cid]
            if order.strategy == slot.name and order.pair == slot.pair:
                if order.side is OrderSide.BUY:
                    buys += order.remaining
                else:
                    sells += order.remaining
        budget = slot.order_quote_amount * slot.weight
        if instrument.quote != trader.portfolio.quote_currency:
            rate = trader.portfolio.quote_value(slot.pair, _ONE)
            budget = budget / rate if rate else ZERO  # no bid until the pair's quote asset can be valued
        ctx = BookContext(trader.portfolio.position_qty(slot.name, slot.pair), buys, sells, budget, instrument.ordermin)
        try:
            quotes = slot.strategy.on_book(book, ctx)
        except Exception as exc:  # a strategy's bug must not stop the engine: counted, as on candles
            slot.errors += 1
            slot.last_error = f"{type(exc).__name__}: {exc}"
            breakers = trader.breakers
            if breakers is not None:
                trader._breaker_tripped(breakers.on_error(slot.name, book.ts_ns))
            return ()
        if slot.breaker or slot.exits_only:
            quotes = tuple(q for q in quotes if q.side == "sell")
        return quotes

    def _order(self, slot: "StrategySlot", quote: Quote) -> OrderRequest | None:
        trader = self.trader
        now = trader.clock()
        quiet = (slot.name, quote.side)
        if now < self._quiet_until.get(quiet, now):
            return None
        instrument = trader.instruments[slot.pair]
        price = quote_price(quote, instrument)
        qty = quote_qty(quote, instrument)
        if qty <= 0 or price <= 0 or quote.ttl_ns <= 0:
            return None
        side = OrderSide.BUY if quote.side == "buy" else OrderSide.SELL
        slot.signals += 1
        request = OrderRequest(
            trader.oms.next_client_id(),
            slot.pair,
            side,
            OrderType.LIMIT,
            qty,
            price,
            now,
            slot.name,
            post_only=True,
            expires_ns=now + quote.ttl_ns,
        )
        refusal = trader.risk.assess(
            request, instrument, price, trader.exposure(slot, instrument), mark=trader.portfolio.marks.get(slot.pair)
        )
        if refusal is not None:
            trader._refuse(slot, side, qty, refusal.rule, refusal.reason)
            self._quiet_until[quiet] = now + quote.ttl_ns
            return None
        return request
