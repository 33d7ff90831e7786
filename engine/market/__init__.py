"""Market computations: incremental O(1) indicators over Decimal series."""

from engine.market.indicators import EMA, SMA, Bollinger, EMASpread, Indicator, IndicatorError, StdDev, zscore
from engine.market.wilder import ATR, RSI

__all__ = [
    "ATR",
    "EMA",
    "RSI",
    "SMA",
    "Bollinger",
    "EMASpread",
    "Indicator",
    "IndicatorError",
    "StdDev",
    "zscore",
]
