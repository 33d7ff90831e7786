"""RsiReversal: buy when flat and Wilder's RSI crosses up through ``oversold`` (previous < level <= current), sell
when holding and it crosses down through ``overbought`` (previous > level >= current). Checked against a plain Wilder
RSI written here (seeded with the plain average of the first ``period`` gains and losses, then
``avg = (avg · (period − 1) + x) / period``; 0 when there are neither gains nor losses, as TA-Lib), on a fixed series
and on the shipped sample through a real backtest."""

from collections.abc import Sequence
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
from strategies.shipped_backtest import (
    backtest_json,
    expected_fills,
    fill_sides_and_times,
    shipped_candles,
    usdt_config,
)

from engine.domain.market_data import Candle
from engine.strategies import ParamError, RsiReversal, StrategyContext, strategy_class

D = Decimal
SERIES = """100 99 98 97.5 96 95 96 97 96.5 98 99 101 103 104 105 104.5 103 102 101 100 99 98.5 97 98 99.5 101 102
103.5 104 103 101 100 99 97 95 94 95 97 99 100 102 104 106 105 103 104 102"""
CLOSES = [D(x) for x in SERIES.split()]


def plain_rsi(closes: Sequence[Decimal], period: int) -> list[Decimal | None]:
    out: list[Decimal | None] = [None] * len(closes)
    gains = [max(b - a, D(0)) for a, b in pairwise(closes)]
    losses = [max(a - b, D(0)) for a, b in pairwise(closes)]
    if len(gains) < period:
        return out
    avg_gain, avg_loss = sum(gains[:period], D(0)) / period, sum(losses[:period], D(0)) / period
    for k in range(period, len(gains) + 1):  # gains[k - 1] is the change into closes[k]
        if k > period:
            avg_gain = (avg_gain * (period - 1) + gains[k - 1]) / period
            avg_loss = (avg_loss * (period - 1) + losses[k - 1]) / period
        total = avg_gain + avg_loss
        out[k] = 100 * avg_gain / total if total else D(0)
    return out


def plain_signals(closes: Sequence[Decimal], period: int, oversold: Decimal, overbought: Decimal) -> list[str | None]:
    rsi = plain_rsi(closes, period)
    out: list[str | None] = [None]
    held = False
    for prev, now in pairwise(rsi):
        signal = None
        if prev is not None and now is not None:
            if not held and prev < oversold <= now:
                signal, held = "buy", True
            elif held and prev > overbought >= now:
                signal, held = "sell", False
        out.append(signal)
    return out


def run(strategy: RsiReversal, closes: Sequence[Decimal]) -> list[str | None]:
    got: list[str | None] = []
    qty = D(0)
    for i, close in enumerate(closes):
        signal = strategy.on_candle(Candle("BTC/USD", i, 60, close, close, close, close, D(1)), StrategyContext(qty))
        if signal is not None:
            qty = D(1) if signal.side == "buy" else D(0)
        got.append(None if signal is None else signal.side)
    return got


def test_the_plain_rsi_is_wilders() -> None:
    # By hand: five falls (gain 0, loss 5 → averages 0 and 1: RSI 0), then +1: gain 1/5, loss 4/5 → RSI 20.
    rsi = plain_rsi(CLOSES, 5)
    assert rsi[:5] == [None] * 5
    assert (rsi[5], rsi[6]) == (D(0), D(20))


@pytest.mark.parametrize(("period", "oversold", "overbought"), [(5, "30", "70"), (5, "20", "80"), (3, "25", "60")])
def test_signals_match_the_plain_wilder_rule(period: int, oversold: str, overbought: str) -> None:
    expected = plain_signals(CLOSES, period, D(oversold), D(overbought))
    assert {"buy", "sell"} <= set(expected)
    strategy = RsiReversal({"period": period, "oversold": oversold, "overbought": overbought})
    assert run(strategy, CLOSES) == expected
    strategy.retune({"period": period})  # starts the RSI afresh: the same signals again
    assert run(strategy, CLOSES) == expected


def test_a_cross_that_lands_exactly_on_the_level_counts() -> None:
    # RSI(5) goes 0 → 20 exactly at candle 6 (see test_the_plain_rsi_is_wilders).
    assert run(RsiReversal({"period": 5, "oversold": 20, "overbought": 80}), CLOSES)[6] == "buy"
    assert run(RsiReversal({"period": 5, "oversold": "20.01", "overbought": 80}), CLOSES)[6] is None


def test_no_buy_while_holding_and_no_sell_while_flat() -> None:
    strategy = RsiReversal({"period": 5})
    always_flat = [
        strategy.on_candle(Candle("X", i, 60, c, c, c, c, D(1)), StrategyContext(D(0))) for i, c in enumerate(CLOSES)
    ]
    assert {s.side for s in always_flat if s is not None} == {"buy"}
    strategy.reset()
    always_held = [
        strategy.on_candle(Candle("X", i, 60, c, c, c, c, D(1)), StrategyContext(D(1))) for i, c in enumerate(CLOSES)
    ]
    assert {s.side for s in always_held if s is not None} == {"sell"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"period": 1}, r"^period: 1 is below the minimum 2$"),
        ({"period": 501}, r"^period: 501 is above the maximum 500$"),
        ({"oversold": "0.9"}, r"^oversold: 0.9 is below the minimum 1$"),
        ({"overbought": "99.5"}, r"^overbought: 99.5 is above the maximum 99$"),
        ({"oversold": 50, "overbought": 50}, r"^oversold \(50\) must be smaller than overbought \(50\)$"),
        ({"oversold": 71}, r"^oversold \(71\) must be smaller than overbought \(70\)$"),
    ],
)
def test_parameters_are_refused_at_their_edges(values: dict[str, object], message: str) -> None:
    with pytest.raises(ParamError, match=message):
        RsiReversal.validate(values, base=None)


def test_parameters_at_their_edges_are_taken_and_the_common_ones_come_with_them() -> None:
    low = RsiReversal.validate({"period": 2, "oversold": 1, "overbought": "1.01"}, base=None)
    assert (low["period"], low["oversold"], low["overbought"]) == (2, 1, D("1.01"))
    assert RsiReversal.validate({"period": 500, "oversold": "98.99", "overbought": 99}, base=None)["period"] == 500
    assert strategy_class("rsi_reversal") is RsiReversal
    assert [p.name for p in RsiReversal.own_params] == ["period", "oversold", "overbought"]
    assert RsiReversal.param("stop_loss_pct").default == 0  # the common guards, sizing and entry parameters


def test_a_backtest_on_the_shipped_sample_trades_where_the_plain_rule_signals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = backtest_json("rsi_reversal", usdt_config(tmp_path), capsys)
    candles = shipped_candles()
    signals = plain_signals([c.close for c in candles], 14, D(30), D(70))
    expected = expected_fills(signals, candles)
    assert fill_sides_and_times(result) == expected
