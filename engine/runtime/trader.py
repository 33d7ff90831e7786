"""The trading core: market event in, order requests out. Synchronous and allocation-light: it is the hot path.

For each market event: the venue sees it first (a simulated venue fills resting orders here), marks move, and on
a closed candle every enabled strategy on that pair is asked for a signal. A signal is sized (a fixed quote
amount × weight per entry, rounded down to the lot precision; the whole position on exit), checked by risk, and
returned as an :class:`~engine.exchanges.port.OrderRequest` for the runtime to submit.

Every refused signal (by risk, or unsizable) is counted by its rule, kept in a short log for diagnostics, and
handed to the :class:`RefusalSink` (the journal: one ``order_refused`` event each, in backtests, paper and live
runs alike). Refusals happen per signal, never per candle: the per-candle path does not change.
"""

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from engine.domain.instrument import Instrument
from engine.domain.market_data import BookSnapshot, Candle, MarketEvent, Ticker, TradeTick
from engine.domain.money import ZERO
from engine.domain.orders import OrderSide, OrderType
from engine.exchanges.port import ExchangePort, OrderRequest
from engine.execution.order_manager import OrderManager
from engine.portfolio.portfolio import Portfolio
from engine.risk.checks import RULE_EXPOSURE_UNVALUED, ExposureSnapshot, RiskEngine
from engine.strategies.base import ParamValue, Signal, Strategy, StrategyContext

__all__ = ["RefusalSink", "StrategySlot", "Trader"]

HISTORY = 2500  # candles kept per slot, to re-warm a strategy after it is retuned
NO_REQUESTS: list[OrderRequest] = []  # shared and never mutated: most events ask for nothing
ONE = Decimal(1)


class RefusalSink(Protocol):
    """Where refused orders are recorded (the journal's event log)."""

    def order_refused(
        self, strategy: str, pair: str, side: str, qty: Decimal | None, rule: str, reason: str
    ) -> None: ...


@dataclass(slots=True)
class StrategySlot:
    """One configured strategy instance and its run-time state."""

    name: str
    pair: str
    strategy: Strategy
    enabled: bool
    weight: Decimal
    order_quote_amount: Decimal
    version: int = 1
    signals: int = 0
    refusals: int = 0
    errors: int = 0
    last_error: str = ""
    last_refusal: str = ""
    exits_only: bool = False
    """Out of a scanner-chosen universe (engine.runtime.universe): sells still close the position, buys wait."""
    history: deque[Candle] = field(default_factory=lambda: deque(maxlen=HISTORY))
    context: StrategyContext = field(default_factory=lambda: StrategyContext(ZERO))
    key: tuple[str, str] = field(init=False, repr=False, default=("", ""))
    """``(name, pair)``: the slot's key into the portfolio's positions, made once."""

    def __post_init__(self) -> None:
        self.key = (self.name, self.pair)

    def retune(self, values: Mapping[str, object]) -> dict[str, ParamValue]:
        """Apply new parameters, then re-warm the strategy on recent candles so it can signal at once."""
        applied = self.strategy.retune(values)
        ctx = StrategyContext(Decimal(0))
        for candle in self.history:
            self.strategy.on_candle(candle, ctx)
        return applied


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
    ) -> None:
        self.instruments = instruments
        self.exchange = exchange
        self.portfolio = portfolio
        self.risk = risk
        self.oms = oms
        self.slots = slots
        self.clock = clock
        self.by_pair: dict[str, list[StrategySlot]] = {}
        for slot in slots:
            self.by_pair.setdefault(slot.pair, []).append(slot)
        self.last_event: dict[str, MarketEvent] = {}
        self.refusal_log: deque[str] = deque(maxlen=50)
        # Refused orders since this trader was built, by rule (a limit's name, Kraken's error, ...; see Refusal).
        self.refusal_counts: dict[str, int] = {}
        self.refusal_sink = refusal_sink
        # Bound once for the per-event path (the venue, the marks and the positions are never replaced).
        self._venue_on_market = exchange.on_market
        self._marks = portfolio.marks
        self._positions = portfolio.positions

    def slot(self, name: str) -> StrategySlot | None:
        for slot in self.slots:
            if slot.name == name:
                return slot
        return None

    def warm(self, event: MarketEvent) -> None:
        """Feed an already-processed event to the strategies only (after a restart): no venue, no orders."""
        if isinstance(event, Candle):
            self.portfolio.marks[event.pair] = event.close
            for slot in self.by_pair.get(event.pair, ()):
                slot.history.append(event)
                slot.strategy.on_candle(event, StrategyContext(self.portfolio.position_qty(slot.name, slot.pair)))

    def on_market(self, event: MarketEvent, trading: bool = True) -> list[OrderRequest]:
        """Process one market event; returns the orders to submit (none while warming up)."""
        self._venue_on_market(event)
        pair = event.pair
        self.last_event[pair] = event
        if type(event) is Candle:
            # The backtest's hot path (once per candle): the slot loop is inlined, and the per-slot work that is
            # not a strategy call is two dict lookups and an attribute store.
            self._marks[pair] = event.close
            slots = self.by_pair.get(pair)
            if not slots:
                return NO_REQUESTS
            requests: list[OrderRequest] | None = None
            positions = self._positions
            for slot in slots:
                slot.history.append(event)
                position = positions.get(slot.key)
                qty_held = position.qty if position is not None else ZERO
                ctx = slot.context
                ctx.position_qty = qty_held
                try:
                    signal = slot.strategy.on_candle(event, ctx)
                except Exception as exc:
                    slot.errors += 1
                    slot.last_error = f"{type(exc).__name__}: {exc}"
                    continue
                if signal is None:
                    continue
                request = self._on_signal(slot, signal, event, qty_held, trading)
                if request is not None:
                    if requests is None:
                        requests = []
                    requests.append(request)
            return requests or NO_REQUESTS
        if isinstance(event, TradeTick):
            self.portfolio.marks[pair] = event.price
        elif isinstance(event, Ticker):
            self.portfolio.marks[pair] = event.last
        elif isinstance(event, BookSnapshot) and event.best_bid is not None and event.best_ask is not None:
            self.portfolio.marks[pair] = (event.best_bid + event.best_ask) / 2
        return []

    def _on_signal(
        self, slot: StrategySlot, signal: Signal, candle: Candle, qty_held: Decimal, trading: bool
    ) -> OrderRequest | None:
        if not trading or not slot.enabled:
            return None
        if slot.exits_only and signal.side == "buy":
            return None
        slot.signals += 1
        if self.oms.has_open_order(slot.name, slot.pair):
            return None
        return self._size(slot, signal, candle, qty_held)

    def _size(self, slot: StrategySlot, signal: Signal, candle: Candle, qty_held: Decimal) -> OrderRequest | None:
        instrument = self.instruments[slot.pair]
        price = candle.close
        if signal.side == "buy":
            # The entry budget is in the account currency; a pair quoted in another asset (ETHXBT in a USD
            # account) spends the budget's worth of that asset at current marks.
            budget = slot.order_quote_amount * slot.weight
            account = self.portfolio.quote_currency
            if instrument.quote != account:
                rate = self.portfolio.quote_value(slot.pair, ONE)
                if not rate:
                    why = f"cannot size the entry: no price for {instrument.quote} in {account} yet"
                    self._refuse(slot, OrderSide.BUY, None, RULE_EXPOSURE_UNVALUED, why)
                    return None
                budget = budget / rate
            qty = instrument.round_qty_down(budget / price)
            side = OrderSide.BUY
        else:
            qty = qty_held
            side = OrderSide.SELL
        if qty <= 0:
            return None
        # Positional: keyword arguments cost a frozen dataclass a third more to build (client_id, pair, side,
        # order_type, qty, limit_price, ts_ns, strategy).
        request = OrderRequest(
            self.oms.next_client_id(), slot.pair, side, OrderType.MARKET, qty, None, self.clock(), slot.name
        )
        refusal = self.risk.assess(request, instrument, price, self.exposure(slot, instrument))
        if refusal is not None:
            self._refuse(slot, side, qty, refusal.rule, refusal.reason)
            return None
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
