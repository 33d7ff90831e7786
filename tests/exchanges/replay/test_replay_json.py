"""Saved Kraken REST OHLC and Trades responses: inline fixtures, plus real captures when ../shared exists."""

import itertools
import json
from decimal import Decimal
from pathlib import Path

import pytest

from engine.domain.market_data import NS_PER_SECOND, TradeTick
from engine.exchanges.replay import (
    ReplayFormatError,
    ReplayOrderError,
    load_kraken_result,
    parse_ohlc_json,
    parse_trades_json,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
REST = REPO_ROOT.parent / "shared" / "data" / "kraken-rest-xbtusdt"
needs_rest = pytest.mark.skipif(not REST.exists(), reason="reference data ../shared absent")


def _ohlc(rows: list[list[object]], last: object = None) -> str:
    result: dict[str, object] = {"BTC/USDT": rows}
    if last is not None:
        result["last"] = last
    return json.dumps({"error": [], "result": result})


OHLC_ROWS: list[list[object]] = [
    [1762777020, "106038.2", "106040.0", "106030.1", "106035.5", "106036.0", "0.50000000", 7],
    [1762777080, "106035.5", "106035.5", "106035.5", "106035.5", "0.0", "0.00000000", 0],
    [1762777140, "106035.5", "106050.0", "106035.5", "106049.9", "106045.2", "1.25000000", 3],
]

TRADES_TEXT = """{"error": [], "result": {"BTC/USDT": [
  ["105433.60000", "0.00027625", 1762795433.9717445, "b", "l", "", 10218208],
  ["105410.10000", "0.00005000", 1762795457.8467374, "s", "m", "", 10218209],
  ["105410.10000", "0.10000000", 1762795457.8467374, "s", "m", "", 10218210],
  ["105411.00000", "1.00000000", 1762795460, "b", "l", "", 10218211]
 ], "last": "1762795460000000000"}}"""


def test_ohlc_drops_the_open_candle_using_last() -> None:
    candles = parse_ohlc_json(_ohlc(OHLC_ROWS, last=1762777080))
    assert [c.ts_ns for c in candles] == [1762777020 * NS_PER_SECOND, 1762777080 * NS_PER_SECOND]
    first = candles[0]
    assert (first.pair, first.interval_s, first.trades) == ("BTC/USDT", 60, 7)
    assert (first.open, first.high, first.low, first.close) == (
        Decimal("106038.2"),
        Decimal("106040.0"),
        Decimal("106030.1"),
        Decimal("106035.5"),
    )
    assert first.volume == Decimal("0.5")  # the volume column, not vwap


def test_ohlc_without_last_drops_the_final_row_and_can_keep_it() -> None:
    assert len(parse_ohlc_json(_ohlc(OHLC_ROWS))) == 2
    kept = parse_ohlc_json(_ohlc(OHLC_ROWS), drop_open=False, pair="BTC/USDT", interval_s=60)
    assert len(kept) == 3 and {c.pair for c in kept} == {"BTC/USDT"}


def test_ohlc_bad_rows_report_their_index() -> None:
    bad = [*OHLC_ROWS[:1], [1762777080, "x", "1", "1", "1", "0", "0", 0], OHLC_ROWS[2]]
    with pytest.raises(ReplayFormatError) as info:
        parse_ohlc_json(_ohlc(bad), source="ohlc.json")
    assert info.value.row == 2 and "ohlc.json: row 2" in str(info.value)
    with pytest.raises(ReplayFormatError, match="row 1"):
        parse_ohlc_json(_ohlc([[1762777080, "1", "1"], *OHLC_ROWS]))
    with pytest.raises(ReplayFormatError, match="inconsistent"):
        parse_ohlc_json(_ohlc([[1762777020, "5", "4", "3", "4", "0", "1", 1], *OHLC_ROWS[1:]]), interval_s=60)
    with pytest.raises(ReplayOrderError, match="row 2"):
        parse_ohlc_json(_ohlc([OHLC_ROWS[1], OHLC_ROWS[0], OHLC_ROWS[2]]))


def test_trades_time_is_parsed_exactly_from_its_text() -> None:
    trades = parse_trades_json(TRADES_TEXT)
    assert trades[0] == TradeTick(
        pair="BTC/USDT",
        ts_ns=1762795433971744500,
        price=Decimal("105433.60000"),
        qty=Decimal("0.00027625"),
        side="buy",
        trade_id=10218208,
    )
    # A binary float would give 1762795457846737408 here.
    assert trades[1].ts_ns == 1762795457846737400 and trades[1].side == "sell"
    assert trades[2].ts_ns == trades[1].ts_ns  # equal times are fine
    assert trades[3].ts_ns == 1762795460 * NS_PER_SECOND
    assert [t.trade_id for t in trades] == [10218208, 10218209, 10218210, 10218211]


def test_trades_pair_label_and_key_choice() -> None:
    assert {t.pair for t in parse_trades_json(TRADES_TEXT, pair="BTC/USDT")} == {"BTC/USDT"}
    two = json.dumps({"error": [], "result": {"A": [], "B": []}})
    with pytest.raises(ReplayFormatError, match="one pair"):
        parse_trades_json(two)
    assert parse_trades_json(two, pair="B") == []


@pytest.mark.parametrize(
    "row",
    [
        ["105433.6", "0.1", 1762795433.9, "x", "l", "", 1],
        ["105433.6", "0.1", "soon", "b", "l", "", 1],
        ["abc", "0.1", 1762795433.9, "b", "l", "", 1],
        ["105433.6", "0.1", 1762795433.9, "b", "l", "", "7"],
        ["105433.6", "-0.1", 1762795433.9, "b", "l", "", 1],
        ["105433.6", "0.1"],
    ],
)
def test_bad_trade_rows_report_their_index(row: list[object]) -> None:
    good = ["105433.6", "0.1", 1762795400.5, "b", "l", "", 0]
    text = json.dumps({"error": [], "result": {"BTC/USDT": [good, row]}})
    with pytest.raises(ReplayFormatError) as info:
        parse_trades_json(text, source="trades.json")
    assert info.value.row == 2 and str(info.value).startswith("trades.json: row 2: ")


def test_trades_going_back_in_time_is_an_order_error() -> None:
    rows = [["1", "1", 1762795400.5, "b", "l", "", 1], ["1", "1", 1762795400.4, "b", "l", "", 2]]
    with pytest.raises(ReplayOrderError, match="row 2"):
        parse_trades_json(json.dumps({"error": [], "result": {"X": rows}}))


def test_kraken_errors_and_non_responses_are_format_errors() -> None:
    with pytest.raises(ReplayFormatError, match="EQuery:Unknown asset pair"):
        load_kraken_result('{"error": ["EQuery:Unknown asset pair"]}')
    with pytest.raises(ReplayFormatError, match="not valid JSON"):
        load_kraken_result("{nope")
    with pytest.raises(ReplayFormatError, match="result"):
        load_kraken_result('{"error": []}')
    with pytest.raises(ReplayFormatError, match="response"):
        load_kraken_result("[1, 2]")


@needs_rest
def test_real_ohlc_capture() -> None:
    candles = parse_ohlc_json((REST / "http_ohlc.json").read_bytes(), source="http_ohlc.json")
    assert len(candles) == 720  # 721 rows minus the open candle after "last"
    assert candles[-1].ts_ns == 1762820160 * NS_PER_SECOND
    assert {c.interval_s for c in candles} == {60} and {c.pair for c in candles} == {"XBTUSDT"}
    assert all(b.ts_ns - a.ts_ns == 60 * NS_PER_SECOND for a, b in itertools.pairwise(candles))


@needs_rest
def test_real_trades_capture() -> None:
    trades = parse_trades_json((REST / "http_trades.json").read_bytes())
    assert len(trades) == 1000
    assert [t.trade_id for t in trades] == list(range(10218208, 10219208))
    assert trades[-1].price == Decimal("105899.4") and trades[-1].side == "sell"
    # The response's "last" cursor is the exact ns time; the JSON float keeps ~100 ns of it.
    assert abs(trades[-1].ts_ns - 1762820035982277754) < 1000
