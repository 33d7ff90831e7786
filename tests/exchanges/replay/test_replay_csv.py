"""Kraken OHLCVT CSV parsing: inline fixtures always, the real XBTUSD_60.csv when ../shared is present."""

from decimal import Decimal
from pathlib import Path

import pytest

from engine.domain.market_data import NS_PER_SECOND, Candle
from engine.exchanges.replay import (
    ReplayConfigError,
    ReplayFormatError,
    ReplayOrderError,
    infer_interval_s,
    parse_ohlcvt_csv,
    split_kraken_csv_name,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
OHLCVT_60 = REPO_ROOT.parent / "shared" / "data" / "kraken-ohlcvt" / "XBTUSD_60.csv"

SAMPLE = """1381093200,122.0,122.0,122.0,122.0,0.1,1
1381176000,123.61,123.61,123.61,123.61,0.1,1
1381197600,123.91,123.91,123.9,123.9,1.9916,2
1381201200,124.19,124.19,124.18,124.18,3.7,3
"""


def test_parses_rows_into_candles() -> None:
    candles = parse_ohlcvt_csv(SAMPLE, pair="BTC/USD", interval_s=3600)
    assert len(candles) == 4
    assert candles[2] == Candle(
        pair="BTC/USD",
        ts_ns=1381197600 * NS_PER_SECOND,
        interval_s=3600,
        open=Decimal("123.91"),
        high=Decimal("123.91"),
        low=Decimal("123.9"),
        close=Decimal("123.9"),
        volume=Decimal("1.9916"),
        trades=2,
    )
    assert all(isinstance(c.close, Decimal) for c in candles)


def test_interval_is_inferred_from_the_most_common_gap() -> None:
    # Gaps: 82800, 21600, 3600 -> each once; ties go to the smallest, which a missing bar cannot produce.
    assert parse_ohlcvt_csv(SAMPLE, pair="X")[0].interval_s == 3600
    assert infer_interval_s([0, 60, 120, 300, 360]) == 60
    assert infer_interval_s([5]) is None


def test_kraken_file_names_give_pair_and_interval() -> None:
    assert split_kraken_csv_name("/data/XBTUSD_60.csv") == ("XBTUSD", 3600)  # as written; the source canonicalises
    assert split_kraken_csv_name("ETHEUR_1440.csv") == ("ETHEUR", 86400)
    assert split_kraken_csv_name("candles.csv") == ("candles", None)


def test_blank_lines_and_crlf_are_tolerated() -> None:
    text = "1381093200,1,2,0.5,1.5,10,3\r\n\r\n1381096800,1.5,1.5,1.5,1.5,0,0\r\n"
    candles = parse_ohlcvt_csv(text, pair="X", interval_s=3600)
    assert [c.close for c in candles] == [Decimal("1.5"), Decimal("1.5")]


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ("1381201200,124.19,124.19,124.18", "expected 7 numbers"),
        ("1381201200,124.19,124.19,124.18,124.18,3.7,3,9", "expected 7 numbers"),
        ("1381201200,abc,124.19,124.18,124.18,3.7,3", "expected 7 numbers"),
        ("1381201200.5,124.19,124.19,124.18,124.18,3.7,3", "expected 7 numbers"),
        ("1381201200,NaN,124.19,124.18,124.18,3.7,3", "expected 7 numbers"),
        ("1381201200,124.19,Infinity,124.18,124.18,3.7,3", "finite"),
        ("1381201200,125,124.19,124.18,124.18,3.7,3", "low <= open"),
        ("1381201200,124.19,124.19,124.18,124.18,-3.7,3", "volume >= 0"),
        ("1381201200,124.19,124.19,124.18,124.18,3.7,x", "expected 7 numbers"),
    ],
)
def test_bad_row_reports_file_and_line(row: str, fragment: str) -> None:
    text = "1381093200,122.0,122.0,122.0,122.0,0.1,1\n" + row + "\n"
    with pytest.raises(ReplayFormatError) as info:
        parse_ohlcvt_csv(text, pair="X", interval_s=3600, source="XBTUSD_60.csv")
    assert info.value.line == 2 and info.value.source == "XBTUSD_60.csv"
    assert str(info.value).startswith("XBTUSD_60.csv:2: ")
    assert fragment in str(info.value)
    assert repr(row) in str(info.value)


def test_time_going_backwards_or_repeating_is_an_order_error() -> None:
    text = "1381093200,1,1,1,1,1,1\n1381096800,1,1,1,1,1,1\n1381096800,1,1,1,1,1,1\n"
    with pytest.raises(ReplayOrderError) as info:
        parse_ohlcvt_csv(text, pair="X", interval_s=3600, source="f.csv")
    assert info.value.line == 3
    assert "not after" in str(info.value)


def test_millisecond_timestamps_are_refused() -> None:
    text = "1381093200000,1,1,1,1,1,1\n1381096800000,1,1,1,1,1,1\n"
    with pytest.raises(ReplayFormatError, match="not unix seconds"):
        parse_ohlcvt_csv(text, pair="X", interval_s=3600)


def test_single_row_without_interval_cannot_be_inferred() -> None:
    with pytest.raises(ReplayFormatError, match="cannot infer"):
        parse_ohlcvt_csv("1381093200,1,1,1,1,1,1\n", pair="X")
    assert len(parse_ohlcvt_csv("1381093200,1,1,1,1,1,1\n", pair="X", interval_s=60)) == 1


@pytest.mark.parametrize("bad", [0, -60, True])
def test_bad_interval_is_a_config_error(bad: int) -> None:
    with pytest.raises(ReplayConfigError):
        parse_ohlcvt_csv(SAMPLE, pair="X", interval_s=bad)


@pytest.mark.skipif(not OHLCVT_60.exists(), reason="reference data ../shared absent")
def test_real_kraken_hourly_file() -> None:
    text = OHLCVT_60.read_text()
    head = "".join(text.splitlines(keepends=True)[:3])
    first = parse_ohlcvt_csv(head, pair="BTC/USD", interval_s=3600, source=str(OHLCVT_60))
    assert [c.close for c in first] == [Decimal("122.0"), Decimal("123.61"), Decimal("123.9")]
    assert first[2].volume == Decimal("1.9916") and first[2].trades == 2
    candles = parse_ohlcvt_csv(text, pair="BTC/USD")
    assert len(candles) == 50378
    assert candles[0].interval_s == 3600
    assert candles[-1].ts_ns == 1601506800 * NS_PER_SECOND
    assert candles[-1].close == Decimal("10774.9") and candles[-1].trades == 325
