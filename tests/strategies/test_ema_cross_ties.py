"""A flat stretch is a tie (EMA(fast) == EMA(slow) exactly), and the move that ends it is a cross.

Why the indicator stays Decimal: over a flat stretch at Kraken's prices (122.3, 0.1, 10709.7, ...) both averages
are the price itself, so the spread is exactly 0 and a drop after it is a cross below (a sell while long). In
float64 the seed averages (sum of 12 prices / 12 against sum of 26 / 26) are off by an ulp, the spread is a tiny
negative number, and that sell is never signalled. On the shared XBTUSD_60.csv float64 and Decimal give the same
1,759 crosses (the spread is never exactly 0 there), but on such data they do not: the Decimal one is kept.
"""

from decimal import Decimal

import pytest

from engine.domain.market_data import Candle
from engine.strategies.base import StrategyContext
from engine.strategies.ema_cross import EmaCross

HELD = StrategyContext(Decimal("0.5"))
FLAT = StrategyContext(Decimal(0))


def _candle(i: int, close: Decimal) -> Candle:
    return Candle("BTC/USD", i * 60_000_000_000, 60, close, close, close, close, Decimal(1))


@pytest.mark.parametrize("price", ["122.3", "0.1", "10709.7", "65432.1", "124.01687"])
def test_a_drop_after_a_flat_stretch_sells(price: str) -> None:
    flat = Decimal(price)
    step = Decimal("0.1") if flat >= 1 else Decimal("0.01")
    strategy = EmaCross({"fast": 12, "slow": 26})
    signals = [strategy.on_candle(_candle(i, flat), HELD) for i in range(40)]
    assert signals == [None] * 40  # the spread is exactly 0 from the 26th candle: no cross yet
    drop = strategy.on_candle(_candle(40, flat - step), HELD)
    assert drop is not None and drop.side == "sell"


@pytest.mark.parametrize("price", ["122.3", "0.1", "10709.7"])
def test_a_rise_after_a_flat_stretch_buys(price: str) -> None:
    flat = Decimal(price)
    strategy = EmaCross({"fast": 12, "slow": 26})
    for i in range(40):
        assert strategy.on_candle(_candle(i, flat), FLAT) is None
    rise = strategy.on_candle(_candle(40, flat + Decimal("0.1")), FLAT)
    assert rise is not None and rise.side == "buy"
