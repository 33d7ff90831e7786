"""A strategy on several timeframes, end to end: a 1 h trend and 15 min pullbacks over the shipped one-minute sample,
through real backtests, trades where a plain computation over plainly grouped candles says; a restart mid-way
warms the higher candles up again to the same trades; timeframes the base candles cannot build are refused at
configuration time (intervals the configuration names) and at start (an interval read from the data)."""

import json
from collections import deque
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest
from market.higher_reference import plain
from strategies.shipped_backtest import SHIPPED_OHLC, backtest_json, fill_sides_and_times, usdt_config

from engine.domain.market_data import NS_PER_SECOND, Candle
from engine.persistence import Store
from engine.runtime.app import Engine, EngineError, RunOptions
from engine.runtime.config import Config, ConfigError, config_from_mapping
from engine.strategies import REGISTRY, Param, ParamValue, Signal, Strategy, StrategyContext
from engine.strategies.discovery import PluginError, check_strategy_class

D = Decimal
S = NS_PER_SECOND


class TrendPullback(Strategy):
    """Long only, on three timeframes: the trend is up while the last closed ``trend_minutes`` candle closed above
    the mean close of the last ``trend_period`` of them; buy, when flat and the trend is up, on a base candle that
    closes below the low of the last closed ``pullback_minutes`` candle; sell on a base close above that candle's
    high, or as soon as the trend is no longer up."""

    kind = "test_trend_pullback"
    description = "1 h trend, 15 min pullbacks, one-minute entries (a test's strategy)."
    params: ClassVar[tuple[Param, ...]] = (
        Param("trend_minutes", "int", 60, 1, 1440, "Trend candles, minutes."),
        Param("trend_period", "int", 3, 1, 100, "Trend candles averaged."),
        Param("pullback_minutes", "int", 15, 1, 1440, "Pullback candles, minutes."),
    )

    @classmethod
    def timeframes_for(cls, values: Mapping[str, ParamValue]) -> tuple[int, ...]:
        return (int(values["pullback_minutes"]) * 60, int(values["trend_minutes"]) * 60)

    def reset(self) -> None:
        self.closes: deque[Decimal] = deque(maxlen=int(self.values["trend_period"]))
        self.trend_up = False
        self.pullback: Candle | None = None

    def on_higher_candle(self, candle: Candle, ctx: StrategyContext) -> None:
        if candle.interval_s == int(self.values["trend_minutes"]) * 60:
            self.closes.append(candle.close)
            full = len(self.closes) == self.closes.maxlen
            self.trend_up = full and candle.close > sum(self.closes) / len(self.closes)
        if candle.interval_s == int(self.values["pullback_minutes"]) * 60:
            self.pullback = candle

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        ref = self.pullback
        if ctx.position_qty == 0:
            if self.trend_up and ref is not None and candle.close < ref.low:
                return Signal("buy", "pullback in an up trend")
            return None
        if not self.trend_up or (ref is not None and candle.close > ref.high):
            return Signal("sell", "bounce, or the trend is over")
        return None


@pytest.fixture
def registered() -> Iterator[None]:
    REGISTRY[TrendPullback.kind] = TrendPullback
    yield
    del REGISTRY[TrendPullback.kind]


def sample() -> list[Candle]:
    rows = json.loads(SHIPPED_OHLC.read_text())["result"]["XBTUSDT"]
    return [
        Candle("BTC/USDT", int(r[0]) * S, 60, D(r[1]), D(r[2]), D(r[3]), D(r[4]), D(r[6]), int(r[7])) for r in rows
    ][:-1]  # the last row of a Kraken OHLC answer is the candle still forming


def plain_signals(candles: list[Candle], trend_m: int, period: int, pullback_m: int) -> list[str | None]:
    """The strategy's rule over plainly grouped higher candles, each known from the base candle that closes it."""
    higher = sorted(plain(candles, pullback_m * 60) + plain(candles, trend_m * 60), key=lambda c: c.close_ns)
    trend_closes: list[Decimal] = []
    trend_up, ref, held = False, None, False
    out: list[str | None] = []
    for candle in candles:
        while higher and higher[0].close_ns <= candle.close_ns:
            h = higher.pop(0)
            if h.interval_s == trend_m * 60:
                trend_closes.append(h.close)
                last = trend_closes[-period:]
                trend_up = len(last) == period and h.close > sum(last) / period
            if h.interval_s == pullback_m * 60:
                ref = h
        signal = None
        if not held and trend_up and ref is not None and candle.close < ref.low:
            signal, held = "buy", True
        elif held and (not trend_up or (ref is not None and candle.close > ref.high)):
            signal, held = "sell", False
        out.append(signal)
    return out


def fills_of(signals: list[str | None], candles: list[Candle]) -> list[tuple[str, int]]:
    """A market order fills at the next candle's open (see strategies/shipped_backtest.py)."""
    return [(s, candles[i + 1].ts_ns // S) for i, s in enumerate(signals[:-1]) if s is not None]


@pytest.mark.parametrize(("trend_m", "period", "pullback_m"), [(60, 3, 15), (15, 4, 5)])
def test_it_trades_on_the_shipped_sample_where_the_plain_computation_says(
    registered: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], trend_m: int, period: int, pullback_m: int
) -> None:
    candles = sample()
    expected = fills_of(plain_signals(candles, trend_m, period, pullback_m), candles)
    assert len(expected) >= 4
    params = (f"trend_minutes={trend_m}", f"trend_period={period}", f"pullback_minutes={pullback_m}")
    result = backtest_json(TrendPullback.kind, usdt_config(tmp_path), capsys, *params)
    assert fill_sides_and_times(result) == expected


def config(params: Mapping[str, object], **market: object) -> Config:
    strategy = {"name": "tp", "kind": TrendPullback.kind, "pair": "BTC/USDT", "params": dict(params)}
    return config_from_mapping(
        {
            "quote_currency": "USDT",
            "market": {"speed": "max", "file": str(SHIPPED_OHLC), "pair": "BTC/USDT", **market},
            "paper": {"starting_balances": {"USDT": "10000"}, "fee_volume_30d": "0"},
            "strategies": [strategy],
        }
    )


def fills(db: Path) -> list[tuple[Any, ...]]:
    with Store.open_readonly(db) as store:
        return [tuple(r) for r in store.db.execute("SELECT ts_ns, side, price, qty FROM fills ORDER BY ts_ns")]


@pytest.mark.anyio
async def test_a_restart_mid_way_warms_the_higher_candles_up_to_the_same_trades(
    registered: None, tmp_path: Path
) -> None:
    cfg = config({"trend_minutes": 15, "trend_period": 4, "pullback_minutes": 5})
    whole = tmp_path / "whole.db"
    with anyio.fail_after(120):
        await Engine.from_config(cfg, whole).run()
    expected = fills(whole)
    assert len(expected) >= 4
    split = tmp_path / "split.db"
    with anyio.fail_after(120):
        await Engine.from_config(cfg, split, options=RunOptions(max_events=367)).run()  # stops mid-period
        assert 0 < len(fills(split)) < len(expected)
        await Engine.from_config(cfg, split).run()
    assert fills(split) == expected


def test_a_timeframe_the_configured_base_interval_cannot_build_is_refused_at_configuration(registered: None) -> None:
    with pytest.raises(ConfigError, match=r"strategy 'tp': the 7 min timeframe cannot be built from 5 min candles"):
        config({"pullback_minutes": 7}, interval_minutes=5)
    with pytest.raises(ConfigError, match=r"the 1 h timeframe cannot be built from 7 min candles"):
        config({"pullback_minutes": 14}, interval_minutes=7)
    with pytest.raises(ConfigError, match=r"the 1 h timeframe cannot be built from 4 h candles"):
        config_from_mapping(
            {
                "market": {"source": "kraken"},
                "kraken": {"ohlc_interval": 240},
                "strategies": [{"name": "tp", "kind": TrendPullback.kind, "params": {"pullback_minutes": 240}}],
            }
        )
    config({"pullback_minutes": 10, "trend_minutes": 60}, interval_minutes=5)  # multiples: taken


class NinetySeconds(TrendPullback):
    kind = "test_ninety_seconds"

    @classmethod
    def timeframes_for(cls, values: Mapping[str, ParamValue]) -> tuple[int, ...]:
        return (90,)


def test_a_timeframe_the_data_base_interval_cannot_build_is_refused_at_start(registered: None) -> None:
    REGISTRY[NinetySeconds.kind] = NinetySeconds
    try:
        cfg = config({}).model_copy(
            update={"strategies": [config({}).strategies[0].model_copy(update={"kind": NinetySeconds.kind})]}
        )
        with pytest.raises(EngineError, match=r"the 90 s timeframe cannot be built from 1 min candles"):
            Engine.from_config(cfg, None)
    finally:
        del REGISTRY[NinetySeconds.kind]


def test_a_plugin_declaring_timeframes_that_are_not_whole_seconds_is_refused() -> None:
    class Broken(TrendPullback):
        kind = "test_broken_frames"
        timeframes: ClassVar[tuple[int, ...]] = (0,)

        @classmethod
        def timeframes_for(cls, values: Mapping[str, ParamValue]) -> tuple[int, ...]:
            return cls.timeframes

    with pytest.raises(PluginError, match=r"timeframes must be a tuple of positive whole seconds"):
        check_strategy_class(Broken)
    assert check_strategy_class(TrendPullback) is TrendPullback
