"""Portfolio rebalancing: hold target weights of several pairs (and cash), trade back when they drift too far.

Spot only: it buys with the account's cash and sells what it holds itself, never more (no shorting, no margin).

Configured with ``pairs = ["BTC/USD", "ETH/USD"]`` and ``weight_1``, ``weight_2``, ... the target share of the
account's equity in each pair, in the order of ``pairs``; what the weights leave (1 - their sum) is the cash
target. Every pair must be quoted in the account currency.

The rule, once every pair has closed a candle of the same period (:func:`plan_rebalance`):

* the weights now are the strategy's own positions at the latest closes over the account's equity; cash is the
  rest (so anything else the account holds, other strategies' positions included, counts as cash);
* inside the band (no weight, cash included, more than ``band_pct`` points off its target) nothing is done;
* otherwise every pair is traded back to its target, with market orders rounded down to the lot precision:
  sells of at most what it holds, buys of at most the cash it may spend now (fees included; proceeds of this
  step's sells are spent at a later step, if the drift is still outside the band then) and of what the risk
  limits allow; orders below Kraken's minimums are left out;
* fee-aware: the orders' fees (at each pair's taker fee, the lowest tier's: the highest) must not exceed how far
  the worst drift lies beyond the band, in money (``(worst drift - band) × equity``); when they would, nothing is
  traded: a drift that barely leaves the band is not worth its fees;
* nothing new while one of its orders is still open.

When it makes money: pairs that swing against each other and revert (buying the one that fell, selling the one
that rose: "rebalancing premium"), with drifts large enough that the band is crossed and the fees are small
beside them. When it loses: a pair trending away for good (it keeps selling the winner early and buying the
loser all the way down), a market falling together (it is long by design: cash is only its cash weight), and a
band so narrow that it trades often and the fees eat the premium.
"""

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import ClassVar

from engine.domain.money import ZERO
from engine.domain.orders import OrderSide
from engine.strategies.base import Param, ParamError, ParamValue
from engine.strategies.portfolio import Book, PlannedOrder, PortfolioStrategy, refuse_common_params

__all__ = ["PortfolioRebalance", "plan_rebalance"]

_D = Decimal
_HUNDRED = Decimal(100)
MAX_PAIRS = 8
WEIGHT_NAMES = tuple(f"weight_{k}" for k in range(1, MAX_PAIRS + 1))


def _pct(share: Decimal) -> str:
    return f"{(share * _HUNDRED).quantize(_D('0.01'))}%"


def plan_rebalance(targets: Mapping[str, Decimal], band: Decimal, book: Book) -> list[PlannedOrder]:
    """The orders that bring ``book`` back to ``targets`` (pair -> share of equity), by the rule of the module;
    ``band`` is a share (0.05 for 5 points). Sells first, then buys, each in the order of ``book.pairs``."""
    equity = book.equity
    prices = book.prices
    if equity <= 0 or any(prices.get(pair, ZERO) <= 0 for pair in book.pairs):
        return []
    values = {pair: book.holdings.get(pair, ZERO) * prices[pair] for pair in book.pairs}
    drifts = {pair: values[pair] / equity - targets.get(pair, ZERO) for pair in book.pairs}
    cash_drift = -sum(drifts.values(), ZERO)  # (1 - sum of weights) - (1 - sum of targets)
    worst = max([abs(cash_drift), *(abs(d) for d in drifts.values())])
    if worst <= band:
        return []
    sells: list[PlannedOrder] = []
    buys: list[tuple[str, Decimal]] = []
    for pair in book.pairs:
        instrument = book.instruments[pair]
        price = prices[pair]
        delta = targets.get(pair, ZERO) * equity - values[pair]
        if delta < 0:
            qty = instrument.round_qty_down(min(-delta / price, book.holdings.get(pair, ZERO)))
            reason = (
                f"rebalance {pair}: {_pct(values[pair] / equity)} of equity, target {_pct(targets.get(pair, ZERO))}"
            )
            sells.append(PlannedOrder(pair, OrderSide.SELL, qty, reason))
        elif delta > 0:
            notional = min(delta, book.buy_limits.get(pair, ZERO), book.max_order_qty * price)
            buys.append((pair, max(notional, ZERO)))
    # Buys together fit the cash (fees included) and the total exposure the risk limits leave: scaled down alike.
    need = sum((n * (1 + book.instruments[p].fee_rate(maker=False)) for p, n in buys), ZERO)
    spend = sum((n for _, n in buys), ZERO)
    scale = Decimal(1)
    if need > book.cash:
        scale = max(book.cash, ZERO) / need
    if spend * scale > book.total_buy_limit:
        scale = max(book.total_buy_limit, ZERO) / spend
    bought = [
        PlannedOrder(
            pair,
            OrderSide.BUY,
            book.instruments[pair].round_qty_down(notional * scale / prices[pair]),
            f"rebalance {pair}: {_pct(values[pair] / equity)} of equity, target {_pct(targets.get(pair, ZERO))}",
        )
        for pair, notional in buys
        if notional > 0
    ]
    orders = [
        o
        for o in (*sells, *bought)
        if book.instruments[o.pair].check_order(o.qty, book.instruments[o.pair].round_price(prices[o.pair])) is None
    ]
    fees = sum((o.qty * prices[o.pair] * book.instruments[o.pair].fee_rate(maker=False) for o in orders), ZERO)
    if fees > (worst - band) * equity:
        return []
    return orders


class PortfolioRebalance(PortfolioStrategy):
    """See the module: target weights over several pairs, traded back when a drift leaves the band."""

    kind = "portfolio_rebalance"
    description = (
        "Spot only: hold target weights of several pairs (weight_1.. in the order of `pairs`; cash the rest) and "
        "trade them back with market orders when a weight drifts beyond band_pct, unless the fees exceed the "
        "drift beyond the band. The parameters common to every strategy (guards, sizing, entry orders) do not apply."
    )
    params: ClassVar[tuple[Param, ...]] = (
        *(
            Param(
                name,
                "decimal",
                _D(0),
                _D(0),
                _D(1),
                f"Target share of the account's equity in pair {k} of `pairs` (0 to 1; cash is 1 - the sum).",
            )
            for k, name in enumerate(WEIGHT_NAMES, start=1)
        ),
        Param(
            "band_pct",
            "decimal",
            _D(5),
            _D("0.1"),
            _D(50),
            "Rebalance only when a weight (cash included) is more than this many percentage points off its target.",
        ),
    )
    max_pairs = MAX_PAIRS

    @classmethod
    def check_combination(cls, values: Mapping[str, ParamValue]) -> None:
        total = sum((_D(str(values[name])) for name in WEIGHT_NAMES), ZERO)
        if total > 1:
            raise ParamError(f"the target weights add up to {total}, more than 1 (the whole equity)")
        refuse_common_params(cls.kind, values)

    @classmethod
    def check_pairs(cls, values: Mapping[str, ParamValue], pairs: Sequence[str]) -> None:
        if len(pairs) > MAX_PAIRS:
            raise ParamError(f"{cls.kind} trades at most {MAX_PAIRS} pairs, not {len(pairs)}")
        for name in WEIGHT_NAMES[len(pairs) :]:
            if values[name]:
                listed = ", ".join(pairs)
                raise ParamError(
                    f"{name} = {values[name]} names no pair: pairs lists {len(pairs)} ({listed}); weight_k is the "
                    "target of the k-th pair"
                )

    def targets(self) -> dict[str, Decimal]:
        """Pair -> target share of equity."""
        return {pair: _D(str(self.values[name])) for pair, name in zip(self.pairs, WEIGHT_NAMES, strict=False)}

    def decide(self, book: Book) -> list[PlannedOrder]:
        return plan_rebalance(self.targets(), _D(str(self.values["band_pct"])) / _HUNDRED, book)
