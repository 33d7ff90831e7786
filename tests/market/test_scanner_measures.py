"""The scanner's vectorised measures against the engine's one-bar-at-a-time ATR and plain formulas, and its
reading of Kraken's Ticker entries (the OpenAPI example, and the real capture in ../shared when present)."""

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.market_data import Candle
from engine.exchanges.catalog import default_instruments
from engine.exchanges.replay import ReplaySource, load_events
from engine.exchanges.replay.columns import CandleColumns
from engine.market import ATR
from engine.market.scanner_inputs import (
    TickerError,
    candles_from_events,
    guess_base_quote,
    instrument_index,
    markets_from_tickers,
    ticker_stats,
)
from engine.market.scanner_measures import efficiency_ratio_last, percentiles, wilder_atr_last

SAMPLE_OHLC = Path(__file__).resolve().parents[2] / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
BARS = st.lists(
    st.tuples(
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000"), places=2),
        st.decimals(min_value=Decimal("0"), max_value=Decimal("50"), places=2),
    ),
    min_size=2,
    max_size=80,
)

# The example of Kraken's OpenAPI spec (schemas/responses/public/ticker.yaml), as REFERENCE.md quotes it.
OPENAPI_EXAMPLE = {
    "a": ["30300.10000", "1", "1.000"],
    "b": ["30300.00000", "1", "1.000"],
    "c": ["30303.20000", "0.00067643"],
    "v": ["4083.67001100", "4412.73601799"],
    "p": ["30706.77771", "30689.13205"],
    "t": [34619, 38907],
    "l": ["29868.30000", "29868.30000"],
    "h": ["31631.00000", "31631.00000"],
    "o": "30502.80000",
}


@settings(max_examples=150, deadline=None)
@given(bars=BARS, period=st.integers(min_value=1, max_value=20))
def test_the_vectorised_atr_is_the_last_value_of_the_engines_wilder_atr(
    bars: list[tuple[Decimal, Decimal]], period: int
) -> None:
    closes = [c for c, _ in bars]
    highs = [c + w for c, w in bars]
    lows = [max(Decimal("0.001"), c - w) for c, w in bars]
    reference = ATR(period)
    last = None
    for high, low, close in zip(highs, lows, closes, strict=True):
        last = reference.update_bar(high, low, close)
    rows = [np.array([[float(x) for x in column]]) for column in (highs, lows, closes)]
    got = wilder_atr_last(rows[0], rows[1], rows[2], period)
    if last is None:
        assert np.isnan(got[0])
    else:
        assert got[0] == pytest.approx(float(last), rel=1e-9, abs=1e-12)


def test_several_pairs_are_measured_in_one_call_each_on_its_own_row() -> None:
    high = np.array([[2.0, 3.0, 4.0, 5.0], [10.0, 10.0, 10.0, 10.0]])
    low = high - 1.0
    close = high - 0.5
    # Row 0: true ranges max(3, 1.5) - min(2, 1.5) = 1.5, then 1.5, 1.5 -> ATR(2) 1.5; row 1: 1, 1, 1 -> 1.
    assert wilder_atr_last(high, low, close, 2) == pytest.approx([1.5, 1.0])
    # Closes 1.5, 2.5, 3.5, 4.5 go straight up (ER 1); 9.5 flat (no path: 0, not a division by zero).
    assert efficiency_ratio_last(close, 3) == pytest.approx([1.0, 0.0])
    assert np.isnan(efficiency_ratio_last(close, 4)).all() and np.isnan(wilder_atr_last(high, low, close, 4)).all()


def test_efficiency_ratio_is_net_move_over_path() -> None:
    close = np.array([[1.0, 3.0, 2.0, 4.0, 3.0, 6.0]])
    # last 4 moves: 3 -> 2 -> 4 -> 3 -> 6: net |6 - 3| = 3, path 1 + 2 + 1 + 3 = 7
    assert efficiency_ratio_last(close, 4)[0] == pytest.approx(3 / 7)


def test_percentiles_share_places_on_ties_and_skip_what_is_missing() -> None:
    values = np.array([5.0, np.nan, 1.0, 5.0, 3.0])
    # present: 1 (place 0), 3 (1), 5 and 5 (places 2 and 3, shared: 2.5); divided by 4 - 1 = 3
    up = percentiles(values, higher_is_better=True)
    assert up[[0, 2, 3, 4]] == pytest.approx([2.5 / 3, 0.0, 2.5 / 3, 1 / 3]) and np.isnan(up[1])
    down = percentiles(values, higher_is_better=False)
    assert down[[0, 2, 3, 4]] == pytest.approx([0.5 / 3, 1.0, 0.5 / 3, 2 / 3])
    assert percentiles(np.array([7.0, np.nan]), higher_is_better=True)[0] == 0.5
    assert np.isnan(percentiles(np.array([np.nan]), higher_is_better=True)).all()


def test_the_openapi_example_reads_as_kraken_documents_it() -> None:
    stats = ticker_stats(OPENAPI_EXAMPLE)
    assert (stats.ask, stats.ask_volume, stats.bid, stats.bid_volume) == (30300.1, 1.0, 30300.0, 1.0)
    assert (stats.last, stats.volume_24h, stats.vwap_24h) == (30303.2, 4412.73601799, 30689.13205)
    assert stats.trades_24h == 38907
    assert (stats.low_24h, stats.high_24h, stats.open_today) == (29868.3, 31631.0, 30502.8)


def test_the_real_ticker_capture_reads_and_ranks(shared_dir: Path) -> None:
    capture = json.loads((shared_dir / "data" / "kraken-rest-xbtusdt" / "http_ticker.json").read_text())
    index = instrument_index(default_instruments().values())
    markets, problems = markets_from_tickers(capture["result"], index)
    assert list(markets) == ["XBTUSDT"]
    market = markets["XBTUSDT"]
    assert problems == []
    assert (market.base, market.quote, market.status) == ("BTC", "USDT", "online")
    assert market.ticker is not None
    assert market.ticker.volume_24h == 163.28908096 and market.ticker.vwap_24h == 105904.39279
    assert market.ticker.ask - market.ticker.bid == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"a": ["1", "1"]}, "Ticker.a"),
        ({"b": ["x", "1", "1"]}, "Ticker.b[0]"),
        ({"v": ["1", "-5"]}, "Ticker.v[1]"),
        ({"p": ["1", "NaN"]}, "Ticker.p[1]"),
        ({"t": [1, "7"]}, "Ticker.t[1]"),
        ({"o": None}, "Ticker.o"),
    ],
)
def test_a_malformed_ticker_entry_is_refused_naming_the_field(change: dict[str, object], named: str) -> None:
    with pytest.raises(TickerError, match=named.replace("[", r"\[").replace("]", r"\]")):
        ticker_stats({**OPENAPI_EXAMPLE, **change})


def test_a_malformed_entry_is_left_out_with_its_reason_and_the_others_kept() -> None:
    index = instrument_index(default_instruments().values())
    tickers = {"XXBTZUSD": OPENAPI_EXAMPLE, "XETHXXBT": {"a": []}, "FOOZEUR": OPENAPI_EXAMPLE, "???": OPENAPI_EXAMPLE}
    markets, problems = markets_from_tickers(tickers, index)
    assert [(k, m.base, m.quote, m.status) for k, m in markets.items()] == [
        ("XXBTZUSD", "BTC", "USD", "online"),
        ("FOOZEUR", "FOO", "EUR", None),
    ]
    assert len(problems) == 2 and "Ticker.XETHXXBT.a" in problems[0] and "Ticker.???" in problems[1]


def test_pair_names_no_catalogue_knows_are_split_at_a_known_quote() -> None:
    assert guess_base_quote("SOLUSD") == ("SOL", "USD")
    assert guess_base_quote("XXBTZEUR") == ("BTC", "EUR")
    assert guess_base_quote("ADAUSDT") == ("ADA", "USDT")
    assert guess_base_quote("FOO/XBT") == ("FOO", "BTC")
    assert guess_base_quote("USD") is None and guess_base_quote("FOOBAR") is None


def test_candles_from_csv_columns_and_from_candle_objects_agree(tmp_path: Path) -> None:
    rows = json.loads(SAMPLE_OHLC.read_text())["result"]["XBTUSDT"]
    csv = tmp_path / "XBTUSDT_1.csv"
    csv.write_text("".join(f"{r[0]},{r[1]},{r[2]},{r[3]},{r[4]},{r[6]},{r[7]}\n" for r in rows))
    columns = ReplaySource(csv).load().events
    assert isinstance(columns, CandleColumns)
    as_objects = [e for e in load_events(SAMPLE_OHLC, drop_open=False) if isinstance(e, Candle)]
    from_columns = candles_from_events(columns, keep=100)
    from_objects = candles_from_events(as_objects, keep=100)
    assert len(from_columns) == len(from_objects) == 100
    for name in ("close_ns", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(from_columns, name), getattr(from_objects, name)), name
    assert from_columns.close_ns[-1] == as_objects[-1].close_ns
    assert from_columns.close[-1] == float(as_objects[-1].close)
