"""Slippage models: the price a taker gets when the simulated venue has no order book to walk.

On candles and trade ticks the simulated venue only knows one price (the next candle's open, the next trade's
price); a model moves it against the trader to stand in for the spread and the market impact. Fills against an
L2 book use the book's own prices and are never adjusted.
"""

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Protocol

from engine.domain.instrument import Instrument
from engine.domain.orders import OrderSide

__all__ = ["NO_SLIPPAGE", "FixedBpsSlippage", "NoSlippage", "SlippageModel"]

_BPS = Decimal(10_000)


class SlippageModel(Protocol):
    """Turns a reference price into the price a taker of ``side`` pays (buy) or receives (sell)."""

    def adjust(self, side: OrderSide, price: Decimal, instrument: Instrument) -> Decimal:
        """The execution price for a taker order of ``side`` when the market trades at ``price``."""
        ...


@dataclass(frozen=True, slots=True)
class NoSlippage:
    """Fill at the reference price exactly."""

    def adjust(self, side: OrderSide, price: Decimal, instrument: Instrument) -> Decimal:
        return price


@dataclass(frozen=True, slots=True)
class FixedBpsSlippage:
    """A fixed cost of ``bps`` basis points: buyers pay more, sellers get less.

    The result is rounded to the instrument's tick away from the trader's favour (buys up, sells down), so the
    slippage is never understated and the price is always one Kraken could print.
    """

    bps: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.bps, Decimal) or not self.bps.is_finite() or not 0 <= self.bps < _BPS:
            raise ValueError(f"slippage bps must be a Decimal in [0, 10000), got {self.bps!r}")

    def adjust(self, side: OrderSide, price: Decimal, instrument: Instrument) -> Decimal:
        if side is OrderSide.BUY:
            return instrument.round_price(price * (1 + self.bps / _BPS), ROUND_CEILING)
        adjusted = instrument.round_price(price * (1 - self.bps / _BPS), ROUND_FLOOR)
        # A sell never executes at zero or below, however absurd the model: one tick is the floor.
        return max(adjusted, instrument.price_step)


NO_SLIPPAGE = NoSlippage()
"""The default model (a shared instance, so it can be a default argument)."""
