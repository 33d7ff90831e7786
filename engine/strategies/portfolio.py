"""Strategies over several pairs at once: they see a :class:`Book` and answer with sized orders.

A :class:`PortfolioStrategy` is configured with ``pairs = ["BTC/USD", "ETH/USD"]`` (left out: its one ``pair``).
It does not signal per candle: once every one of its pairs has closed a candle of the same period, the engine
(:mod:`engine.runtime.portfolio_runner`) hands it a :class:`Book` (the latest closes, its own positions, the
account's equity, the cash it may spend now and what the risk limits still allow) and sends the
:class:`PlannedOrder` list it returns as market orders of the strategy, each through the risk checks, the order
manager and the exchange port like any other order. A pair without a price yet means no decision.

The decision is a function of the book alone (no indicator memory), so a restart, which restores positions, open
orders and prices, decides exactly as an uninterrupted run.
"""

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from engine.domain.instrument import Instrument
from engine.domain.market_data import Candle
from engine.domain.orders import OrderSide
from engine.strategies.base import ParamError, ParamValue, Signal, Strategy, StrategyContext

__all__ = ["Book", "PlannedOrder", "PortfolioStrategy"]


@dataclass(frozen=True, slots=True)
class Book:
    """What a portfolio strategy decides on; every amount is in the account currency unless said otherwise.

    Attributes:
        pairs: the strategy's pairs, in configured order (all quoted in the account currency).
        prices: the latest close of each pair.
        holdings: the strategy's own position in each pair, in base units.
        equity: the account's equity (every holding at the latest prices).
        cash: what buys may spend now, fees included (the quote balance less open buys and the profit reserve,
            over the headroom a market buy holds at the venue).
        instruments: each pair's precision, minimums and fee schedule.
        buy_limits: the largest buy notional each pair's risk limits allow now (max_order_notional, and what
            max_pair_notional leaves).
        total_buy_limit: the notional max_total_notional leaves for all buys together.
        max_order_qty: the largest buy, in base units (max_order_qty).
    """

    pairs: tuple[str, ...]
    prices: Mapping[str, Decimal]
    holdings: Mapping[str, Decimal]
    equity: Decimal
    cash: Decimal
    instruments: Mapping[str, Instrument]
    buy_limits: Mapping[str, Decimal]
    total_buy_limit: Decimal
    max_order_qty: Decimal


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """A market order a portfolio strategy wants: ``qty`` is already rounded to the pair's lot precision."""

    pair: str
    side: OrderSide
    qty: Decimal
    reason: str = ""


class PortfolioStrategy(Strategy):
    """Base of the strategies over several pairs (see the module)."""

    max_pairs: ClassVar[int] = 8
    pairs: tuple[str, ...] = ()
    """The pairs this instance trades (set by :meth:`bind_pairs`, from the configuration)."""

    @classmethod
    def check_pairs(cls, values: Mapping[str, ParamValue], pairs: Sequence[str]) -> None:
        """Rules between the parameters and the configured pairs (override). Raises ParamError."""
        return None

    def bind_pairs(self, pairs: Sequence[str]) -> None:
        """Take the configured pairs (checked with the current values first).

        Raises:
            ParamError: the values do not fit these pairs.
        """
        self.check_pairs(self.values, pairs)
        self.pairs = tuple(pairs)

    def retune(self, values: Mapping[str, object]) -> dict[str, ParamValue]:
        merged = self.validate(values, base=self.values)
        if self.pairs:
            self.check_pairs(merged, self.pairs)
        return super().retune(values)

    def reset(self) -> None:
        return None

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        """Never a per-pair signal: decisions come from :meth:`decide`."""
        return None

    @abstractmethod
    def decide(self, book: Book) -> list[PlannedOrder]:
        """The orders to send now (none: nothing to do). Sells are sent before buys."""


def refuse_common_params(kind: str, values: Mapping[str, ParamValue]) -> None:
    """The guards, sizing and entry-order parameters every strategy has do not apply to a portfolio strategy (it
    sizes its own market orders): one set away from its default is refused rather than silently ignored.

    Raises:
        ParamError: naming the parameter.
    """
    from engine.strategies.common_params import COMMON_PARAMS

    for param in COMMON_PARAMS:
        if param.name in values and values[param.name] != param.default:
            raise ParamError(f"{param.name} does not apply to {kind}, which sizes its own market orders")
