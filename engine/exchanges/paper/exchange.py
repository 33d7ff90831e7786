"""The simulated exchange: the :class:`ExchangePort` adapter for paper trading and backtests.

One matching engine (``matching``) serves both: the engine feeds every market event to
:meth:`PaperExchange.on_market` before strategies see it, and orders fill against the data that follows them.
Everything is deterministic: no randomness, time only from the injected clock and the market events, venue
order ids ``P-<client id>`` and trade ids ``<client id>-<n>`` (the n-th fill of that order), so a rerun of the
same data produces the same events. What is accepted and what is held: ``admission``.

Errors raised (besides the port's :class:`OrderRefused` for unknown orders and reused client ids)::

    ExchangeError (port)
    └── PaperSetupError   no handler bound, or restore() given inconsistent state: fix the caller
"""

import bisect
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType

from engine.domain.balances import AssetBalance, Balances, InsufficientFunds
from engine.domain.instrument import Instrument
from engine.domain.market_data import BookSnapshot, Candle, MarketEvent, Ticker, TradeTick, event_time_ns
from engine.domain.money import ZERO
from engine.domain.orders import (
    ClientOrderId,
    Fill,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderType,
    TradeId,
    VenueOrderId,
)
from engine.exchanges.paper.admission import (
    ERR_UNKNOWN_ORDER,
    ERR_UNKNOWN_PAIR,
    fills_so_far,
    hold_for,
    plan_order,
    reference_price,
)
from engine.exchanges.paper.book import MutableBook
from engine.exchanges.paper.fee_volume import FeeVolume
from engine.exchanges.paper.matching import Execution, MatchContext, SimOrder, match
from engine.exchanges.paper.slippage import NO_SLIPPAGE, SlippageModel
from engine.exchanges.port import (
    ExchangeError,
    ExchangeHealth,
    ExecutionHandler,
    OrderRefused,
    OrderRequest,
    VenueOrder,
)

__all__ = ["PaperExchange", "PaperSetupError"]

_ONE = Decimal(1)


class PaperSetupError(ExchangeError):
    """The simulated venue is wired or restored inconsistently (a caller's bug, not a market condition)."""


class PaperExchange:
    """A simulated Kraken spot venue.

    Args:
        instruments: tradable pairs keyed by pair name.
        balances: initial total per asset.
        clock: now in nanoseconds (stamps accept, reject and cancel events, and fills made at submit time).
        slippage: moves the taker price on candle and trade data (book fills use the book's prices).
        fee_volume_30d: the 30-day volume (USD) that selects the fee tier, fixed for the venue's life; None: the
            account's own volume of the last 30 days, as Kraken counts it (see :mod:`.fee_volume`).
        volume_participation: the share of a candle's volume (or a trade's quantity) resting orders may fill.
    """

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        balances: Mapping[str, Decimal],
        *,
        clock: Callable[[], int],
        slippage: SlippageModel = NO_SLIPPAGE,
        fee_volume_30d: Decimal | None = ZERO,
        volume_participation: Decimal = _ONE,
    ) -> None:
        if not volume_participation > 0:
            raise ValueError(f"volume_participation must be positive, got {volume_participation}")
        self._instruments = dict(instruments)
        self._instruments_view = MappingProxyType(self._instruments)
        self._clock = clock
        self._slippage = slippage
        self._participation = volume_participation
        # (taker, maker) fee rate per pair, at the tier of the volume below (recomputed when the tier changes).
        self._volume = FeeVolume() if fee_volume_30d is None else None
        self._thresholds = sorted(
            {t.volume for i in self._instruments.values() for t in (*i.fees_taker, *i.fees_maker)}
        )
        self._tier_key = bisect.bisect_right(self._thresholds, ZERO)
        self._rates = self._rates_at(ZERO if fee_volume_30d is None else fee_volume_30d)
        self._balances = Balances(balances)
        self._handler: ExecutionHandler | None = None
        self._orders: dict[ClientOrderId, SimOrder] = {}
        self._open_by_pair: dict[str, dict[ClientOrderId, SimOrder]] = {}
        self._known: set[ClientOrderId] = set()
        self._latest: dict[str, MarketEvent] = {}
        self._books: dict[str, MutableBook] = {}
        self._last_event: MarketEvent | None = None
        self._fills_before: dict[str, list[Fill]] = {}  # by client id, from seed_fee_volume (a restart)

    def _rates_at(self, volume: Decimal) -> dict[str, tuple[Decimal, Decimal]]:
        return {
            pair: (inst.fee_rate(maker=False, volume_30d=volume), inst.fee_rate(maker=True, volume_30d=volume))
            for pair, inst in self._instruments.items()
        }

    def seed_fee_volume(self, fills: Iterable[Fill]) -> None:
        """Count fills made before this venue existed (a restart: the stored fills), oldest first; and keep each
        order's fills so far, so that an order restored partly filled goes on paying its fee as one order."""
        for fill in fills:
            if self._volume is not None:
                self._volume.add(fill.ts_ns, fill.fee_asset, fill.qty * fill.price)
            self._fills_before.setdefault(fill.client_id, []).append(fill)

    def _follow_fee_tier(self, ts_ns: int) -> None:
        """Charge the tier the account's volume of the 30 days before ``ts_ns`` reaches."""
        assert self._volume is not None
        volume = self._volume.at(ts_ns)
        key = bisect.bisect_right(self._thresholds, volume)  # which tier boundaries the volume has passed
        if key != self._tier_key:
            self._tier_key = key
            self._rates = self._rates_at(volume)

    # -- port members --

    @property
    def name(self) -> str:
        return "paper"

    @property
    def is_live(self) -> bool:
        return False

    def bind(self, handler: ExecutionHandler) -> None:
        self._handler = handler

    def instruments(self) -> Mapping[str, Instrument]:
        return self._instruments_view

    async def start(self) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Nothing to release."""

    def on_market(self, event: MarketEvent) -> None:
        """Record ``event`` as the pair's latest data and fill the pair's open orders against it.

        The backtest hot path: with nothing open on the pair this is two dict operations and a store.

        Raises:
            PaperSetupError: orders are open but no handler is bound.
        """
        pair = event.pair
        self._latest[pair] = event
        self._last_event = event  # health() reads its time; a store is cheaper than reading it for every event
        orders = self._open_by_pair.get(pair)
        if orders is None:
            return
        self._require_handler()
        if isinstance(event, Candle):
            ctx = MatchContext(event, event.ts_ns, capacity=self._participation * event.volume)
        elif isinstance(event, TradeTick):
            ctx = MatchContext(event, event.ts_ns, capacity=self._participation * event.qty)
        else:
            ctx = MatchContext(event, event.ts_ns, self._fresh_book(pair))
        for order in list(orders.values()):
            if order.expired_before(event):
                self._expire(order, event_time_ns(event))
                continue
            if order.too_early(event):
                # History to this order (after a restart, the candle that decided it is replayed): it never
                # trades on it, but a market buy taken back then holds funds at the price of that moment.
                if order.rereference:
                    self._rehold(order, event)
                continue
            if order.unheld and not self._hold_restored(order, event):
                continue
            self._run(order, ctx)
            if order.expires_after(event) and order.request.client_id in self._orders:
                self._expire(order, event_time_ns(event))

    async def submit_order(self, request: OrderRequest) -> None:
        """Accept or reject ``request``; against a current book, fill at once what it takes.

        Raises:
            PaperSetupError: no handler is bound.
            OrderRefused: the client id was used before (events under it would corrupt the earlier order).
        """
        self._require_handler()
        client_id = request.client_id
        if client_id in self._known:
            raise OrderRefused(f"client order id {client_id!r} already used")
        self._known.add(client_id)
        now = self._clock()
        pair = request.pair
        instrument = self._instruments.get(pair)
        if instrument is None:
            self._emit(OrderRejected(client_id, ERR_UNKNOWN_PAIR, now))
            return
        held_asset = instrument.quote if request.side is OrderSide.BUY else instrument.base
        book = self._fresh_book(pair)
        latest = self._latest.get(pair)
        plan = plan_order(
            request,
            instrument,
            latest=latest,
            book=book,
            taker_rate=self._rates[pair][0],
            available=self._balances.available(held_asset),
            now_ns=now,
        )
        if isinstance(plan, str):
            self._emit(OrderRejected(client_id, plan, now))
            return
        self._balances.hold(plan.asset, plan.proportional + plan.reserve)
        order = SimOrder(
            request=request,
            instrument=instrument,
            venue_order_id=VenueOrderId(f"P-{client_id}"),
            hold_asset=plan.asset,
            hold_var=plan.proportional,
            hold_fixed=plan.reserve,
            protection=plan.protection,
            # A post-only order never takes, so it rests from the start.
            arrived=request.post_only,
            not_before_ns=request.ts_ns if latest is None else event_time_ns(latest),
        )
        self._register(order)
        self._emit(OrderAccepted(client_id, order.venue_order_id, now))
        if book is not None and not order.arrived:
            self._run(order, MatchContext(self._latest[pair], now, book))

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        """Cancel an open order (an :class:`OrderCanceled` event follows).

        Raises:
            OrderRefused: ``EOrder:Unknown order`` when the order is unknown or already closed.
            PaperSetupError: no handler is bound.
        """
        order = self._orders.get(client_id)
        if order is None:
            raise OrderRefused(ERR_UNKNOWN_ORDER)
        self._require_handler()
        self._close(order, self._clock(), "canceled")

    async def cancel_all(self) -> int:
        if self._orders:
            self._require_handler()
        now = self._clock()
        orders = list(self._orders.values())
        for order in orders:
            self._close(order, now, "canceled")
        return len(orders)

    async def balances(self) -> dict[str, Decimal]:
        return {asset: entry.total for asset, entry in self._balances.assets().items()}

    async def open_orders(self) -> list[VenueOrder]:
        return [
            VenueOrder(
                client_id=order.request.client_id,
                venue_order_id=order.venue_order_id,
                pair=order.request.pair,
                side=order.request.side,
                order_type=order.request.order_type,
                qty=order.request.qty,
                filled_qty=order.filled_qty,
                limit_price=order.request.limit_price,
                status=OrderStatus.PARTIALLY_FILLED if order.filled_qty else OrderStatus.NEW,
            )
            for order in self._orders.values()
        ]

    def health(self) -> ExchangeHealth:
        last = self._last_event
        return ExchangeHealth("paper", True, None if last is None else last.ts_ns, f"{len(self._orders)} open orders")

    # -- beyond the port --

    def balance_detail(self) -> dict[str, AssetBalance]:
        """Total and held amount per asset (a copy), for diagnostics and tests."""
        return self._balances.assets()

    def restore(
        self,
        balances: Mapping[str, Decimal],
        open_orders: Iterable[Order],
        *,
        latest: Iterable[MarketEvent] = (),
    ) -> list[OrderEvent]:
        """Reload the account after a restart: totals, the latest market data known, and open orders with their
        funds held again. Returns what the engine must apply, as a reconciliation would: ``OrderAccepted`` for an
        order taken back that had not heard back yet (its intent was saved, the crash came before the answer),
        ``OrderCanceled`` with the reason for one that cannot be taken back, ``OrderExpired`` for one whose
        expiry the latest market data of its pair had already reached. A restart never fails on one order.
        Restored orders keep their expiry (``Order.expires_ns``) and expire by the matching rules.

        ``latest``: the last market event of each pair before the restart point (it primes the prices a market
        order's hold is taken at). A market buy is held at the latest price known at or before its creation;
        one restored before any price is known holds nothing until its pair's first event. Restored orders keep
        their filled quantity and venue order id; trade ids continue after the fills the order already has.
        They rest (a restored limit order takes no liquidity on its first event) and never trade on data from
        before they were made. No events are emitted.

        Raises:
            PaperSetupError: an order is not open (a caller's bug). Nothing is changed then.
        """
        for order in open_orders:
            if not order.is_open or order.remaining <= 0:
                raise PaperSetupError(f"order {order.client_id} is not open ({order.status}); restore only open orders")
        for event in latest:
            self._latest[event.pair] = event
        fresh = Balances(balances)
        restored: list[SimOrder] = []
        events: list[OrderEvent] = []
        for order in open_orders:
            known = self._latest.get(order.pair)
            if order.expires_ns is not None and known is not None and event_time_ns(known) >= order.expires_ns:
                events.append(OrderExpired(order.client_id, event_time_ns(known)))
                continue
            outcome = self._restored(order, fresh)
            if isinstance(outcome, str):
                when = max(order.created_ts_ns, self._clock())
                events.append(OrderCanceled(order.client_id, when, f"canceled at restart: {outcome}"))
                continue
            restored.append(outcome)
            if order.status is OrderStatus.PENDING_NEW:
                events.append(OrderAccepted(order.client_id, outcome.venue_order_id, order.created_ts_ns))
        self._balances = fresh
        self._orders = {}
        self._open_by_pair = {}
        self._known = set()
        for sim in restored:
            self._known.add(sim.request.client_id)
            self._register(sim)
        return events

    # -- internals --

    def _require_handler(self) -> ExecutionHandler:
        handler = self._handler
        if handler is None:
            raise PaperSetupError("PaperExchange has no execution handler: call bind() before trading")
        return handler

    def _emit(self, event: OrderEvent) -> None:
        self._require_handler()(event)

    def _register(self, order: SimOrder) -> None:
        client_id = order.request.client_id
        self._orders[client_id] = order
        self._open_by_pair.setdefault(order.request.pair, {})[client_id] = order

    def _forget(self, order: SimOrder) -> None:
        client_id = order.request.client_id
        pair = order.request.pair
        del self._orders[client_id]
        siblings = self._open_by_pair[pair]
        del siblings[client_id]
        if not siblings:
            del self._open_by_pair[pair]

    def _fresh_book(self, pair: str) -> MutableBook | None:
        """The consumable book of ``pair`` when its latest data is a book (or ticker), else None."""
        latest = self._latest.get(pair)
        if not isinstance(latest, BookSnapshot | Ticker):
            return None
        book = self._books.get(pair)
        if book is None or book.source is not latest:
            book = self._books[pair] = MutableBook.from_event(latest)
        return book

    def _run(self, order: SimOrder, ctx: MatchContext) -> None:
        outcome = match(order, ctx, self._slippage)
        if outcome is None:
            return
        for execution in outcome.executions:
            self._fill(order, execution)
        if outcome.cancel_reason is not None and order.request.client_id in self._orders:
            self._close(order, ctx.ts_ns, outcome.cancel_reason)

    def _fill(self, order: SimOrder, execution: Execution) -> None:
        request = order.request
        instrument = order.instrument
        cost = execution.qty * execution.price
        if self._volume is not None:
            when = max(execution.ts_ns, request.ts_ns)
            self._follow_fee_tier(when)
            self._volume.add(when, instrument.quote, cost)
        taker, maker = self._rates[request.pair]
        fee = order.fees.charge(
            maker=execution.maker,
            cost=cost,
            rate=maker if execution.maker else taker,
            cost_decimals=instrument.cost_decimals,
        )
        remaining = order.remaining
        order.rereference = False
        done = execution.qty >= remaining
        if done:
            release = order.hold_var + order.hold_fixed
            order.hold_var = order.hold_fixed = ZERO
        else:
            release = order.hold_var * execution.qty / remaining
            order.hold_var -= release
        self._balances.release(order.hold_asset, release)
        order.fill_count += 1
        # Positional (a third cheaper to build than with keywords): trade_id, client_id, pair, side, qty, price,
        # fee, fee_asset, ts_ns, liquidity, strategy, venue_order_id.
        fill = Fill(
            TradeId(f"{request.client_id}-{order.fill_count}"),
            request.client_id,
            request.pair,
            request.side,
            execution.qty,
            execution.price,
            fee,
            instrument.quote,
            # Never dated before the order: a live candle's open (or a book stamped by the venue a moment ago)
            # may precede an order made after it.
            max(execution.ts_ns, request.ts_ns),
            "maker" if execution.maker else "taker",
            request.strategy,
            order.venue_order_id,
        )
        self._balances.apply_fill(fill, instrument.base, instrument.quote)
        order.filled_qty += execution.qty
        if done:
            self._forget(order)
        self._emit(OrderFilled(fill))

    def _close(self, order: SimOrder, ts_ns: int, reason: str) -> None:
        self._end(order, OrderCanceled(order.request.client_id, ts_ns, reason))

    def _expire(self, order: SimOrder, ts_ns: int) -> None:
        self._end(order, OrderExpired(order.request.client_id, ts_ns))

    def _end(self, order: SimOrder, event: OrderCanceled | OrderExpired) -> None:
        """Close what is left of ``order``: release its whole remaining hold, forget it, report ``event``."""
        self._balances.release(order.hold_asset, order.hold_var + order.hold_fixed)
        order.hold_var = order.hold_fixed = ZERO
        self._forget(order)
        self._emit(event)

    def _restored(self, order: Order, balances: Balances) -> SimOrder | str:
        """Rebuild one open order and hold its funds in ``balances``; or say why it cannot be taken back."""
        client_id = order.client_id
        instrument = self._instruments.get(order.pair)
        if instrument is None:
            return f"unknown pair {order.pair!r} at the simulated venue"
        market = order.order_type is OrderType.MARKET
        request = OrderRequest(
            client_id=client_id,
            pair=order.pair,
            side=order.side,
            order_type=order.order_type,
            qty=order.qty,
            limit_price=order.limit_price,
            ts_ns=order.created_ts_ns,
            strategy=order.strategy,
            expires_ns=order.expires_ns,
        )
        sim = SimOrder(
            request=request,
            instrument=instrument,
            venue_order_id=order.venue_order_id or VenueOrderId(f"P-{client_id}"),
            hold_asset=instrument.quote if order.side is OrderSide.BUY else instrument.base,
            hold_var=ZERO,
            hold_fixed=ZERO,
            # A limit order meets the market once as a taker (its first event may be strictly through its limit):
            # taken back before any market data after its creation, it has not met it yet.
            arrived=market or order.filled_qty > 0 or _seen_after(self._latest.get(order.pair), order.created_ts_ns),
            filled_qty=order.filled_qty,
            fill_count=fills_so_far(order),
            not_before_ns=order.created_ts_ns,
            rereference=market and order.side is OrderSide.BUY,
        )
        for fill in self._fills_before.get(client_id, ()):
            # The fee meter rounds the order's running total, not each fill: it resumes where it stood; and the
            # market data it traded with before the restart (replayed after it) must not fill it twice.
            sim.fees.record(maker=fill.liquidity == "maker", cost=fill.qty * fill.price, fee=fill.fee)
            sim.traded_until_ns = max(sim.traded_until_ns, fill.ts_ns)
        if market and order.side is OrderSide.BUY:
            reference = reference_price(self._latest.get(order.pair), order.side)
            if reference is None:
                sim.unheld = True  # held at its pair's first price (see _hold_restored)
                return sim
            price = instrument.round_price(reference)
        else:
            price = order.limit_price or ZERO  # a sell holds its base quantity whatever the price
        hold = hold_for(instrument, order.side, order.remaining, price, self._rates[order.pair][0], market=market)
        try:
            balances.hold(hold.asset, hold.proportional + hold.reserve)
        except InsufficientFunds:
            return f"the balance of {hold.asset} cannot cover its hold of {hold.proportional + hold.reserve}"
        sim.hold_var, sim.hold_fixed, sim.protection = hold.proportional, hold.reserve, hold.protection
        return sim

    def _rehold(self, order: SimOrder, event: MarketEvent) -> None:
        """Hold a restored market buy's funds at ``event``'s price, as when it was accepted (see ``rereference``)."""
        reference = reference_price(event, order.request.side)
        if reference is None:
            return
        hold = hold_for(
            order.instrument,
            order.request.side,
            order.remaining,
            order.instrument.round_price(reference),
            self._rates[order.request.pair][0],
            market=True,
        )
        before = order.hold_var + order.hold_fixed
        self._balances.release(order.hold_asset, before)
        try:
            self._balances.hold(hold.asset, hold.proportional + hold.reserve)
        except InsufficientFunds:
            self._balances.hold(order.hold_asset, before)  # keep the hold it has
            return
        order.hold_var, order.hold_fixed, order.protection = hold.proportional, hold.reserve, hold.protection
        order.unheld = False

    def _hold_restored(self, order: SimOrder, event: MarketEvent) -> bool:
        """Hold the funds of an order restored before any price was known, at the first price of its pair;
        cancel it when the balance cannot cover that. Returns whether it may now trade."""
        self._rehold(order, event)
        if order.unheld:
            self._close(order, event.ts_ns, "canceled after a restart: funds could not be held for it")
            return False
        return True


def _seen_after(event: MarketEvent | None, ts_ns: int) -> bool:
    """Whether ``event`` (a pair's latest market data) is data from after ``ts_ns`` (a candle: closed after it)."""
    if event is None:
        return False
    end = event.close_ns if isinstance(event, Candle) else event.ts_ns
    return end > ts_ns
