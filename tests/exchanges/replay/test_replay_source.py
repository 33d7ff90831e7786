"""ReplaySource and format detection on small files in tmp_path, plus the real captures when present."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from engine.domain.market_data import NS_PER_SECOND, Candle, TradeTick
from engine.exchanges.replay import (
    ReplayConfigError,
    ReplayFormat,
    ReplayFormatError,
    ReplayOrderError,
    ReplaySource,
    detect_format,
    detect_format_text,
    event_time_ns,
    load_events,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA = REPO_ROOT.parent / "shared" / "data"
S = NS_PER_SECOND

CSV = """1381093200,122.0,122.0,122.0,122.0,0.1,1
1381096800,123,124,121,123.5,2,3
1381100400,123.5,125,123,124,1,2
"""
TRADES = {
    "error": [],
    "result": {
        "BTC/USDT": [
            ["100.0", "1", 1762795433.5, "b", "l", "", 1],
            ["101.0", "2", 1762795450.25, "s", "m", "", 2],
            ["99.0", "1", 1762795570.0, "b", "l", "", 3],
        ],
        "last": "1762795570000000000",
    },
}
OHLC = {
    "error": [],
    "result": {
        "BTC/USDT": [
            [1762777020, "1", "2", "1", "2", "1.5", "3", 2],
            [1762777080, "2", "2", "2", "2", "0", "0", 0],
            [1762777140, "2", "3", "2", "3", "2.5", "1", 1],
        ],
        "last": 1762777080,
    },
}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "csv": tmp_path / "XBTUSD_60.csv",
        "trades": tmp_path / "trades.json",
        "ohlc": tmp_path / "ohlc.json",
    }
    paths["csv"].write_text(CSV)
    paths["trades"].write_text(json.dumps(TRADES, indent=4))
    paths["ohlc"].write_text(json.dumps(OHLC, indent=4))
    return paths


def test_detect_format_by_content(files: dict[str, Path], tmp_path: Path) -> None:
    assert detect_format(files["csv"]) is ReplayFormat.OHLCVT_CSV
    assert detect_format(files["trades"]) is ReplayFormat.TRADES_JSON
    assert detect_format(files["ohlc"]) is ReplayFormat.OHLC_JSON
    renamed = tmp_path / "XBTUSD_1.csv"
    renamed.write_text(json.dumps(OHLC))  # the name lies; the content decides
    assert detect_format(renamed) is ReplayFormat.OHLC_JSON


def test_detect_format_refusals(tmp_path: Path) -> None:
    cases = {
        "empty.csv": ("  \n", "empty"),
        "header.csv": ("time,open,high,low,close,volume,trades\n1,1,1,1,1,1,1\n", "no header"),
        "error.json": ('{"error": ["EQuery:Unknown asset pair"], "result": {}}', "EQuery:Unknown asset pair"),
        "norows.json": ('{"error": [], "result": {"BTC/USDT": [], "last": 0}}', "no rows"),
        "odd.json": ('{"error": [], "result": {"X": [[null, 1]]}}', "neither OHLC nor Trades"),
    }
    for name, (content, fragment) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(ReplayFormatError, match=fragment):
            detect_format(path)
    assert detect_format_text('{"error": [], "result": {"X": ') is None


def test_detect_format_reads_past_a_long_head(tmp_path: Path) -> None:
    path = tmp_path / "padded.json"
    path.write_text('{"padding": "' + "x" * 70_000 + '", "error": [], "result": {"X": [["1", "1", 1.5, "b"]]}}')
    assert detect_format(path) is ReplayFormat.TRADES_JSON


def test_csv_source(files: dict[str, Path]) -> None:
    source = ReplaySource(files["csv"])
    assert "not loaded" in repr(source)
    assert len(source) == 3 and source.format is ReplayFormat.OHLCVT_CSV
    candles = list(source)
    assert all(isinstance(c, Candle) and c.pair == "BTC/USD" and c.interval_s == 3600 for c in candles)
    # A candle is known at its close.
    assert source.first_ts_ns == (1381093200 + 3600) * S == event_time_ns(candles[0])
    assert source.last_ts_ns == (1381100400 + 3600) * S
    assert list(source.times_ns) == [event_time_ns(c) for c in candles]


def test_iter_from_resumes_at_an_index(files: dict[str, Path]) -> None:
    source = ReplaySource(files["csv"], pair="BTC/USD").load()
    everything = list(source)
    assert list(source.iter_from(0)) == everything
    assert list(source.iter_from(2)) == everything[2:]
    assert list(source.iter_from(3)) == []
    for bad in (-1, 4, True):
        with pytest.raises(ReplayConfigError):
            source.iter_from(bad)
    assert everything[0].pair == "BTC/USD"


def test_index_at_finds_the_first_event_known_at_or_after(files: dict[str, Path]) -> None:
    source = ReplaySource(files["csv"])
    times = list(source.times_ns)
    assert source.index_at(0) == 0
    assert source.index_at(times[1]) == 1
    assert source.index_at(times[1] + 1) == 2
    assert source.index_at(times[-1] + 1) == len(source)


def test_trades_source_and_aggregation(files: dict[str, Path]) -> None:
    trades = ReplaySource(files["trades"])
    assert [type(e) for e in trades] == [TradeTick] * 3
    assert trades.first_ts_ns == 1762795433_500000000 and trades.last_ts_ns == 1762795570 * S

    bars = ReplaySource(files["trades"], aggregate_s=60, fill_gaps=True)
    candles = list(bars)
    assert [c.ts_ns // S for c in candles if isinstance(c, Candle)] == [
        1762795380,
        1762795440,
        1762795500,
        1762795560,
    ]
    assert [c.trades for c in candles if isinstance(c, Candle)] == [1, 1, 0, 1]
    assert len(list(ReplaySource(files["trades"], aggregate_s=60))) == 3


def test_ohlc_source_drops_the_open_candle(files: dict[str, Path]) -> None:
    source = ReplaySource(files["ohlc"], aggregate_s=60)
    assert len(source) == 2 and source.format is ReplayFormat.OHLC_JSON
    assert len(ReplaySource(files["ohlc"], drop_open=False, interval_s=60)) == 3
    with pytest.raises(ReplayConfigError, match="resampling"):
        ReplaySource(files["ohlc"], aggregate_s=300).load()
    with pytest.raises(ReplayConfigError):
        ReplaySource(files["ohlc"], aggregate_s=0)


def test_bad_file_errors_surface_on_load(tmp_path: Path) -> None:
    path = tmp_path / "XBTUSD_60.csv"
    path.write_text("1381093200,1,1,1,1,1,1\n1381096800,1,1,1,1\n")
    source = ReplaySource(path)
    with pytest.raises(ReplayFormatError) as info:
        source.load()
    assert info.value.line == 2 and str(path) in str(info.value)
    with pytest.raises(FileNotFoundError):
        ReplaySource(tmp_path / "missing.csv").load()


def test_from_events_checks_order() -> None:
    early = Candle("X", 0, 60, Decimal(1), Decimal(1), Decimal(1), Decimal(1), Decimal(1), 1)
    trade = TradeTick("X", 30 * S, Decimal(1), Decimal(1), "buy")
    # The trade at 30 s is known before the candle that closes at 60 s.
    source = ReplaySource.from_events([trade, early])
    assert len(source) == 2 and source.format is None and source.first_ts_ns == 30 * S
    with pytest.raises(ReplayOrderError, match="row 2"):
        ReplaySource.from_events([early, trade])
    with pytest.raises(ReplayFormatError, match="no events"):
        ReplaySource.from_events([])


@pytest.mark.skipif(not DATA.exists(), reason="reference data ../shared absent")
def test_real_files_through_the_source() -> None:
    hourly = ReplaySource(DATA / "kraken-ohlcvt" / "XBTUSD_60.csv")
    assert len(hourly) == 50378 and hourly.format is ReplayFormat.OHLCVT_CSV
    first = next(iter(hourly))
    assert isinstance(first, Candle) and first.close == Decimal("122.0") and first.pair == "BTC/USD"
    assert len(list(hourly.iter_from(50000))) == 378

    rest = DATA / "kraken-rest-xbtusdt"
    assert len(ReplaySource(rest / "http_ohlc.json")) == 720
    assert len(ReplaySource(rest / "http_trades.json")) == 1000
    loaded = load_events(rest / "http_trades.json", pair="BTC/USDT")
    assert loaded[0].pair == "BTC/USDT"
