"""``trading-mcp download`` against the fake Kraken serving several thousand ETH/USD trades over five days.

Expected candles come from the replay's own trade aggregator (:func:`engine.exchanges.replay.aggregate.
aggregate_trades`, which the download does not use) over the generated trades, not from the download's builder.
Interruptions (a Kraken error after a few pages, a torn last line, a SIGKILLed process) are followed by the same
command, and the file is compared byte for byte with an uninterrupted download.
"""

import json
import os
import random
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from io import StringIO
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from fakes.kraken_fake import FakeKraken, real_pairs

from engine.domain.market_data import NS_PER_SECOND, Candle, TradeTick
from engine.exchanges.kraken.protocol.errors import KrakenRetryableError
from engine.exchanges.kraken.rest_client import KrakenRestClient
from engine.exchanges.replay.aggregate import aggregate_trades
from engine.exchanges.replay.ohlcvt_csv import parse_ohlcvt_csv
from engine.market.history_file import DownloadProgress, progress_path
from engine.runtime.cli_download import ProgressDisplay, find_instrument
from engine.runtime.history_download import (
    DOWNLOAD_RETRY,
    DownloadReport,
    DownloadRequest,
    HistoryDownload,
    ProgressEvent,
    SourceChoice,
)
from engine.runtime.markets_view import PublicPacer
from trading_mcp.cli import main

pytestmark = pytest.mark.anyio
D = Decimal
S = NS_PER_SECOND
HOUR = 3600
START_S = 1704067200  # 2024-01-01 00:00Z
DAYS = 5
QUIET_HOURS = range(30, 35)  # no trade at all: five gap fillers
NOW_NS = (START_S + DAYS * 24 * HOUR + 3 * HOUR + 600) * S  # the fake's clock: 10 minutes into hour 123
PAIR = "ETHUSD"  # the fake's altname; the download names the pair by the catalogue


def history(seed: int = 7) -> list[tuple[int, str, str, str]]:
    """Trades (ts_ns, price, qty, side): a few the day before, then every hour of five days but the quiet ones;
    prices swing over two days (so a moving-average cross trades); times on 100 µs (the fake's time text)."""
    rng = random.Random(seed)
    rows: list[tuple[int, str, str, str]] = []
    for k in range(5):
        rows.append(((START_S - 86_400 + k * 977) * S, "2250.00", "0.5", "buy"))
    rows.append((START_S * S, "2300.00", "1.25000000", "sell"))  # exactly at the first interval's start
    for hour in range(DAYS * 24):
        if hour in QUIET_HOURS:
            continue
        base = 2300 + 150 * ((hour % 48) / 24 - 1 if hour % 48 >= 24 else 1 - (hour % 48) / 24)
        offsets = sorted(rng.sample(range(1, HOUR * 10_000), rng.randint(30, 90)))
        if hour == 50:
            offsets[-1] = HOUR * 10_000 - 1  # the last 100 µs of the hour
        for off in offsets:
            price = D(str(round(base + rng.uniform(-8, 8), 2))).quantize(D("0.01"))
            qty = D(rng.randint(1, 400_000_000)).scaleb(-8)
            rows.append(((START_S + hour * HOUR) * S + off * 100_000, f"{price}", f"{qty}", rng.choice("bs")))
    rows.append(((START_S + 51 * HOUR) * S, "2400.00", "0.10000000", "buy"))  # exactly on an hour boundary
    rows.sort(key=lambda r: r[0])
    return rows


TRADES = history()


def expected_candles(now_ns: int = NOW_NS, trades: list[tuple[int, str, str, str]] = TRADES) -> list[Candle]:
    """The replay's aggregator over the trades from START, then fillers up to the last hour ended 5 s before now."""
    ticks = [TradeTick("ETH/USD", t, D(p), D(q), "buy") for t, p, q, _ in trades if t >= START_S * S]
    candles = aggregate_trades(ticks, HOUR, fill_gaps=True, pair="ETH/USD")
    close = candles[-1].close
    start = candles[-1].ts_ns + HOUR * S
    while start + HOUR * S <= now_ns - 5 * S:
        candles.append(Candle("ETH/USD", start, HOUR, close, close, close, close, D(0), 0))
        start += HOUR * S
    return candles


@dataclass
class FakeTime:
    """A clock that moves only when slept on; sleeps are recorded, never waited."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await anyio.lowlevel.checkpoint()


@dataclass
class Run:
    report: DownloadReport
    rest: KrakenRestClient
    pacer_time: FakeTime
    retry_time: FakeTime
    events: list[ProgressEvent]


async def download(
    fake: FakeKraken, out: Path, *, source: SourceChoice = "auto", since: int | None = START_S, interval: int = 60
) -> Run:
    pacer_time, retry_time = FakeTime(), FakeTime()
    events: list[ProgressEvent] = []
    request = DownloadRequest(find_instrument("ETH/USD"), interval, since, out, source)
    job = HistoryDownload(
        request,
        pacer=PublicPacer(burst=1, interval_s=1.0, clock=pacer_time.monotonic, sleep=pacer_time.sleep),
        clock_ns=lambda: fake.clock_ns(),
        on_progress=events.append,
    )
    job.prepare()
    async with KrakenRestClient(
        fake.rest_url,
        retry=DOWNLOAD_RETRY,
        monotonic=retry_time.monotonic,
        sleep=retry_time.sleep,
        rand=lambda: 0.5,
        clock_ns=lambda: fake.clock_ns(),
    ) as rest:
        report = await job.run(rest)
    return Run(report, rest, pacer_time, retry_time, events)


@pytest.fixture
async def fake() -> AsyncIterator[FakeKraken]:
    clock = [NOW_NS]
    async with FakeKraken(pairs=real_pairs(), clock_ns=lambda: clock[0]) as kraken:
        kraken.trade_history(PAIR, TRADES)
        kraken.now = clock  # type: ignore[attr-defined]
        yield kraken


def config_file(tmp_path: Path, fake: FakeKraken) -> Path:
    path = tmp_path / "kraken.toml"
    path.write_text(f'[kraken]\nrest_url = "{fake.rest_url}"\n')
    return path


async def cli(*args: str) -> int:
    return await anyio.to_thread.run_sync(main, ["download", *args])


def read_candles(path: Path) -> list[Candle]:
    return parse_ohlcvt_csv(path.read_text(), pair="ETH/USD", interval_s=HOUR)


async def test_a_download_pages_through_the_whole_history_into_the_candles_kraken_would_show(
    fake: FakeKraken, tmp_path: Path
) -> None:
    out = tmp_path / "ETHUSD_60.csv"
    recent = (START_S + 100 * HOUR) * S  # OHLC's window: from hour 100 on, far later than --since
    fake.market.candles[(PAIR, 60)] = [
        {"begin_ns": recent + k * HOUR * S, "open": D(1), "high": D(1), "low": D(1), "close": D(1), "vwap": D(1),
         "volume": D(1), "trades": 1}
        for k in range(20)
    ]  # fmt: skip
    with anyio.fail_after(60):
        run = await download(fake, out)
    expected = expected_candles()
    assert len(TRADES) > 5000 and len(expected) == DAYS * 24 + 3
    assert read_candles(out) == expected
    assert [c.ts_ns // S - START_S for c in expected if c.trades == 0] == [
        h * HOUR for h in (*QUIET_HOURS, 120, 121, 122)
    ]
    # Kraken's digits, as the fake sent them: the first candle opens with the trade at the very start.
    assert out.read_text().splitlines()[0].startswith(f"{START_S},2300.00,")
    assert ",0.00000000,0" in out.read_text()
    report = run.report
    wanted = sum(1 for t in TRADES if t[0] >= START_S * S)
    assert (report.source, report.trades, report.written, report.total) == (
        "trades",
        wanted,
        len(expected),
        len(expected),
    )
    assert "OHLC holds the latest 720 candles, from 2024-01-05 04:00Z, not back to 2024-01-01 00:00Z" in report.note
    # Every page from the start: ceil(trades / 1000) full or short pages, then the clock and one more page.
    assert fake.calls["Trades"] == report.pages == wanted // 1000 + 2
    assert (fake.calls["OHLC"], fake.calls["Time"]) == (1, 1)
    # One call a second (the pacer's clock), never more: OHLC, the pages and the clock, each a second apart.
    calls = fake.calls["OHLC"] + fake.calls["Trades"] + fake.calls["Time"]
    assert run.pacer_time.slept == [1.0] * (calls - 1)
    assert run.events[-1].done_ns == run.events[-1].target_ns == NOW_NS
    progress = DownloadProgress.from_json(progress_path(out).read_text())
    assert progress.finished and progress.out_bytes == out.stat().st_size and progress.candles == len(expected)


async def test_rate_limits_and_server_errors_are_waited_out_then_retried(fake: FakeKraken, tmp_path: Path) -> None:
    with anyio.fail_after(60):
        await download(fake, tmp_path / "plain.csv")
    fake.faults.errors["Trades"] = ["EAPI:Rate limit exceeded", "EAPI:Rate limit exceeded"]
    fake.faults.http_status["Time"] = [503]
    with anyio.fail_after(60):
        run = await download(fake, tmp_path / "retried.csv")
    assert (tmp_path / "retried.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()
    assert run.rest.retries == 3
    # A rate limit waits at least one call's decay of Kraken's counter (starter tier: 1 / 0.33 s).
    assert len(run.retry_time.slept) == 3 and all(s >= 1 / 0.33 for s in run.retry_time.slept[:2])


async def test_retries_are_bounded_and_what_was_downloaded_is_kept(fake: FakeKraken, tmp_path: Path) -> None:
    out = tmp_path / "ETHUSD_60.csv"
    fake.faults.errors["Trades"] = [None, None, *["EAPI:Rate limit exceeded"] * 20]  # type: ignore[list-item]
    with anyio.fail_after(60), pytest.raises(KrakenRetryableError, match="Rate limit"):
        await download(fake, out)
    assert fake.calls["Trades"] == 2 + 1 + DOWNLOAD_RETRY.max_attempts  # type: ignore[operator]
    progress = DownloadProgress.from_json(progress_path(out).read_text())
    assert progress.candles == len(read_candles(out)) > 0 and not progress.finished


async def test_a_kraken_error_mid_way_is_one_line_and_the_same_command_continues_to_the_same_bytes(
    fake: FakeKraken, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_file(tmp_path, fake)
    args = ["--pair", "eth-usd", "--interval", "60", "--since", "2024-01-01", "--pace", "0", "--config", str(config)]
    with anyio.fail_after(60):
        assert await cli(*args, "--out", str(tmp_path / "whole.csv"), "--no-progress") == 0
    capsys.readouterr()
    out = tmp_path / "ETHUSD_60.csv"
    fake.faults.errors["Trades"] = [None, None, None, "EQuery:Unknown asset pair"]  # type: ignore[list-item]
    with anyio.fail_after(60):
        assert await cli(*args, "--out", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("trading-mcp download: Kraken answered EQuery:Unknown asset pair; kept ")
    assert err[-1].endswith("run the same command to continue") and "Traceback" not in "\n".join(err)
    kept = out.read_bytes()
    assert 0 < len(kept) < len((tmp_path / "whole.csv").read_bytes())
    assert (tmp_path / "whole.csv").read_bytes().startswith(kept)
    with out.open("ab") as torn:  # a run killed in the middle of a write leaves half a line the next run cuts
        torn.write(b"1704300000,2301.5")
    with anyio.fail_after(60):
        assert await cli(*args, "--out", str(out), "--no-progress") == 0
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()
    text = capsys.readouterr().out
    assert "continued the download" in text and "source: Kraken's Trades" in text


async def test_a_download_killed_with_sigkill_is_continued_by_the_same_command_to_the_same_bytes(
    fake: FakeKraken, tmp_path: Path
) -> None:
    config = config_file(tmp_path, fake)
    args = ["--pair", "ETH/USD", "--interval", "60", "--since", "2024-01-01", "--pace", "0", "--config", str(config)]
    with anyio.fail_after(60):
        assert await cli(*args, "--out", str(tmp_path / "whole.csv"), "--no-progress") == 0
    out = tmp_path / "ETHUSD_60.csv"
    fake.faults.hold_after["Trades"] = fake.calls["Trades"] + 3  # the 4th page of the next run is never answered
    code = "import sys; from trading_mcp.cli import main; sys.exit(main(sys.argv[1:]))"
    command = [sys.executable, "-c", code, "download", *args, "--out", str(out)]
    with anyio.fail_after(120):
        async with await anyio.open_process(command, env=dict(os.environ)) as process:
            await fake.wait_until(lambda: fake.held_requests >= 1)
            process.kill()  # SIGKILL: no handler, no cleanup
            assert await process.wait() == -9
    fake.release_held()
    progress = DownloadProgress.from_json(progress_path(out).read_text())
    assert not progress.finished and progress.trades is not None and progress.candles > 0
    assert out.stat().st_size >= progress.out_bytes
    with anyio.fail_after(60):
        assert await cli(*args, "--out", str(out), "--no-progress") == 0
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()


async def test_a_finished_download_run_again_adds_only_what_is_new(fake: FakeKraken, tmp_path: Path) -> None:
    out = tmp_path / "ETHUSD_60.csv"
    with anyio.fail_after(60):
        await download(fake, out)
    before = out.read_bytes()
    later = (START_S + DAYS * 24 * HOUR + 5 * HOUR) * S
    more = [(later + k * 60 * S, "2310.00", "0.20000000", "sell") for k in range(1, 5)]
    fake.trade_history(PAIR, more)
    fake.now[0] = later + 3 * HOUR * S  # type: ignore[attr-defined]
    calls = fake.calls["Trades"]
    with anyio.fail_after(60):
        run = await download(fake, out, since=None)
    assert out.read_bytes().startswith(before)
    assert read_candles(out) == expected_candles(later + 3 * HOUR * S, TRADES + more)
    assert run.report.resumed and run.report.written == len(read_candles(out)) - len(before.splitlines())
    assert fake.calls["Trades"] - calls == 2  # from the saved cursor: the new trades, then the confirming page


async def test_ohlc_is_used_when_its_720_candles_reach_back_far_enough_and_trades_otherwise(
    fake: FakeKraken, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = START_S + 100 * HOUR
    rows = [
        {"begin_ns": (first + k * HOUR) * S, "open": D("2301.1"), "high": D("2310.25"), "low": D("2299.5"),
         "close": D(f"{2300 + k}.5"), "vwap": D("2303.2"), "volume": D("12.34560000"), "trades": 40 + k}
        for k in range(24)
    ]  # fmt: skip
    fake.market.candles[(PAIR, 60)] = rows
    out = tmp_path / "ohlc.csv"
    with anyio.fail_after(60):
        run = await download(fake, out, since=first + 5 * HOUR + 1800)  # mid-hour: its whole hour is included
    lines = out.read_text().splitlines()
    assert lines[0] == f"{first + 5 * HOUR},2301.1,2310.25,2299.5,2305.5,12.34560000,45"
    assert len(lines) == 24 - 5 - 1  # the last row is the candle still open
    assert (run.report.source, fake.calls["Trades"], fake.calls["OHLC"]) == ("ohlc", 0, 1)
    # --source ohlc for older candles: refused in one line, nothing written.
    config = config_file(tmp_path, fake)
    refused = tmp_path / "old.csv"
    with anyio.fail_after(60):
        code = await cli("--pair", "XETHZUSD", "--since", "2024-01-01", "--out", str(refused), "--source", "ohlc",
                         "--pace", "0", "--config", str(config))  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--source trades" in err
    assert not refused.exists() and not progress_path(refused).exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--pair", "FOO/BAR"], "unknown pair 'FOO/BAR'"),
        (["--pair", "ETH/USD", "--interval", "7"], "--interval must be one of"),
        (["--pair", "ETH/USD", "--since", "yesterday"], "--since 'yesterday'"),
        (["--pair", "ETH/USD", "--since", "2999-01-01"], "is not in the past"),
        (["--pair", "ETH/USD", "--pace", "fast"], "--pace must be"),
    ],
)
async def test_bad_input_is_refused_in_one_line_before_any_call_to_kraken(
    fake: FakeKraken, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    config = config_file(tmp_path, fake)
    out = tmp_path / "x.csv"
    base = ["--since", "2024-01-01", "--out", str(out), "--config", str(config)]
    with anyio.fail_after(60):
        assert await cli(*base, *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("trading-mcp download: ") and says in err
    assert sum(fake.calls.values()) == 0
    assert not out.exists() and not progress_path(out).exists()


async def test_a_file_of_another_download_is_left_alone(fake: FakeKraken, tmp_path: Path) -> None:
    out = tmp_path / "ETHUSD_60.csv"
    with anyio.fail_after(60):
        await download(fake, out)
    before = out.read_bytes(), progress_path(out).read_bytes()
    config = config_file(tmp_path, fake)
    calls = sum(fake.calls.values())
    others = (
        ["--pair", "BTC/USD"],
        ["--pair", "ETH/USD", "--interval", "15"],
        ["--pair", "ETH/USD", "--since", "2023-06-01"],
    )
    for args in others:
        with anyio.fail_after(60):
            assert await cli(*args, "--out", str(out), "--config", str(config)) == 2
    stranger = tmp_path / "mine.csv"
    stranger.write_text("1,2,3\n")
    with anyio.fail_after(60):
        assert (
            await cli("--pair", "ETH/USD", "--since", "2024-01-01", "--out", str(stranger), "--config", str(config))
            == 2
        )
    assert (out.read_bytes(), progress_path(out).read_bytes()) == before and stranger.read_text() == "1,2,3\n"
    assert sum(fake.calls.values()) == calls


async def test_backtest_and_run_read_the_downloaded_file_and_trade(
    fake: FakeKraken, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ETHUSD_60.csv"
    with anyio.fail_after(60):
        await download(fake, out)
    capsys.readouterr()
    argv = ["backtest", "--data", str(out), "--pair", "ETH/USD", "--strategy", "ema_cross", "--param", "fast=3",
            "--param", "slow=8", "--json", "--no-progress"]  # fmt: skip
    with anyio.fail_after(120):
        assert await anyio.to_thread.run_sync(main, argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["candles"] == len(expected_candles()) and result["pair"] == "ETH/USD"
    assert len(result["trades"]) >= 2
    prices = {c.close for c in expected_candles()}
    assert all(D(t["exit_price"]) > 0 for t in result["trades"]) and len(prices) > 50
    # run installs signal handlers, which only the main thread may: a process of its own.
    code = "import sys; from trading_mcp.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = ["run", "--data", str(out), "--pair", "ETH/USD", "--speed", "max", "--quiet", "--db", str(tmp_path / "e.db")]
    with anyio.fail_after(120):
        done = await anyio.run_process([sys.executable, "-c", code, *argv], check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert f"replay ETHUSD_60.csv ({len(expected_candles())} events" in done.stdout.decode()  # every candle read


def test_the_progress_bar_shows_the_share_done_and_the_time_left_on_a_terminal() -> None:
    class Terminal(StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    with ProgressDisplay(stream, rich=True, plain=False) as display:
        display(ProgressEvent("trades", 0, 100 * S, 25 * S, 7, 3))
        display(ProgressEvent("trades", 0, 100 * S, 50 * S, 9, 4))
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())  # without the terminal's colour codes
    assert re.search(r"50\.0% ETA \d+:\d\d:\d\d 9 candles, 4 pages", shown), shown  # an estimate, not -:--:--
    plain = StringIO()
    with ProgressDisplay(plain, rich=False, plain=True, monotonic=lambda: 0.0) as display:
        for done in (10, 20, 100):
            display(ProgressEvent("trades", 0, 100 * S, done * S, done, done))
    assert [line.split("%")[0] for line in plain.getvalue().splitlines()] == ["download:  10.0", "download: 100.0"]


async def test_a_download_asked_from_before_the_first_trade_starts_at_the_first_trades_interval(
    fake: FakeKraken, tmp_path: Path
) -> None:
    out = tmp_path / "ETHUSD_60.csv"
    with anyio.fail_after(60):
        run = await download(fake, out, since=START_S - 3 * 86_400)
    first_trade_hour = TRADES[0][0] // S - TRADES[0][0] // S % HOUR
    candles = read_candles(out)
    assert candles[0].ts_ns // S == first_trade_hour == run.report.first_start_ns // S
    assert [c.ts_ns for c in candles if c.ts_ns >= START_S * S] == [c.ts_ns for c in expected_candles()]
