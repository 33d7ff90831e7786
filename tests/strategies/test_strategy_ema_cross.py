"""EmaCross signals exactly where the textbook rule says: buy when EMA(fast) - EMA(slow) goes from <= 0 to > 0 while
flat, sell everything when it goes from >= 0 to < 0 while long."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.market_data import Candle
from engine.market import EMA
from engine.strategies.base import StrategyContext
from engine.strategies.ema_cross import EmaCross

CLOSES = st.lists(st.decimals(min_value=Decimal("90"), max_value=Decimal("110"), places=1), max_size=120)


def _reference(closes: list[Decimal], fast: int, slow: int, held: list[Decimal]) -> list[str | None]:
    f, s = EMA(fast), EMA(slow)
    prev: Decimal | None = None
    out: list[str | None] = []
    for close, qty in zip(closes, held, strict=True):
        a, b = f.update(close), s.update(close)
        signal = None
        if a is not None and b is not None:
            diff = a - b
            if prev is not None and prev <= 0 < diff and qty == 0:
                signal = "buy"
            elif prev is not None and prev >= 0 > diff and qty > 0:
                signal = "sell"
            prev = diff
        out.append(signal)
    return out


@settings(deadline=None)
@given(CLOSES, st.integers(2, 6), st.integers(1, 8), st.data())
def test_signals_match_the_rule(closes: list[Decimal], fast: int, extra: int, data: st.DataObject) -> None:
    slow = fast + extra
    held = [data.draw(st.sampled_from([Decimal(0), Decimal("0.5")])) for _ in closes]
    strategy = EmaCross({"fast": fast, "slow": slow})
    got = []
    for i, (close, qty) in enumerate(zip(closes, held, strict=True)):
        candle = Candle("BTC/USD", i, 60, close, close, close, close, Decimal(1))
        signal = strategy.on_candle(candle, StrategyContext(qty))
        got.append(None if signal is None else signal.side)
        assert signal is None or signal.reason.startswith(f"EMA{fast} crossed")
    assert got == _reference(closes, fast, slow, held)
    strategy.retune({"fast": fast})  # a retune starts the averages afresh
    one = Decimal(1)
    assert strategy.on_candle(Candle("BTC/USD", 0, 60, one, one, one, one, one), StrategyContext(Decimal(0))) is None
