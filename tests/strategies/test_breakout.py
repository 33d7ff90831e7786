"""Breakout (Donchian channel): buy when flat and the close is above the highest high of the previous
``entry_period`` candles; sell when holding and the close is below the lowest low of the previous ``exit_period``
candles. Checked against the plain rule (``max``/``min`` over slices) on a fixed series, on random series for the
rolling extreme, and on the shipped sample through a real backtest."""

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies.shipped_backtest import (
    backtest_json,
    expected_fills,
    fill_sides_and_times,
    shipped_candles,
    usdt_config,
)

from engine.domain.market_data import Candle
from engine.strategies import Breakout, ParamError, StrategyContext, strategy_class
from engine.strategies.breakout import RollingExtreme

D = Decimal
# open high low close; candle 19 closes exactly at the previous five candles' highest high (101.5): no breakout.
ROWS = """100 101 99 100 | 100 102 99 101 | 101 101.5 100 100.5 | 100.5 102 100 101.5 | 101.5 101.8 100.5 101
101 103 100.8 102.5 | 102.5 104 102 103.8 | 103.8 105 103 104.5 | 104.5 104.6 102 102.2 | 102.2 103 101.5 101.9
101.9 102 100 100.2 | 100.2 101 99.5 100.8 | 100.8 102.5 100.5 102.4 | 102.4 103 101 101.2 | 101.2 101.5 99 99.2
99.2 100 98 98.5 | 98.5 99 97 97.2 | 97.2 98 96.5 97.8 | 97.8 99 97.5 98.9 | 98.9 101.5 98.5 101.5
101.5 102.6 100.5 102.5 | 102.5 106 102 105.5 | 105.5 107 105 106.8 | 106.8 107 104 104.2 | 104.2 104.5 101 101.5"""
BARS = [tuple(D(x) for x in bar.split()) for bar in ROWS.replace("\n", " | ").split(" | ")]


def plain_signals(bars: Sequence[Sequence[Decimal]], entry: int, exit_: int) -> list[str | None]:
    out: list[str | None] = []
    held = False
    for i, (_open, _high, _low, close) in enumerate(bars):
        upper = max(b[1] for b in bars[i - entry : i]) if i >= entry else None
        lower = min(b[2] for b in bars[i - exit_ : i]) if i >= exit_ else None
        signal = None
        if not held and upper is not None and close > upper:
            signal, held = "buy", True
        elif held and lower is not None and close < lower:
            signal, held = "sell", False
        out.append(signal)
    return out


def run(strategy: Breakout, bars: Sequence[Sequence[Decimal]]) -> list[str | None]:
    got: list[str | None] = []
    qty = D(0)
    for i, (o, h, lo, c) in enumerate(bars):
        signal = strategy.on_candle(Candle("BTC/USD", i, 60, o, h, lo, c, D(1)), StrategyContext(qty))
        if signal is not None:
            qty = D(1) if signal.side == "buy" else D(0)
        got.append(None if signal is None else signal.side)
    return got


def test_the_fixed_series_signals_where_worked_out_by_hand() -> None:
    # Candle 5 closes 102.5 above the highest high of candles 0-4 (102); candle 9 closes 101.9 below the lowest low
    # of candles 6-8 (102); candle 19 closes at 101.5 = the highest high of 14-18, not above it; candle 20 closes
    # 102.5 above 101.5; candle 24 closes 101.5 below the lowest low of 21-23 (102).
    expected = plain_signals(BARS, 5, 3)
    assert [(i, s) for i, s in enumerate(expected) if s] == [(5, "buy"), (9, "sell"), (20, "buy"), (24, "sell")]


@pytest.mark.parametrize(("entry", "exit_"), [(5, 3), (3, 3), (4, 2), (2, 2)])
def test_signals_match_the_plain_channel_rule(entry: int, exit_: int) -> None:
    expected = plain_signals(BARS, entry, exit_)
    assert {"buy", "sell"} <= set(expected)
    strategy = Breakout({"entry_period": entry, "exit_period": exit_})
    assert run(strategy, BARS) == expected
    strategy.retune({"entry_period": entry})  # starts the channels afresh: the same signals again
    assert run(strategy, BARS) == expected


@given(st.lists(st.integers(-50, 50), max_size=80), st.integers(1, 12), st.booleans())
def test_the_rolling_extreme_is_the_max_or_min_of_the_last_values(
    values: list[int], period: int, highest: bool
) -> None:
    extreme = RollingExtreme(period, highest=highest)
    pick = max if highest else min
    for i, value in enumerate(values):
        extreme.push(D(value))
        assert extreme.value == (pick(values[i + 1 - period : i + 1]) if i + 1 >= period else None)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"entry_period": 1}, r"^entry_period: 1 is below the minimum 2$"),
        ({"entry_period": 1001}, r"^entry_period: 1001 is above the maximum 1000$"),
        ({"exit_period": 1}, r"^exit_period: 1 is below the minimum 2$"),
        ({"entry_period": 10, "exit_period": 11}, r"^exit_period \(11\) must not exceed entry_period \(10\)$"),
    ],
)
def test_parameters_are_refused_at_their_edges(values: dict[str, object], message: str) -> None:
    with pytest.raises(ParamError, match=message):
        Breakout.validate(values, base=None)


def test_parameters_at_their_edges_are_taken_and_the_common_ones_come_with_them() -> None:
    assert Breakout.validate({"entry_period": 2, "exit_period": 2}, base=None)["entry_period"] == 2
    assert Breakout.validate({"entry_period": 1000, "exit_period": 1000}, base=None)["exit_period"] == 1000
    assert strategy_class("breakout") is Breakout
    assert [p.name for p in Breakout.own_params] == ["entry_period", "exit_period"]
    assert Breakout.param("atr_multiple").default == 2  # the common guards, sizing and entry parameters


def test_a_backtest_on_the_shipped_sample_trades_where_the_plain_rule_signals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = backtest_json("breakout", usdt_config(tmp_path), capsys, "entry_period=30", "exit_period=15")
    candles = shipped_candles()
    signals = plain_signals([(c.open, c.high, c.low, c.close) for c in candles], 30, 15)
    expected = expected_fills(signals, candles)
    assert fill_sides_and_times(result) == expected
