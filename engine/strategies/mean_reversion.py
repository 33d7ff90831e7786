"""Mean reversion on Bollinger bands (z-score), long only.

Buy when the close is ``entry_z`` standard deviations below the moving average; sell the whole position once it
has reverted to ``exit_z`` (0 = back at the average) or, as a stop, fallen ``stop_z`` deviations below.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

from engine.domain.market_data import Candle
from engine.market.indicators import Bollinger
from engine.strategies.base import Param, ParamError, ParamValue, Signal, Strategy, StrategyContext

__all__ = ["MeanReversion"]


class MeanReversion(Strategy):
    kind = "mean_reversion"
    description = "Long only: buy when the z-score of the close drops below -entry_z; sell when it recovers to -exit_z."
    params: ClassVar[tuple[Param, ...]] = (
        Param("period", "int", 20, 5, 1000, "Bollinger window, in candles."),
        Param("entry_z", "decimal", Decimal("2"), Decimal("0.5"), Decimal("5"), "Z-score below which to buy."),
        Param("exit_z", "decimal", Decimal("0"), Decimal("-3"), Decimal("3"), "Sell when z rises to -exit_z."),
        Param("stop_z", "decimal", Decimal("4"), Decimal("1"), Decimal("10"), "Sell when z falls below -stop_z."),
    )

    _bands: Bollinger
    _entry: Decimal
    _exit: Decimal
    _stop: Decimal

    @classmethod
    def check_combination(cls, values: Mapping[str, ParamValue]) -> None:
        entry, exit_, stop = (Decimal(values[k]) for k in ("entry_z", "exit_z", "stop_z"))
        if exit_ >= entry:
            raise ParamError(f"exit_z ({exit_}) must be smaller than entry_z ({entry})")
        if stop <= entry:
            raise ParamError(f"stop_z ({stop}) must exceed entry_z ({entry})")

    @property
    def warmup(self) -> int:
        return int(self.values["period"])

    def reset(self) -> None:
        self._bands = Bollinger(int(self.values["period"]), Decimal(2))
        # The thresholds as the z-score is compared with them, made once (not at every candle: several strategies
        # on one pair each pay their own).
        self._entry = -Decimal(self.values["entry_z"])
        self._exit = -Decimal(self.values["exit_z"])
        self._stop = -Decimal(self.values["stop_z"])

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        bands = self._bands
        bands.update(candle.close)
        z = bands.zscore(candle.close)
        if z is None:
            return None
        if ctx.position_qty == 0:
            if z <= self._entry:
                return Signal("buy", f"z-score {z:.2f} below -{self.values['entry_z']}")
            return None
        if z >= self._exit:
            return Signal("sell", f"z-score {z:.2f} reverted to -{self.values['exit_z']}")
        if z <= self._stop:
            return Signal("sell", f"z-score {z:.2f} hit the stop -{self.values['stop_z']}")
        return None
