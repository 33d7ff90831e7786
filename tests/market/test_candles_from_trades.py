"""Trades to candles (:class:`engine.market.candles_from_trades.CandleBuilder`) and the download's file formats.

The main check is against real data we did not write: the shipped ``/0/public/Trades`` capture (1,000 XBTUSDT
trades) and ``/0/public/OHLC`` capture (one-minute bars) were taken from Kraken minutes apart. Every OHLC bar from
the first whole minute of the trades up to OHLC's ``last`` (the newest committed bar) must come out of the builder
exactly: open, high, low, close, volume and count, the 273 bars with trades as well as the gap fillers between
and after them. Trades are read with the engine's Kraken parser and the bars straight from the JSON.
"""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from engine.domain.market_data import NS_PER_SECOND, Candle
from engine.exchanges.kraken.protocol.rest import parse_trades
from engine.exchanges.replay.ohlcvt_csv import parse_ohlcvt_csv
from engine.market.candles_from_trades import BuilderState, CandleBuilder, OpenBar, TradeOrderError
from engine.market.history_file import DownloadProgress, ProgressFileError, TradesCursor, ohlcvt_line

DATA = Path(__file__).resolve().parents[2] / "engine" / "data"
D = Decimal
S = NS_PER_SECOND
MINUTE = 60


def _capture() -> tuple[list[tuple[int, D, D]], dict[str, object]]:
    trades = parse_trades((DATA / "kraken_xbtusdt_trades.json").read_text()).trades
    ohlc = json.loads((DATA / "kraken_xbtusdt_1m_ohlc.json").read_text(), parse_float=Decimal)["result"]
    return [(t.ts_ns, t.price, t.qty) for t in trades], ohlc


def test_the_builder_reproduces_every_complete_one_minute_bar_of_krakens_real_captures() -> None:
    trades, ohlc = _capture()
    first_ns = trades[0][0]
    last_committed = ohlc["last"]
    assert isinstance(last_committed, int)
    builder = CandleBuilder("BTC/USDT", MINUTE, BuilderState(first_ns - first_ns % (MINUTE * S)))
    built: list[Candle] = []
    for ts_ns, price, qty in trades:
        built.extend(builder.add(ts_ns, price, qty))
    # OHLC's last committed bar ends when Kraken considered it complete: no later trade can fall into it.
    built.extend(builder.close_through((last_committed + MINUTE) * S))
    by_start = {c.ts_ns // S: c for c in built}

    rows = ohlc["XBTUSDT"]
    assert isinstance(rows, list)
    wanted = [r for r in rows if r[0] * S >= first_ns and r[0] <= last_committed]
    with_trades = [r for r in wanted if r[7] > 0]
    fillers = [r for r in wanted if r[7] == 0]
    assert (len(with_trades), len(fillers)) == (273, 140)  # 273: the figure ../shared/data/README.md states
    for row in wanted:
        got = by_start[row[0]]
        expected = (D(row[1]), D(row[2]), D(row[3]), D(row[4]), D(row[6]), row[7])
        assert (got.open, got.high, got.low, got.close, got.volume, got.trades) == expected, row
    # Fillers: the previous close at every price, no volume, no trade (as OHLC shows them).
    for row in fillers:
        assert row[1] == row[2] == row[3] == row[4] and D(row[6]) == 0 and row[5] == "0.0"
    # Nothing after the newest committed bar is handed out, and the first (partial) minute is not compared.
    assert max(by_start) == last_committed


def test_gap_fillers_carry_the_previous_close_and_none_come_before_the_first_trade() -> None:
    builder = CandleBuilder("ETH/USD", 60, BuilderState(0), zero_volume=D("0E-8"))
    out = builder.add(125 * S, D("10.50"), D("1.5"))  # minute 2: minutes 0 and 1 have no previous close
    out += builder.add(130 * S, D("11.00"), D("0.5"))
    out += builder.add(179 * S + 999_999_999, D("9.75"), D("2"))
    assert out == []
    out = builder.add(301 * S, D("12.00"), D("1"))  # minute 5: minute 2 completes, 3 and 4 are fillers
    assert out == [
        Candle("ETH/USD", 120 * S, 60, D("10.50"), D("11.00"), D("9.75"), D("9.75"), D(4), 3),
        Candle("ETH/USD", 180 * S, 60, D("9.75"), D("9.75"), D("9.75"), D("9.75"), D(0), 0),
        Candle("ETH/USD", 240 * S, 60, D("9.75"), D("9.75"), D("9.75"), D("9.75"), D(0), 0),
    ]
    assert [ohlcvt_line(c) for c in out[1:2]] == ["180,9.75,9.75,9.75,9.75,0.00000000,0\n"]


def test_close_through_hands_out_only_intervals_that_have_ended() -> None:
    builder = CandleBuilder("ETH/USD", 60, BuilderState(0))
    builder.add(61 * S, D("5"), D("1"))
    assert builder.close_through(119 * S) == []  # minute 1 ends at 120 s
    closed = builder.close_through(300 * S)  # minute 1, then fillers for 2, 3, 4 (minute 5 is still open)
    assert [c.ts_ns // S for c in closed] == [60, 120, 180, 240]
    assert [c.trades for c in closed] == [1, 0, 0, 0]
    assert builder.close_through(359 * S) == []
    assert builder.state == BuilderState(300 * S, D("5"), None)
    assert [c.ts_ns // S for c in builder.add(400 * S, D("6"), D("1"))] == [300]


def test_a_trade_in_an_interval_already_handed_out_is_refused() -> None:
    builder = CandleBuilder("ETH/USD", 60, BuilderState(120 * S))
    with pytest.raises(TradeOrderError):
        builder.add(119 * S, D("1"), D("1"))
    builder.add(200 * S, D("1"), D("1"))
    builder.add(250 * S, D("2"), D("1"))
    with pytest.raises(TradeOrderError):
        builder.add(100 * S, D("1"), D("1"))


def test_a_builder_saved_and_restored_at_any_trade_goes_on_as_if_never_stopped() -> None:
    trades, _ = _capture()
    start = trades[0][0] - trades[0][0] % (MINUTE * S)
    end = trades[-1][0] + 180 * S

    def run(stop_at: int | None) -> list[Candle]:
        builder = CandleBuilder("BTC/USDT", MINUTE, BuilderState(start), zero_volume=D("0E-8"))
        out: list[Candle] = []
        for index, (ts_ns, price, qty) in enumerate(trades):
            if index == stop_at:
                saved = DownloadProgress("BTC/USDT", 1, start // S, builder=builder.state).to_json()
                restored = DownloadProgress.from_json(saved).builder
                builder = CandleBuilder("BTC/USDT", MINUTE, restored, zero_volume=D("0E-8"))
            out.extend(builder.add(ts_ns, price, qty))
        return out + builder.close_through(end)

    whole = run(None)
    assert len(whole) > 400
    for stop_at in (1, 2, 57, 500, 998, 999):
        resumed = run(stop_at)
        assert resumed == whole
        assert "".join(map(ohlcvt_line, resumed)) == "".join(map(ohlcvt_line, whole))


def test_file_lines_keep_krakens_digits_and_read_back_as_the_same_candles() -> None:
    candles = [
        Candle("BTC/USDT", 1762795440 * S, 60, D("105433.60000"), D("105440.0"), D("105433.6"), D("105440.00000"),
               D("0.00027625") + D("0.00100000"), 2),
        Candle("BTC/USDT", 1762795500 * S, 60, D("105440.00000"), D("105440.00000"), D("105440.00000"),
               D("105440.00000"), D("0E-8"), 0),
    ]  # fmt: skip
    text = "".join(map(ohlcvt_line, candles))
    assert text == (
        "1762795440,105433.60000,105440.0,105433.6,105440.00000,0.00127625,2\n"
        "1762795500,105440.00000,105440.00000,105440.00000,105440.00000,0.00000000,0\n"
    )
    assert parse_ohlcvt_csv(text, pair="BTC/USDT", interval_s=60) == candles


def test_a_progress_file_round_trips_and_a_damaged_one_is_refused() -> None:
    progress = DownloadProgress(
        "ETH/USD",
        60,
        1704067200,
        out_bytes=1234,
        candles=20,
        builder=BuilderState(1704139200 * S, D("2301.50"), OpenBar(1704139200 * S, D("1"), D("2"), D("0.5"),
                                                                     D("1.5"), D("3.00000000"), 7)),
        trades=TradesCursor(1704140000123456789, 1234567),
        source="trades",
    )  # fmt: skip
    assert DownloadProgress.from_json(progress.to_json()) == progress
    assert DownloadProgress.from_json(progress.to_json()).builder.bar.volume.as_tuple().exponent == -8  # type: ignore[union-attr]
    for damaged in ("", "{}", progress.to_json().replace('"candles": 20', '"candles": "20"'), "[1]"):
        with pytest.raises(ProgressFileError):
            DownloadProgress.from_json(damaged)
