"""A large candle file is checked once and replayed chunk by chunk (engine.exchanges.replay.csv_stream).

The reference is the whole-file parser (one text, one parse) and Python's csv module: the streamed candles, their
times, random reads, resumption at any index and the errors (with their line numbers in the whole file) must be
the same; a backtest over a streamed file makes exactly the fills of the same file read at once.
"""

import csv
import random
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from engine.domain.market_data import NS_PER_SECOND, Candle
from engine.exchanges.replay import ReplaySource
from engine.exchanges.replay.csv_stream import StreamedCandles
from engine.exchanges.replay.errors import ReplayFormatError, ReplayOrderError
from engine.exchanges.replay.ohlcvt_csv import parse_ohlcvt_csv
from engine.persistence.store import Store
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import config_from_mapping
from engine.runtime.sources import ReplayMarketSource

START_S = 1_600_000_000


def rows(count: int, seed: int = 3, step_s: int = 300) -> list[str]:
    rng = random.Random(seed)
    price, out, t = 20_000.0, [], START_S
    for i in range(count):
        t += step_s * (1 if rng.random() > 0.1 else 2)  # some bars missing, as in Kraken's files
        open_ = price
        price *= 1 + rng.gauss(0, 0.004)
        high, low = max(open_, price) + rng.random() * 5, min(open_, price) - rng.random() * 5
        out.append(f"{t},{open_:.1f},{high:.1f},{low:.1f},{price:.1f},{rng.random():.8f},{i % 9}")
    return out


def write(folder: Path, lines: list[str], name: str = "XBTUSD_5.csv") -> Path:
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_streamed_candles_equal_the_whole_file_parsed_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, rows(3_000))
    text = path.read_text()
    whole = parse_ohlcvt_csv(text, pair="BTC/USD", interval_s=300)
    streamed = StreamedCandles.scan(path, pair="BTC/USD", interval_s=None, chunk_bytes=4_096)
    assert len(streamed._chunks) > 20  # really in many pieces
    assert len(streamed) == len(whole) == 3_000
    assert list(streamed) == whole
    # And against the csv module: times and closes as written.
    with path.open(newline="") as f:
        table = list(csv.reader(f))
    assert [c.ts_ns // NS_PER_SECOND for c in streamed] == [int(r[0]) for r in table]
    assert [c.close for c in streamed] == [Decimal(r[4]) for r in table]
    rng = random.Random(1)
    for start in [0, 1, 2_999, 3_000, *rng.sample(range(3_000), 25)]:
        assert list(streamed.iter_from(start)) == whole[start:]
    for index in rng.sample(range(3_000), 50):
        assert streamed[index] == whole[index]
    closes = [c.close_ns for c in whole]
    assert streamed.close_times_ns() == closes
    assert (streamed.first_close_ns, streamed.last_close_ns) == (closes[0], closes[-1])
    for probe in [closes[0] - 1, closes[0], closes[-1], closes[-1] + 1, *(closes[i] + 1 for i in range(0, 3_000, 97))]:
        assert streamed.index_at(probe) == sum(1 for c in closes if c < probe)


def test_a_replay_source_streams_a_file_above_its_threshold(tmp_path: Path) -> None:
    path = write(tmp_path, rows(2_000))
    at_once = ReplaySource(path).load()
    streamed = ReplaySource(path, stream_above_bytes=1_000).load()
    assert isinstance(streamed.events, StreamedCandles)
    assert not isinstance(at_once.events, StreamedCandles)
    assert list(streamed.iter_from(0)) == list(at_once.iter_from(0))
    assert list(streamed.iter_from(1_234)) == list(at_once.iter_from(1_234))
    assert (streamed.first_ts_ns, streamed.last_ts_ns) == (at_once.first_ts_ns, at_once.last_ts_ns)
    for ts in (at_once.times_ns[0], at_once.times_ns[777] + 1, at_once.times_ns[-1] + 1):
        assert streamed.index_at(ts) == at_once.index_at(ts)


def plain_window(candles: list[Candle], start_ns: int | None, end_ns: int | None) -> list[Candle]:
    """The backtest's window, read plainly: candles opening at or after the start and closing by the end."""
    return [
        c
        for c in candles
        if (start_ns is None or c.ts_ns >= start_ns) and (end_ns is None or c.ts_ns + c.interval_s * 10**9 <= end_ns)
    ]


def test_a_window_of_a_streamed_file_is_the_window_of_the_whole_file_and_stays_streamed(tmp_path: Path) -> None:
    path = write(tmp_path, rows(3_000, seed=5))
    whole = parse_ohlcvt_csv(path.read_text(), pair="BTC/USD", interval_s=300)
    streamed = ReplaySource(path, stream_above_bytes=1_000).load()
    chunks = streamed.events._chunks if isinstance(streamed.events, StreamedCandles) else []
    edges = [chunk.first_row for chunk in chunks[1:6]]  # windows starting and ending on chunk boundaries too
    rng = random.Random(2)
    picks = [
        (0, 2_999),
        (edges[0], edges[1]),
        (edges[0] - 1, edges[3]),
        *(sorted(rng.sample(range(3_000), 2)) for _ in range(30)),
    ]
    for i, j in picks:
        for start_ns, end_ns in (
            (whole[i].ts_ns, whole[j].close_ns),  # exactly candles i..j
            (whole[i].ts_ns - 1, whole[j].close_ns + 1),  # a nanosecond wider: the same candles (i-1 closes late)
            (whole[i].ts_ns + 1, whole[j].close_ns - 1),  # a nanosecond narrower: i and j fall out
            (None, whole[j].close_ns),
            (whole[i].ts_ns, None),
        ):
            expected = plain_window(whole, start_ns, end_ns)
            windowed = streamed.window(start_ns, end_ns)
            if not expected:
                assert windowed is None
                continue
            assert windowed is not None and isinstance(windowed.events, StreamedCandles)
            assert list(windowed.iter_from(0)) == expected
            assert len(windowed) == len(expected)
            k = rng.randrange(len(expected))
            assert windowed.events[k] == expected[k]
            assert list(windowed.iter_from(k)) == expected[k:]
            assert (windowed.first_ts_ns, windowed.last_ts_ns) == (expected[0].close_ns, expected[-1].close_ns)
    at_once = ReplaySource(path, stream_above_bytes=None).load()
    inside = at_once.window(whole[10].ts_ns, whole[20].close_ns)
    assert inside is not None and list(inside.iter_from(0)) == whole[10:21]
    assert at_once.window(whole[-1].close_ns, None) is None


@pytest.mark.parametrize("bad_at", [5, 1_500, 2_999])
def test_a_bad_line_is_reported_with_its_number_in_the_whole_file(tmp_path: Path, bad_at: int) -> None:
    lines = rows(3_000)
    lines[bad_at] = lines[bad_at].replace(",", ",x", 1)
    path = write(tmp_path, lines)
    with pytest.raises(ReplayFormatError) as whole:
        parse_ohlcvt_csv(path.read_text(), pair="BTC/USD", source=str(path))
    with pytest.raises(ReplayFormatError) as streamed:
        StreamedCandles.scan(path, pair="BTC/USD", interval_s=None, chunk_bytes=4_096)
    assert whole.value.line == streamed.value.line == bad_at + 1
    assert str(streamed.value) == str(whole.value)


def test_time_going_back_across_a_chunk_boundary_is_refused(tmp_path: Path) -> None:
    lines = rows(3_000)
    streamed = StreamedCandles.scan(write(tmp_path, lines), pair="BTC/USD", interval_s=None, chunk_bytes=4_096)
    boundary = streamed._chunks[5].first_row  # the first row of a later chunk goes back in time
    lines[boundary] = f"{START_S},{lines[boundary].split(',', 1)[1]}"
    with pytest.raises(ReplayOrderError) as refused:
        StreamedCandles.scan(write(tmp_path, lines), pair="BTC/USD", interval_s=None, chunk_bytes=4_096)
    assert refused.value.line == boundary + 1


def test_an_empty_file_has_nothing_to_replay(tmp_path: Path) -> None:
    path = tmp_path / "XBTUSD_5.csv"
    path.write_text("")
    with pytest.raises(ReplayFormatError, match="empty"):
        ReplaySource(path, stream_above_bytes=-1).load()


@pytest.mark.anyio
async def test_a_backtest_over_a_streamed_file_makes_the_same_fills(tmp_path: Path) -> None:
    path = write(tmp_path, rows(4_000, seed=11))
    config = config_from_mapping(
        {
            "market": {"speed": "max", "file": str(path)},
            "strategies": [{"name": "ema", "kind": "ema_cross", "pair": "XBTUSD", "params": {"fast": 5, "slow": 20}}],
        }
    )

    async def backtest(threshold: int | None, db: Path, stops: tuple[int, ...] = ()) -> list[tuple[object, ...]]:
        for count in (*stops, None):
            replay = ReplaySource(path, stream_above_bytes=threshold)
            source = ReplayMarketSource(replay, None, path.name)
            engine = Engine.from_config(config, db, source=source, options=RunOptions(max_events=count))
            with anyio.fail_after(120):
                await engine.run()
        if threshold is not None:
            assert isinstance(replay.events, StreamedCandles)
        with Store.open_readonly(db) as store:
            return [
                tuple(r)
                for r in store.db.execute("SELECT ts_ns, side, price, qty, fee FROM fills ORDER BY ts_ns, trade_id")
            ]

    at_once = await backtest(None, tmp_path / "a.db")
    assert len(at_once) > 20
    assert await backtest(2_048, tmp_path / "b.db") == at_once
    # Stopped and resumed mid-file (inside chunks and on the way): the same fills again.
    assert await backtest(2_048, tmp_path / "c.db", stops=(1_000, 2_345)) == at_once
