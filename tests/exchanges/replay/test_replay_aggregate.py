"""Trades to candles, checked against hand examples, invariants, and Kraken's own OHLC capture."""

import itertools
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.market_data import NS_PER_SECOND, Candle, TradeTick
from engine.exchanges.replay import (
    ReplayConfigError,
    ReplayOrderError,
    aggregate_trades,
    parse_ohlc_json,
    parse_trades_json,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
REST = REPO_ROOT.parent / "shared" / "data" / "kraken-rest-xbtusdt"
S = NS_PER_SECOND


def _trade(ts_ms: int, price: str, qty: str = "1") -> TradeTick:
    return TradeTick("BTC/USD", ts_ms * 1_000_000, Decimal(price), Decimal(qty), "buy")


def _bar(start_s: int, o: str, h: str, lo: str, c: str, vol: str, count: int, pair: str = "BTC/USD") -> Candle:
    prices = (Decimal(o), Decimal(h), Decimal(lo), Decimal(c))
    return Candle(pair, start_s * S, 60, *prices, Decimal(vol), count)


def test_hand_example() -> None:
    trades = [
        _trade(60_000, "10"),
        _trade(75_000, "12", "0.5"),
        _trade(90_000, "9", "2"),
        _trade(119_999, "11", "0.25"),
        _trade(120_000, "11.5"),
        _trade(240_000, "13", "3"),
    ]
    assert aggregate_trades(trades, 60) == [
        _bar(60, "10", "12", "9", "11", "3.75", 4),
        _bar(120, "11.5", "11.5", "11.5", "11.5", "1", 1),
        _bar(240, "13", "13", "13", "13", "3", 1),
    ]


def test_fill_gaps_emits_flat_zero_volume_bars_at_the_previous_close() -> None:
    trades = [_trade(0, "10"), _trade(30_000, "11"), _trade(200_000, "8")]
    candles = aggregate_trades(trades, 60, fill_gaps=True, pair="BTC/USD")
    assert [c.ts_ns // S for c in candles] == [0, 60, 120, 180]
    assert candles[1] == _bar(60, "11", "11", "11", "11", "0", 0, pair="BTC/USD")
    assert candles[2] == _bar(120, "11", "11", "11", "11", "0", 0, pair="BTC/USD")
    assert candles[3] == _bar(180, "8", "8", "8", "8", "1", 1, pair="BTC/USD")


def test_empty_input_and_bad_arguments() -> None:
    assert aggregate_trades([], 60) == []
    with pytest.raises(ReplayConfigError):
        aggregate_trades([], 0)
    with pytest.raises(ReplayOrderError, match="row 2"):
        aggregate_trades([_trade(100, "1"), _trade(99, "1")], 60)


TRADE_LISTS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3600 * S),
        st.decimals(min_value=Decimal("0.1"), max_value=Decimal(1000), places=1),
        st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(5), places=4),
    ),
    max_size=80,
).map(sorted)


@settings(deadline=None)  # pure CPU work; a loaded CI box must not make it flaky
@given(TRADE_LISTS, st.sampled_from([1, 60, 300]), st.booleans())
def test_candles_preserve_counts_volume_and_extremes(
    rows: list[tuple[int, Decimal, Decimal]], interval_s: int, fill: bool
) -> None:
    trades = [TradeTick("X", ts, price, qty, "buy") for ts, price, qty in rows]
    candles = aggregate_trades(trades, interval_s, fill_gaps=fill)
    assert sum(c.trades for c in candles) == len(trades)
    assert sum((c.volume for c in candles), Decimal(0)) == sum((t.qty for t in trades), Decimal(0))
    starts = [c.ts_ns for c in candles]
    assert starts == sorted(set(starts))
    for candle in candles:
        inside = [t for t in trades if candle.ts_ns <= t.ts_ns < candle.close_ns]
        if inside:
            assert candle.open == inside[0].price and candle.close == inside[-1].price
            assert candle.high == max(t.price for t in inside) and candle.low == min(t.price for t in inside)
        else:
            assert fill and candle.trades == 0 and candle.open == candle.close == candle.high == candle.low
    if fill and candles:
        assert all(b - a == interval_s * S for a, b in itertools.pairwise(starts))


@pytest.mark.skipif(not REST.exists(), reason="reference data ../shared absent")
def test_trades_reproduce_krakens_one_minute_bars_exactly() -> None:
    ohlc = parse_ohlc_json((REST / "http_ohlc.json").read_bytes())
    trades = parse_trades_json((REST / "http_trades.json").read_bytes())
    first, last = trades[0].ts_ns, trades[-1].ts_ns
    # Bars that open inside the trades' span; the one holding the first trade may have earlier trades.
    inside = [c for c in ohlc if first <= c.ts_ns <= last]
    with_trades = [c for c in inside if c.trades > 0]
    assert len(with_trades) == 273  # the count the data README states

    ours = {c.ts_ns: c for c in aggregate_trades(trades, 60)}
    # Candle equality compares open, high, low, close, volume (as numbers) and count, plus pair and interval.
    assert [ours.get(c.ts_ns) for c in with_trades] == with_trades

    filled = {c.ts_ns: c for c in aggregate_trades(trades, 60, fill_gaps=True)}
    assert len(inside) > len(with_trades)
    assert [filled.get(c.ts_ns) for c in inside] == inside
