"""The trading core: market event in, order requests out. Synchronous and allocation-light: it is the hot path.

For each market event: the venue sees it first (a simulated venue fills resting orders here), marks move, and on
a closed candle every enabled strategy on that pair is asked for a signal. A signal is sized (a fixed quote
amount × weight per entry, rounded down to the lot precision; the whole position on exit), checked by risk, and
returned as an :class:`~engine.exchanges.port.OrderRequest` for the runtime to submit.

Strategies on one pair may form a group (``group = "name"`` in their configuration): on each candle the members'
signals are a weighted vote and the group sends at most one order (see :class:`SlotGroup` for the rule and who the
order is attributed to). Ungrouped strategies act on their own signals, as they always did.

Every refused signal (by risk, or unsizable) is counted by its rule, kept in a short log for diagnostics, and
handed to the :class:`RefusalSink` (the journal: one ``order_refused`` event each, in backtests, paper and live
runs alike). Refusals happen per signal, never per candle: the per-candle path does not change.

What each strategy holds (its slot, the groups, the higher-timeframe feed) lives in
:mod:`engine.runtime.strategy_slots`. What remains here is past the house's ~600 lines on purpose: it is the one
per-event path (solo strategies, groups, portfolio and book hooks, sizing, guards, refusals), kept together so that
the hot loop reads straight through.
"""

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

from engine.domain.instrument import Instrument
from engine.domain.market_data import NS_PER_SECOND, BookSnapshot, Candle, MarketEvent, Ticker, TradeTick
from engine.domain.money import ZERO
from engine.domain.orders import ClientOrderId, Fill, Order, OrderSide, OrderStatus, OrderType
from engine.exchanges.port import ExchangePort, OrderRequest
from engine.execution.order_manager import OrderManager
from engine.portfolio.portfolio import Portfolio
from engine.portfolio.reserve import ProfitReserve
from engine.risk.breakers import Breakers, BreakerTrip
from engine.risk.checks import RULE_EXPOSURE_UNVALUED, ExposureSnapshot, RiskEngine
from engine.risk.position_guards import GuardExit
from engine.risk.sizing import entry_budget, limit_entry_price
from engine.runtime.book_quotes import BookQuoting
from engine.runtime.portfolio_runner import PortfolioRunner
from engine.runtime.strategy_slots import HISTORY, RefusalSink, SlotGroup, StrategySlot, TimeframeFeed
from engine.strategies.base import Signal, StrategyContext

__all__ = ["HISTORY", "RefusalSink", "SlotGroup", "StrategySlot", "TimeframeFeed", "Trader"]

RULE_SIZING = "sizing"  # an entry its sizing rule could not size (no ATR yet, no equity)
NO_REQUESTS: list[OrderRequest] = []  # shared and never mutated: most events ask for nothing
ONE = Decimal(1)


class Trader:
    """Strategies → sizing → risk → order requests, with the venue and portfolio kept current."""

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        exchange: ExchangePort,
        portfolio: Portfolio,
        risk: RiskEngine,
        oms: OrderManager,
        slots: list[StrategySlot],
        clock: Callable[[], int],
        refusal_sink: RefusalSink | None = None,
        breakers: Breakers | None = None,
        reserve: ProfitReserve | None = None,
    ) -> None:
        self.instruments = instruments
        self.exchange = exchange
        self.portfolio = portfolio
        self.risk = risk
        self.oms = oms
        self.slots = slots
        self.clock = clock
        self.by_pair: dict[str, list[StrategySlot]] = {}
        # The per-candle path: the strategies acting on their own, and the groups (SlotGroup), per pair.
        self._solo: dict[str, list[StrategySlot]] = {}
        self.groups: dict[str, SlotGroup] = {}
        self._groups_by_pair: dict[str, list[SlotGroup]] = {}
        # Strategies over several pairs (PortfolioStrategy), per pair they trade: they decide on their own rule.
        self._portfolios: dict[str, list[PortfolioRunner]] = {}
        for slot in slots:
            self.by_pair.setdefault(slot.pair, []).append(slot)
            slot.dust = instruments[slot.pair].ordermin if slot.pair in instruments else ZERO
            if slot.pairs:
                legs = [
                    StrategySlot(slot.name, p, slot.strategy, True, slot.weight, slot.order_quote_amount)
                    for p in slot.pairs
                ]
                runner = PortfolioRunner(self, slot, legs)
                for pair in slot.pairs:
                    self._portfolios.setdefault(pair, []).append(runner)
                continue
            if not slot.group:
                self._solo.setdefault(slot.pair, []).append(slot)
                continue
            group = self.groups.get(slot.group)
            if group is None:
                group = self.groups[slot.group] = SlotGroup(slot.group, slot.pair, [])
                self._groups_by_pair.setdefault(slot.pair, []).append(group)
            elif group.pair != slot.pair:
                raise ValueError(f"group {slot.group!r}: {slot.name} trades {slot.pair}, the group {group.pair}")
            group.members.append(slot)
        # One candle history per pair, shared by its strategies (each sees every candle of its pair): appended once
        # per candle, not once per strategy.
        self._history: dict[str, deque[Candle]] = {}
        for slot in slots:
            slot.history = self._history.setdefault(slot.pair, slot.history)
        self.last_event: dict[str, MarketEvent] = {}
        self.refusal_log: deque[str] = deque(maxlen=50)
        # Refused orders since this trader was built, by rule (a limit's name, Kraken's error, ...; see Refusal).
        self.refusal_counts: dict[str, int] = {}
        self.refusal_sink = refusal_sink
        # Position guards that triggered since this trader was built, by rule (stop_loss_pct, ...).
        self.guard_counts: dict[str, int] = {}
        # Per-strategy circuit breakers (None when none is on: nothing is spent on them per event); the trips not
        # acted on yet (the runtime disables the strategy and records the trip), and the round trips counted.
        self.breakers = breakers
        self._warm_buys: dict[tuple[str, str], deque[tuple[int, Decimal, Decimal]]] = {}
        self._warm_from: dict[tuple[str, str], int] = {}
        self._warm_avg: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
        self.breaker_trips: list[BreakerTrip] = []
        self.breaker_counts: dict[str, int] = {}  # trips since this trader was built, by rule
        self._trips_counted = len(portfolio.round_trips)
        # The profit reserve ([risk] reserve_profit_pct): held back from what buys may spend.
        self.reserve = reserve
        # Bound once for the per-event path (the venue, the marks and the positions are never replaced).
        self._venue_on_market = exchange.on_market
        self._marks = portfolio.marks
        self._positions = portfolio.positions
        # Strategies on the L2 book (engine.runtime.book_quotes); None when none is: nothing per book event.
        self.book_quoting = BookQuoting(self, slots) if any(s.strategy.uses_book() for s in slots) else None

    def slot(self, name: str) -> StrategySlot | None:
        for slot in self.slots:
            if slot.name == name:
                return slot
        return None

    def prepare_warm(self, fills: Sequence[Fill]) -> None:
        """Before :meth:`warm` after a restart: the buys of each guarded position held now, so that the guards are
        rebuilt with the average entry each candle had then (a position built by several fills moves it)."""
        self._warm_buys = {}
        for slot in self.slots:
            position = self._positions.get(slot.key)
            if slot.guard is None or position is None or position.qty < slot.dust or position.opened_ts_ns is None:
                continue
            opened = position.opened_ts_ns
            # When a candle had a fill in hand: a maker fill is dated at the close of the candle that made it (the
            # guards saw it on that candle), a taker fill at the open of its candle, which is the close of the one
            # before (they did not): a fill counts for the candles closing at or after its date (+1 ns for takers).
            buys = [
                (f.ts_ns + (f.liquidity != "maker"), f.qty, f.price)
                for f in fills
                if f.strategy == slot.name and f.pair == slot.pair and f.side is OrderSide.BUY and f.ts_ns >= opened
            ]
            buys.sort(key=lambda b: b[0])
            self._warm_buys[slot.key] = deque(buys)
            # The guards watch the position from the buy that made it sellable (dust before it counts as flat).
            held, start = ZERO, opened + 1
            for when, qty, _ in buys:
                held += qty
                if held >= slot.dust:
                    start = when
                    break
            self._warm_from[slot.key] = start

    def _entry_then(self, slot: StrategySlot, close_ns: int, final: Decimal) -> Decimal:
        """The position's average entry after the buys made by ``close_ns`` (its final one when unknown)."""
        pending = self._warm_buys.get(slot.key)
        if pending is None:
            return final
        qty, cost = self._warm_avg.get(slot.key, (ZERO, ZERO))
        while pending and pending[0][0] <= close_ns:
            _, q, p = pending.popleft()
            qty, cost = qty + q, cost + q * p
        self._warm_avg[slot.key] = (qty, cost)
        return cost / qty if qty else final

    def warm(self, event: MarketEvent) -> None:
        """Feed an already-processed event to the strategies only (after a restart): no venue, no orders."""
        if isinstance(event, Candle):
            self.portfolio.marks[event.pair] = event.close
            for runner in self._portfolios.get(event.pair, ()):
                runner.seen(event)
            close_ns = event.close_ns
            history = self._history.get(event.pair)
            if history is not None:
                history.append(event)
            for slot in self.by_pair.get(event.pair, ()):
                if slot.atr is not None:
                    slot.atr.update_bar(event.high, event.low, event.close)
                position = self._positions.get(slot.key)
                if (
                    slot.guard is not None
                    and position is not None
                    and position.qty >= slot.dust
                    and position.opened_ts_ns is not None
                    and close_ns >= self._warm_from.get(slot.key, position.opened_ts_ns + 1)
                ):
                    # The guards' memory (peak, candles held, a latched exit, a scale-out) is rebuilt as it was.
                    entry = self._entry_then(slot, close_ns, position.avg_entry)
                    slot.guard.check(event.high, event.low, entry, slot.guard_state)
                slot.on_candle(event, StrategyContext(self._seen_qty(slot)))

    def _seen_qty(self, slot: StrategySlot) -> Decimal:
        """The position a strategy is shown: its own, or its group's (the members' own positions added up)."""
        if not slot.group:
            return self.portfolio.position_qty(slot.name, slot.pair)
        return sum((self.portfolio.position_qty(m.name, m.pair) for m in self.groups[slot.group].members), ZERO)

    def on_market(self, event: MarketEvent, trading: bool = True) -> list[OrderRequest]:
        """Process one market event; returns the orders to submit (none while warming up)."""
        self._venue_on_market(event)
        pair = event.pair
        self.last_event[pair] = event
        if type(event) is Candle:
            # The backtest's hot path (once per candle): the slot loop is inlined, and the per-slot work that is
            # not a strategy call is two dict lookups and an attribute store.
            self._marks[pair] = event.close
            slots = self._solo.get(pair, ())
            groups = self._groups_by_pair.get(pair)
            portfolios = self._portfolios.get(pair)
            if not slots and groups is None and portfolios is None:
                return NO_REQUESTS
            history = self._history.get(pair)  # None: a pair only a portfolio strategy's second or later leg trades
            if history is not None:
                history.append(event)
            if self.breakers is not None and len(self.portfolio.round_trips) > self._trips_counted:
                self._count_trips(self.breakers)
            requests: list[OrderRequest] | None = None
            positions = self._positions
            for slot in slots:
                position = positions.get(slot.key)
                qty_held = position.qty if position is not None else ZERO
                if qty_held < slot.dust:
                    # Dust (a partly filled entry's remainder below Kraken's order minimum) cannot be sold: to the
                    # strategy and the guards the position is flat; the next entry adds to it, its exit sells all.
                    qty_held = ZERO
                ctx = slot.context
                ctx.position_qty = qty_held
                if slot.atr is not None:
                    slot.atr.update_bar(event.high, event.low, event.close)
                guard = slot.guard
                exit_now: GuardExit | None = None
                if guard is not None:
                    if qty_held > 0 and position is not None:
                        exit_now = guard.check(event.high, event.low, position.avg_entry, slot.guard_state)
                    elif slot.guard_state.held:
                        slot.guard_state.clear()
                try:
                    signal = slot.on_candle(event, ctx)
                except Exception as exc:
                    signal = self._strategy_failed(slot, exc, event)
                if exit_now is not None:
                    # A guard's exit replaces whatever the strategy said on this candle.
                    request = self._guard_exit(slot, exit_now, event, qty_held, trading)
                elif signal is not None:
                    request = self._on_signal(slot, signal, event, qty_held, trading)
                elif slot.last_entry:
                    request = self._retry_entry(slot, event, trading)
                else:
                    continue
                if request is not None:
                    if requests is None:
                        requests = []
                    requests.append(request)
            if groups is not None:
                for group in groups:
                    request = self._group_step(group, event, trading)
                    if request is not None:
                        if requests is None:
                            requests = []
                        requests.append(request)
            if portfolios is not None:
                for runner in portfolios:
                    made = runner.on_candle(event, trading)
                    if made:
                        requests = [*(requests or ()), *made]
            return requests or NO_REQUESTS
        if isinstance(event, TradeTick):
            self.portfolio.marks[pair] = event.price
        elif isinstance(event, Ticker):
            self.portfolio.marks[pair] = event.last
        elif isinstance(event, BookSnapshot) and event.best_bid is not None and event.best_ask is not None:
            self.portfolio.marks[pair] = (event.best_bid + event.best_ask) / 2
        if self.book_quoting is not None and isinstance(event, BookSnapshot):
            return self.book_quoting.on_book(event, trading)
        return []

    def _group_step(self, group: SlotGroup, event: Candle, trading: bool) -> OrderRequest | None:
        """One candle of a group: every member sees it, the votes are counted, at most one order comes out (the
        rule: :class:`SlotGroup`)."""
        positions = self._positions
        members = group.members
        held: list[Decimal] = []
        total = ZERO
        for slot in members:
            position = positions.get(slot.key)
            qty = position.qty if position is not None else ZERO
            if qty < slot.dust:
                qty = ZERO  # dust counts as flat, as for a strategy on its own
            held.append(qty)
            total += qty
        score = ZERO
        voted = False
        buyer: StrategySlot | None = None
        buy_signal: Signal | None = None
        exit_slot: StrategySlot | None = None
        exit_now: GuardExit | None = None
        exit_qty = ZERO
        for slot, qty in zip(members, held, strict=True):
            ctx = slot.context
            ctx.position_qty = total
            if slot.atr is not None:
                slot.atr.update_bar(event.high, event.low, event.close)
            triggered = None if slot.guard is None else self._member_guard(slot, qty, event)
            if triggered is not None:
                if exit_now is None:
                    exit_slot, exit_now, exit_qty = slot, triggered, qty
                else:
                    self._guard_exit(slot, triggered, event, qty, False)  # recorded; latched for the next candle
            try:
                signal = slot.on_candle(event, ctx)
            except Exception as exc:
                signal = self._strategy_failed(slot, exc, event)
            if signal is None or not slot.enabled:
                continue
            if signal.side == "buy":
                if slot.breaker or slot.exits_only:
                    continue  # its entries wait: so does its buy vote
                score += slot.weight
                if buyer is None or slot.weight > buyer.weight:
                    buyer, buy_signal = slot, signal
            else:
                score -= slot.weight
            slot.votes += 1
            voted = True
        if exit_slot is not None and exit_now is not None:
            return self._guard_exit(exit_slot, exit_now, event, exit_qty, trading)
        if score > 0 and buyer is not None and buy_signal is not None:
            group.buys += 1
            if self._group_busy(group):
                return None
            return self._on_signal(buyer, buy_signal, event, held[members.index(buyer)], trading)
        if score < 0:
            group.sells += 1
            holder, most = None, ZERO
            for slot, qty in zip(members, held, strict=True):
                if qty > most and slot.enabled:
                    holder, most = slot, qty
            if holder is None or self._group_busy(group):
                return None
            return self._on_signal(holder, group.sell_signal, event, most, trading)
        if voted:
            group.ties += 1
        for slot in members:
            if slot.last_entry:
                request = self._retry_entry(slot, event, trading)
                if request is not None:
                    return request
        return None

    def _member_guard(self, slot: StrategySlot, qty: Decimal, event: Candle) -> GuardExit | None:
        """A group member's position guards on ``event``, over its own position ``qty``."""
        position = self._positions.get(slot.key)
        if slot.guard is not None and qty > 0 and position is not None:
            return slot.guard.check(event.high, event.low, position.avg_entry, slot.guard_state)
        if slot.guard_state.held:
            slot.guard_state.clear()
        return None

    def _strategy_failed(self, slot: StrategySlot, exc: Exception, event: Candle) -> Signal | None:
        """A strategy raised on ``event``: counted, kept for diagnostics and told to the breakers; no signal."""
        slot.errors += 1
        slot.last_error = f"{type(exc).__name__}: {exc}"
        if self.breakers is not None:
            self._breaker_tripped(self.breakers.on_error(slot.name, event.close_ns))
        return None

    def _group_busy(self, group: SlotGroup) -> bool:
        """True while a member has an order open (the group then waits: never two of its orders at once)."""
        has_open = self.oms.has_open_order
        return any(has_open(slot.name, slot.pair) for slot in group.members)

    def _on_signal(
        self, slot: StrategySlot, signal: Signal, candle: Candle, qty_held: Decimal, trading: bool
    ) -> OrderRequest | None:
        if not trading or not slot.enabled or (slot.breaker and signal.side == "buy"):
            return None
        if slot.exits_only and signal.side == "buy":
            return None
        slot.signals += 1
        if self.oms.has_open_order(slot.name, slot.pair):
            return None
        return self._size(slot, signal, candle, qty_held)

    def restore_entries(self) -> None:
        """After a restart: pick up each strategy's limit entry where it stood (still open, or expired with its
        reprice not sent yet), with the reprices its chain has already used (saved with each order as
        ``reprice_of``)."""
        for slot in self.slots:
            if slot.entry.limit_bps is None:
                continue
            mine = sorted(
                (
                    o
                    for o in self.oms.orders.values()
                    if o.strategy == slot.name
                    and o.pair == slot.pair
                    and o.side is OrderSide.BUY
                    and o.order_type is OrderType.LIMIT
                ),
                key=lambda o: (o.created_ts_ns, o.client_id),
            )
            if not mine:
                continue
            last = mine[-1]  # the latest limit entry (exits in between do not end its chain)
            if not (last.is_open or last.status is OrderStatus.EXPIRED):
                continue
            # The reprices its chain used: each order names the expired entry it sent again.
            by_id: dict[str, Order] = {o.client_id: o for o in mine}
            used, link = 0, last.reprice_of
            while link is not None and link in by_id:
                used += 1
                link = by_id[link].reprice_of
            slot.last_entry = last.client_id
            slot.reprices_left = max(slot.entry.reprices - used, 0)

    def replay_breakers(self, resets: Mapping[str, int]) -> None:
        """After a restart: feed the breakers the round trips closed before it, as they were counted then (a
        strategy's count starts at its last re-arm, ``resets``: strategy -> round trips closed by then). A strategy
        a breaker had stopped is marked stopped again; one whose trip never reached the disk (the engine died
        first) is stopped now, as the uninterrupted run did."""
        breakers = self.breakers
        if breakers is None:
            return
        for index, trip in enumerate(self.portfolio.round_trips):
            if index < resets.get(trip.strategy, 0):
                continue
            net = trip.pnl_value if trip.pnl_value is not None else trip.pnl
            tripped = breakers.on_trade_closed(trip.strategy, net, trip.exit_ts_ns)
            slot = None if tripped is None else self.slot(tripped.strategy)
            if tripped is not None and slot is not None:
                slot.breaker = tripped.rule
                if slot.enabled:
                    self.breaker_trips.append(tripped)
        self._trips_counted = len(self.portfolio.round_trips)

    def _count_trips(self, breakers: Breakers) -> None:
        """Tell the breakers about the round trips closed since the last call (the market data they learn from
        :attr:`last_event` when they check for staleness: nothing per event)."""
        trips = self.portfolio.round_trips
        for trip in trips[self._trips_counted :]:
            net = trip.pnl_value if trip.pnl_value is not None else trip.pnl
            self._breaker_tripped(breakers.on_trade_closed(trip.strategy, net, trip.exit_ts_ns))
        self._trips_counted = len(trips)

    def _breaker_tripped(self, trip: BreakerTrip | None) -> None:
        if trip is None:
            return
        slot = self.slot(trip.strategy)
        if slot is not None:
            slot.breaker = trip.rule
        self.breaker_trips.append(trip)
        self.breaker_counts[trip.rule] = self.breaker_counts.get(trip.rule, 0) + 1

    def _size(self, slot: StrategySlot, signal: Signal, candle: Candle, qty_held: Decimal) -> OrderRequest | None:
        instrument = self.instruments[slot.pair]
        price = candle.close
        if signal.side != "buy":
            return self._send(slot, OrderSide.SELL, qty_held, price, instrument)
        # The entry budget is in the account currency; a pair quoted in another asset (ETHXBT in a USD
        # account) spends the budget's worth of that asset at current marks.
        values = slot.strategy.values
        sized_by_equity = bool(values.get("risk_per_trade_pct")) or bool(values.get("equity_fraction_pct"))
        if sized_by_equity:
            atr = slot.atr.value if slot.atr is not None else None
            limits = self.risk.limits
            budget_or_none, how = entry_budget(
                values,
                slot.order_quote_amount,
                slot.weight,
                self.portfolio.equity(),
                price,
                atr,
                limits.max_order_notional,
            )
            if budget_or_none is None:
                self._refuse(slot, OrderSide.BUY, None, RULE_SIZING, f"cannot size the entry: {how}")
                return None
            budget = budget_or_none
        else:
            # The configured amount as it is: a limit it exceeds refuses the order (and says so) rather than
            # shrinking it silently.
            budget = slot.order_quote_amount * slot.weight
        account = self.portfolio.quote_currency
        if instrument.quote != account:
            rate = self.portfolio.quote_value(slot.pair, ONE)
            if not rate:
                why = f"cannot size the entry: no price for {instrument.quote} in {account} yet"
                self._refuse(slot, OrderSide.BUY, None, RULE_EXPOSURE_UNVALUED, why)
                return None
            budget = budget / rate
        entry = slot.entry
        if entry.limit_bps is None:
            qty = instrument.round_qty_down(budget / price)
            if sized_by_equity and qty > self.risk.limits.max_order_qty:
                qty = instrument.round_qty_down(self.risk.limits.max_order_qty)
            return self._send(slot, OrderSide.BUY, qty, price, instrument)
        limit = limit_entry_price(price, entry.limit_bps, instrument)
        if limit <= 0:
            return None
        qty = instrument.round_qty_down(budget / limit)
        if sized_by_equity and qty > self.risk.limits.max_order_qty:
            qty = instrument.round_qty_down(self.risk.limits.max_order_qty)
        request = self._send(slot, OrderSide.BUY, qty, price, instrument, limit, candle)
        if request is not None:
            slot.last_entry = request.client_id
            slot.reprices_left = entry.reprices
        return request

    def _send(
        self,
        slot: StrategySlot,
        side: OrderSide,
        qty: Decimal,
        price: Decimal,
        instrument: Instrument,
        limit: Decimal | None = None,
        candle: Candle | None = None,
        reprice_of: str | None = None,
    ) -> OrderRequest | None:
        """The order, once risk accepts it (a refusal is recorded); a market order unless ``limit`` is given."""
        if qty <= 0:
            return None
        if limit is None:
            # Positional: keyword arguments cost a frozen dataclass a third more to build (client_id, pair, side,
            # order_type, qty, limit_price, ts_ns, strategy).
            request = OrderRequest(
                self.oms.next_client_id(), slot.pair, side, OrderType.MARKET, qty, None, self.clock(), slot.name
            )
        else:
            assert candle is not None
            entry = slot.entry
            request = OrderRequest(
                self.oms.next_client_id(),
                slot.pair,
                side,
                OrderType.LIMIT,
                qty,
                limit,
                self.clock(),
                slot.name,
                post_only=entry.post_only,
                expires_ns=candle.close_ns + entry.ttl_candles * candle.interval_s * NS_PER_SECOND,
                reprice_of=reprice_of,
            )
        refusal = self.risk.assess(
            request, instrument, price, self.exposure(slot, instrument), mark=self._marks.get(slot.pair)
        )
        if refusal is not None:
            self._refuse(slot, side, qty, refusal.rule, refusal.reason)
            return None
        return request

    def _guard_exit(
        self, slot: StrategySlot, exit_now: GuardExit, candle: Candle, qty_held: Decimal, trading: bool
    ) -> OrderRequest | None:
        """Sell what a triggered guard asks for (the whole position, or the take-profit's share of it)."""
        instrument = self.instruments[slot.pair]
        qty = qty_held
        if exit_now.share < ONE:
            part = instrument.round_qty_down(qty_held * exit_now.share)
            # A share Kraken would refuse (below its minimum), or that would leave such a remainder, sells it all.
            if part >= instrument.ordermin and qty_held - part >= instrument.ordermin:
                qty = part
        if not exit_now.repeat:
            slot.guard_exits += 1
            counts = self.guard_counts
            counts[exit_now.rule] = counts.get(exit_now.rule, 0) + 1
            sink = self.refusal_sink
            if sink is not None:
                sink.guard_triggered(slot.name, slot.pair, exit_now.rule, qty, exit_now.detail)
        if not trading or self.oms.has_open_order(slot.name, slot.pair):
            return None  # a latched exit is asked for again at the next candle
        return self._send(slot, OrderSide.SELL, qty, candle.close, instrument)

    def _retry_entry(self, slot: StrategySlot, candle: Candle, trading: bool) -> OrderRequest | None:
        """A limit entry that expired unfilled (wholly or in part) is sent again at the new close while reprices
        remain; otherwise it is abandoned. Checked only while a limit entry is outstanding."""
        order = self.oms.orders.get(ClientOrderId(slot.last_entry))
        if order is not None and order.is_open:
            return None
        slot.last_entry = ""
        if order is None or order.status is not OrderStatus.EXPIRED or slot.reprices_left <= 0:
            return None
        if not trading or not slot.enabled or slot.breaker or slot.exits_only or order.remaining <= 0:
            return None
        entry = slot.entry
        if entry.limit_bps is None:
            return None  # retuned to market entries meanwhile: the strategy's next signal decides
        instrument = self.instruments[slot.pair]
        limit = limit_entry_price(candle.close, entry.limit_bps, instrument)
        reprices_left = slot.reprices_left - 1
        request = self._send(
            slot, OrderSide.BUY, order.remaining, candle.close, instrument, limit, candle, reprice_of=order.client_id
        )
        if request is not None:
            slot.last_entry = request.client_id
            slot.reprices_left = reprices_left
        return request

    def _refuse(self, slot: StrategySlot, side: OrderSide, qty: Decimal | None, rule: str, reason: str) -> None:
        """Count, log and record one refused order (the one path for every run: backtest, paper, live)."""
        slot.refusals += 1
        slot.last_refusal = reason
        counts = self.refusal_counts
        counts[rule] = counts.get(rule, 0) + 1
        self.refusal_log.append(f"{slot.name} {side} {'' if qty is None else f'{qty} '}{slot.pair}: {reason}")
        sink = self.refusal_sink
        if sink is not None:
            sink.order_refused(slot.name, slot.pair, side.value, qty, rule, reason)

    def reserve_now(self) -> Decimal:
        """The profit reserve, with the round trips closed since it was last looked at accounted."""
        reserve = self.reserve
        if reserve is None:
            return ZERO
        reserve.catch_up(self.portfolio.round_trips)
        return reserve.amount

    def exposure(self, slot: StrategySlot, instrument: Instrument) -> ExposureSnapshot:
        """The exposure risk checks an order of ``slot`` against (see :meth:`exposure_for`)."""
        return self.exposure_for(slot.name, slot.pair, instrument)

    def exposure_for(self, strategy: str, pair: str, instrument: Instrument) -> ExposureSnapshot:
        """The exposure risk checks an order of ``strategy`` on ``pair`` against (once per signal, never per
        candle; manual orders use the strategy name ``manual``).

        Notionals (positions at mark and the remaining quantity of open buys at their limit price, or at the mark
        for market orders) are converted from each pair's quote asset into the account currency; an amount that
        cannot be converted now is left out of the sums and its pair's missing price is named in
        ``unvalued``, which makes risk refuse the buy. The free quote balance stays in the order pair's quote
        asset: only open buys in that same asset reserve it.
        """
        portfolio = self.portfolio
        oms = self.oms
        instruments = self.instruments
        quote_value = portfolio.quote_value
        held_quote = held_base = pending_pair = pending_total = ZERO
        unvalued_pairs: set[str] = set()
        for cid in oms.open_ids:
            order = oms.orders[cid]
            remaining = order.remaining
            mark = portfolio.marks.get(order.pair, ZERO)
            price = order.limit_price if order.limit_price is not None else mark
            if order.side is OrderSide.BUY:
                notional = remaining * price
                if instruments[order.pair].quote == instrument.quote:
                    held_quote += notional
                value = quote_value(order.pair, notional)
                if value is None:
                    unvalued_pairs.add(order.pair)
                    continue
                pending_total += value
                if order.pair == pair:
                    pending_pair += value
            elif order.pair == pair:
                held_base += remaining
        account = portfolio.quote_currency
        quote_rate: Decimal | None = None
        if instrument.quote != account:
            quote_rate = quote_value(pair, ONE)
            if quote_rate is None:
                unvalued_pairs.add(pair)
        reserve = self.reserve
        if reserve is not None:
            self.reserve_now()
            if reserve.amount:
                # Held back like an open buy: in the pair's quote asset (at the marks when it is not the account's).
                if instrument.quote == account:
                    held_quote += reserve.amount
                elif quote_rate:
                    held_quote += reserve.amount / quote_rate
                else:
                    unvalued_pairs.add(pair)
        unvalued_pairs.update(portfolio.unvalued_notional())
        balances = portfolio.balances
        position_qty = portfolio.position_qty(strategy, pair)
        return ExposureSnapshot(
            pair_notional=portfolio.pair_notional(pair) + pending_pair,
            total_notional=portfolio.total_notional() + pending_total,
            open_orders=len(oms.open_ids),
            available_quote=balances.total(instrument.quote) - held_quote,
            available_base=min(balances.total(instrument.base) - held_base, position_qty),
            position_qty=position_qty,
            account_currency=account,
            quote_rate=quote_rate,
            unvalued=self._unvalued_reasons(unvalued_pairs),
        )

    def _unvalued_reasons(self, pairs: set[str]) -> str:
        """Why amounts in these pairs' quote assets cannot be valued now, each reason once ("" for no pairs)."""
        if not pairs:
            return ""
        portfolio = self.portfolio
        reasons = {portfolio.quote_unvalued(pair) or f"cannot value {pair}'s quote asset" for pair in pairs}
        return "; ".join(sorted(reasons))
