"""Higher-interval candles from a base feed (:mod:`engine.market.higher_candles`), against a plain grouping by
``floor(ts / period)`` written here; and the property the issue asks for: no higher-interval candle reaches a
strategy before it closes, on random base sequences with gaps."""

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from market.higher_reference import plain

from engine.domain.market_data import NS_PER_SECOND, Candle
from engine.market.higher_candles import HigherCandles, TimeframeError, check_timeframes
from engine.runtime.trader import StrategySlot
from engine.strategies import Param, ParamError, ParamValue, Signal, Strategy, StrategyContext

D = Decimal
S = NS_PER_SECOND
PAIR = "BTC/USD"


def base_candles(base_s: int, start_ns: int, steps: Sequence[int], prices: Sequence[int]) -> list[Candle]:
    """Base candles opening ``steps`` base intervals after each other (a step over 1 leaves a gap)."""
    out: list[Candle] = []
    ts = start_ns
    for i, (step, price) in enumerate(zip(steps, prices, strict=True)):
        ts += step * base_s * S
        o, c = D(price), D(price + (i % 7) - 3)
        out.append(Candle(PAIR, ts, base_s, o, max(o, c) + D(i % 3), min(o, c) - D(i % 2), c, D(i % 5) + D("0.5"), i))
    return out


def test_a_fixed_series_with_a_gap_and_a_partial_start_matches_the_plain_grouping() -> None:
    # One-minute candles from 00:03 (the first 5-minute period is partial: never handed out) to 00:15, then from
    # 00:26 on: the 00:15 period is built from its one candle, the 00:20 one is a filler.
    steps = [0] + [1] * 12 + [11] + [1] * 30
    candles = base_candles(60, 3 * 60 * S, steps, [100 + i for i in range(len(steps))])
    aggregator = HigherCandles(PAIR, [300, 900])
    got: dict[int, list[Candle]] = {300: [], 900: []}
    for candle in candles:
        for higher in aggregator.add(candle):
            got[higher.interval_s].append(higher)
    assert got[300] == plain(candles, 300)
    assert got[900] == plain(candles, 900)
    assert got[300][0].ts_ns == 5 * 60 * S  # 00:05, the first period the feed covers from its start
    assert [c.volume for c in got[300]].count(D(0)) == 1  # the 00:20 filler


class Recorder(Strategy):
    """Records what it is handed, and checks at each base candle that the higher candles handed just before it
    had closed by then (and not earlier: each comes at the first base candle that closes or passes its end)."""

    kind = "test_recorder"
    description = "Records the candles it is handed (a test's strategy)."
    params: ClassVar[tuple[Param, ...]] = ()
    timeframes: ClassVar[tuple[int, ...]] = (300, 900, 3600)

    def reset(self) -> None:
        self.higher: list[Candle] = []
        self.pending: list[Candle] = []
        self.last_close_ns: int | None = None

    def on_higher_candle(self, candle: Candle, ctx: StrategyContext) -> None:
        self.pending.append(candle)

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        for higher in self.pending:
            assert higher.close_ns <= candle.close_ns, f"{higher} handed over before it closed"
            assert self.last_close_ns is None or higher.close_ns > self.last_close_ns, f"{higher} came late"
        closes = [(h.close_ns, h.interval_s) for h in self.pending]
        assert closes == sorted(closes)
        self.higher += self.pending
        self.pending = []
        self.last_close_ns = candle.close_ns
        return None


@settings(max_examples=150, deadline=None)
@given(
    base_s=st.sampled_from([60, 300]),
    offset=st.integers(0, 100),
    steps=st.lists(st.integers(1, 40).map(lambda n: 1 if n > 12 else n), min_size=1, max_size=150),
)
def test_no_higher_candle_reaches_a_strategy_before_it_closes(base_s: int, offset: int, steps: list[int]) -> None:
    candles = base_candles(base_s, 1_700_000_000 * S + offset * base_s * S, steps, [1000 + s for s in steps])
    slot = StrategySlot("r", PAIR, Recorder(), True, D(1), D(100))
    recorder = slot.strategy
    assert isinstance(recorder, Recorder)
    ctx = StrategyContext(D(0))
    for candle in candles:
        slot.on_candle(candle, ctx)  # what the trader calls, live, in a replay and while warming up
    expected = sorted(
        (c for period in Recorder.timeframes for c in plain(candles, period)),
        key=lambda c: (c.close_ns, c.interval_s),
    )
    assert recorder.higher == expected


def test_a_retune_rewarms_the_higher_candles_from_the_slot_history() -> None:
    candles = base_candles(60, 7 * 60 * S, [0] + [1] * 200, list(range(1000, 1201)))
    slot = StrategySlot("r", PAIR, Recorder(), True, D(1), D(100))
    ctx = StrategyContext(D(0))
    for candle in candles:
        slot.history.append(candle)
        slot.on_candle(candle, ctx)
    slot.retune({})
    recorder = slot.strategy
    assert isinstance(recorder, Recorder)
    assert recorder.higher == sorted(
        (c for period in Recorder.timeframes for c in plain(candles, period)), key=lambda c: (c.close_ns, c.interval_s)
    )


class TrendMinutes(Recorder):
    kind = "test_trend_minutes"
    params: ClassVar[tuple[Param, ...]] = (Param("trend_minutes", "int", 15, 1, 1440, "Trend candles, minutes."),)

    @classmethod
    def timeframes_for(cls, values: Mapping[str, ParamValue]) -> tuple[int, ...]:
        return (int(values["trend_minutes"]) * 60,)


def test_a_retune_to_a_timeframe_the_base_candles_cannot_build_is_refused_and_changes_nothing() -> None:
    slot = StrategySlot("t", PAIR, TrendMinutes(), True, D(1), D(100))
    for candle in base_candles(300, 0, [1] * 10, list(range(10))):
        slot.history.append(candle)
        slot.on_candle(candle, StrategyContext(D(0)))
    with pytest.raises(ParamError, match="7 min timeframe cannot be built from 5 min candles"):
        slot.retune({"trend_minutes": 7})
    assert slot.strategy.values["trend_minutes"] == 15
    slot.retune({"trend_minutes": 60})
    assert slot.strategy.values["trend_minutes"] == 60


def test_timeframe_checks() -> None:
    check_timeframes(60, (60, 300, 86400))
    with pytest.raises(TimeframeError, match=r"s: the 90 s timeframe cannot be built from 1 min candles"):
        check_timeframes(60, (300, 90), "s")
    with pytest.raises(TimeframeError, match="positive whole number"):
        check_timeframes(60, (0,))
    aggregator = HigherCandles(PAIR, [3600])
    aggregator.add(Candle(PAIR, 0, 60, D(1), D(1), D(1), D(1), D(1)))
    with pytest.raises(TimeframeError, match="one base interval per pair"):
        aggregator.add(Candle(PAIR, 300 * S, 300, D(1), D(1), D(1), D(1), D(1)))
    with pytest.raises(TimeframeError, match="cannot be built from 7 min"):
        HigherCandles(PAIR, [3600]).add(Candle(PAIR, 0, 420, D(1), D(1), D(1), D(1), D(1)))
