"""Runs a strategy over several pairs (:class:`~engine.strategies.portfolio.PortfolioStrategy`) inside the trader.

The strategy's configured slot (its name, ``pair`` = the first of its ``pairs``) is what the engine shows, enables,
tunes and stops; one leg per pair (a slot of the same name on that pair) carries its orders, so each order, its
fills and its position are the strategy's own, in the pair traded, and go through the trader's one path: the risk
checks (a refusal is counted on the strategy and recorded), then the order manager and the exchange port.

When it decides: on a closed candle after which every one of its pairs has closed a candle of that same period
(one decision per period, after the period's last candle; a pair missing a period delays the decision to the
next period they all close). Not while warming up or trading is off, not while the strategy is disabled, and not
while one of its orders is still open. A circuit breaker that stopped it (or a scanner-chosen universe it is out
of) lets its sells through, not its buys.

A restart rebuilds the last closes from the warm-up (:meth:`PortfolioRunner.seen`) and restores positions and open
orders from the state file: the next decision is the one the uninterrupted run made.
"""

from decimal import Decimal
from typing import TYPE_CHECKING

from engine.domain.market_data import Candle
from engine.domain.money import ZERO
from engine.domain.orders import OrderSide
from engine.exchanges.paper.admission import MARKET_BUY_MARGIN
from engine.exchanges.port import OrderRequest
from engine.strategies.portfolio import Book, PortfolioStrategy

if TYPE_CHECKING:
    from engine.runtime.trader import StrategySlot, Trader

__all__ = ["PortfolioRunner"]


class PortfolioRunner:
    """One portfolio strategy's decisions (see the module)."""

    def __init__(self, trader: "Trader", slot: "StrategySlot", legs: "list[StrategySlot]") -> None:
        strategy = slot.strategy
        if not isinstance(strategy, PortfolioStrategy):
            raise ValueError(f"{slot.name}: {strategy.kind} is not a strategy over several pairs")
        strategy.bind_pairs(slot.pairs)
        self.trader = trader
        self.slot = slot
        self.strategy = strategy
        self.legs = {leg.pair: leg for leg in legs}
        self.closes: dict[str, Decimal] = {}
        self.close_ns: dict[str, int] = {}
        self.decisions = 0
        """Decisions that sent at least one order."""

    def seen(self, candle: Candle) -> bool:
        """Take a closed candle of one of the pairs; True when every pair has now closed this candle's period."""
        pair = candle.pair
        self.closes[pair] = candle.close
        self.close_ns[pair] = candle.close_ns
        close_ns = candle.close_ns
        return len(self.close_ns) == len(self.legs) and all(t == close_ns for t in self.close_ns.values())

    def on_candle(self, candle: Candle, trading: bool) -> list[OrderRequest]:
        """The orders the strategy wants after ``candle`` (usually none)."""
        if not self.seen(candle):
            return []
        slot = self.slot
        if not trading or not slot.enabled:
            return []
        trader = self.trader
        has_open = trader.oms.has_open_order
        if any(has_open(slot.name, pair) for pair in self.legs):
            return []
        book = self.book()
        if book is None:
            return []
        try:
            planned = self.strategy.decide(book)
        except Exception as exc:
            trader._strategy_failed(slot, exc, candle)
            return []
        if slot.breaker or slot.exits_only:
            planned = [o for o in planned if o.side is OrderSide.SELL]
        requests: list[OrderRequest] = []
        for order in sorted(planned, key=lambda o: o.side is OrderSide.BUY):  # sells first
            leg = self.legs.get(order.pair)
            if leg is None:
                continue
            request = trader._send(leg, order.side, order.qty, self.closes[order.pair], trader.instruments[leg.pair])
            if leg.refusals:  # counted on the strategy, where the engine shows it
                slot.refusals += leg.refusals
                slot.last_refusal = leg.last_refusal
                leg.refusals = 0
            if request is not None:
                slot.signals += 1
                requests.append(request)
        if requests:
            self.decisions += 1
        return requests

    def book(self) -> Book | None:
        """The strategy's book now; None while an amount in the account cannot be valued (no equity to weigh)."""
        trader = self.trader
        portfolio = trader.portfolio
        if portfolio.unvalued():
            return None
        name = self.slot.name
        limits = trader.risk.limits
        buy_limits: dict[str, Decimal] = {}
        cash = total_room = ZERO
        for pair in self.legs:
            exposure = trader.exposure_for(name, pair, trader.instruments[pair])
            if exposure.unvalued:
                return None
            room = limits.max_pair_notional - exposure.pair_notional
            buy_limits[pair] = max(min(limits.max_order_notional, room), ZERO)
            # The same for every pair (all are quoted in the account currency); a market buy holds funds up to
            # MARKET_BUY_MARGIN above its price at the venue (Kraken's, and the simulated one), so buys spend less.
            cash = exposure.available_quote / (1 + MARKET_BUY_MARGIN)
            total_room = limits.max_total_notional - exposure.total_notional
        return Book(
            pairs=tuple(self.legs),
            prices=dict(self.closes),
            holdings={pair: portfolio.position_qty(name, pair) for pair in self.legs},
            equity=portfolio.equity(),
            cash=cash,
            instruments=trader.instruments,
            buy_limits=buy_limits,
            total_buy_limit=max(total_room, ZERO),
            max_order_qty=limits.max_order_qty,
        )
