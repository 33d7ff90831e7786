"""EMA crossover, long only: buy when the fast EMA crosses above the slow one, sell everything on the cross below."""

from collections.abc import Mapping
from typing import ClassVar

from engine.domain.market_data import Candle
from engine.domain.money import ZERO
from engine.market.indicators import EMASpread
from engine.strategies.base import Param, ParamError, ParamValue, Signal, Strategy, StrategyContext

__all__ = ["EmaCross"]


class EmaCross(Strategy):
    kind = "ema_cross"
    description = "Long only: buy when EMA(fast) crosses above EMA(slow); sell the whole position on the cross below."
    params: ClassVar[tuple[Param, ...]] = (
        Param("fast", "int", 12, 2, 500, "Period of the fast EMA, in candles."),
        Param("slow", "int", 26, 3, 2000, "Period of the slow EMA, in candles; must exceed fast."),
    )

    _spread: EMASpread
    _prev_sign: int | None
    _buy: Signal
    _sell: Signal

    @classmethod
    def check_combination(cls, values: Mapping[str, ParamValue]) -> None:
        if values["fast"] >= values["slow"]:
            raise ParamError(f"fast ({values['fast']}) must be smaller than slow ({values['slow']})")

    @property
    def warmup(self) -> int:
        return int(self.values["slow"]) + 1

    def reset(self) -> None:
        fast, slow = self.values["fast"], self.values["slow"]
        self._spread = EMASpread(int(fast), int(slow))
        self._prev_sign = None
        # Signals are immutable: made once, not at every cross.
        self._buy = Signal("buy", f"EMA{fast} crossed above EMA{slow}")
        self._sell = Signal("sell", f"EMA{fast} crossed below EMA{slow}")

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        # Called for every candle of a backtest: one indicator call, and the spread's sign found with one or two
        # Decimal comparisons; the cross is then read off the previous sign (buy when prev <= 0 < diff, sell when
        # prev >= 0 > diff).
        diff = self._spread.update(candle.close)
        if diff is None:
            return None
        sign = 1 if diff > ZERO else -1 if diff < ZERO else 0
        prev = self._prev_sign
        self._prev_sign = sign
        if prev is None or prev == sign:
            return None
        if sign > 0 and prev <= 0:
            return self._buy if ctx.position_qty == ZERO else None
        if sign < 0 and prev >= 0:
            return self._sell if ctx.position_qty > ZERO else None
        return None
