"""EMA crossover, long only: buy when the fast EMA crosses above the slow one, sell everything on the cross below."""

from collections.abc import Mapping
from decimal import Decimal

from engine.domain.market_data import Candle
from engine.market.indicators import EMA
from engine.strategies.base import Param, ParamError, ParamValue, Signal, Strategy, StrategyContext

__all__ = ["EmaCross"]


class EmaCross(Strategy):
    kind = "ema_cross"
    description = "Long only: buy when EMA(fast) crosses above EMA(slow); sell the whole position on the cross below."
    params = (
        Param("fast", "int", 12, 2, 500, "Period of the fast EMA, in candles."),
        Param("slow", "int", 26, 3, 2000, "Period of the slow EMA, in candles; must exceed fast."),
    )

    _fast: EMA
    _slow: EMA
    _prev_diff: Decimal | None

    @classmethod
    def check_combination(cls, values: Mapping[str, ParamValue]) -> None:
        if values["fast"] >= values["slow"]:
            raise ParamError(f"fast ({values['fast']}) must be smaller than slow ({values['slow']})")

    @property
    def warmup(self) -> int:
        return int(self.values["slow"]) + 1

    def reset(self) -> None:
        self._fast = EMA(int(self.values["fast"]))
        self._slow = EMA(int(self.values["slow"]))
        self._prev_diff = None

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        fast = self._fast.update(candle.close)
        slow = self._slow.update(candle.close)
        if fast is None or slow is None:
            return None
        diff = fast - slow
        prev, self._prev_diff = self._prev_diff, diff
        if prev is None:
            return None
        if prev <= 0 < diff and ctx.position_qty == 0:
            return Signal("buy", f"EMA{self.values['fast']} crossed above EMA{self.values['slow']}")
        if prev >= 0 > diff and ctx.position_qty > 0:
            return Signal("sell", f"EMA{self.values['fast']} crossed below EMA{self.values['slow']}")
        return None
