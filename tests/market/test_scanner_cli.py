"""``trading-mcp scan`` against the fake Kraken (every pair's Ticker in one call, OHLC for the best few), on
replayed files, and refusing bad input in one line with exit status 2; repeated scans of Kraken are rate-limited
(AssetPairs kept an hour, the Ticker 30 s, a pair's candles 5 minutes; OHLC calls in a burst then one a second),
and an engine on Kraken's feed scans Kraken through its facade.

Expected figures come from the fake's own book and trades and from the engine's one-bar-at-a-time Wilder ATR
(:class:`engine.market.ATR`), not from the scanner.
"""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from fakes.kraken_fake import FakeKraken
from fakes.kraken_fake_market import FakePair

from engine.market import ATR
from engine.runtime.app import RunOptions
from engine.runtime.config import config_from_mapping
from engine.runtime.facade import EngineFacade
from engine.runtime.live import build_kraken_engine
from engine.runtime.markets_view import KrakenMarkets, PublicPacer, scan_settings
from trading_mcp.cli import main

pytestmark = pytest.mark.anyio
D = Decimal
SAMPLE_OHLC = Path(__file__).resolve().parents[2] / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
HOUR = 3600


def asset_pair(altname: str, base: str, quote: str, decimals: int, status: str = "online") -> dict[str, Any]:
    """An AssetPairs entry in Kraken's format (the fields the engine and the fake read)."""
    return {
        "altname": altname,
        "wsname": f"{base}/{quote}",
        "base": base,
        "quote": quote,
        "pair_decimals": decimals,
        "lot_decimals": 8,
        "cost_decimals": 5,
        "ordermin": "0.0001",
        "costmin": "0.5",
        "tick_size": str(D(1).scaleb(-decimals)),
        "fees": [[0, D("0.4")]],
        "fees_maker": [[0, D("0.25")]],
        "status": status,
    }


PAIRS = {
    "XXBTZUSD": asset_pair("XBTUSD", "XXBT", "ZUSD", 1),
    "XETHZUSD": asset_pair("ETHUSD", "XETH", "ZUSD", 2),
    "SOLUSD": asset_pair("SOLUSD", "SOL", "ZUSD", 2),
    "XDGUSD": asset_pair("XDGUSD", "XXDG", "ZUSD", 7, status="reduce_only"),
    "XETHXXBT": asset_pair("ETHXBT", "XETH", "XXBT", 5),
}
# altname: best bid (price, qty), best ask (price, qty), public trades (price, qty), first candle close, step
MARKET = {
    "XBTUSD": (("100000.0", "0.5"), ("100010.0", "0.002"), [("100000.0", "3"), ("100020.0", "1")], 100000, 150),
    "ETHUSD": (("3000.00", "10"), ("3000.60", "20"), [("3000.00", "200"), ("3001.00", "100")], 3000, -4),
    "SOLUSD": (("150.00", "100"), ("150.30", "100"), [("150.00", "50")], 150, 0.5),
    "XDGUSD": (("0.1000000", "1000"), ("0.1001000", "1000"), [("0.1", "10")], 0.1, 0),
    "ETHXBT": (("0.03000", "5"), ("0.03001", "5"), [("0.03", "1")], 0.03, 0),
}
CANDLES = 30


def candle_rows(first: float, step: float) -> list[tuple[int, D, D, D, D]]:
    """``CANDLES`` hourly (begin, open, high, low, close) rows: a trend of ``step`` with a zig-zag of 1 %."""
    rows = []
    for k in range(CANDLES):
        close = D(str(first + step * k)) * (D("1.01") if k % 2 else D("0.99"))
        rows.append((k * HOUR, close, close * D("1.004"), close * D("0.995"), close))
    return rows


def engine_atr_pct(rows: list[tuple[int, D, D, D, D]]) -> float:
    """The engine's Wilder ATR(14) over the committed candles (all rows but the still-open last) / last close."""
    atr = ATR(14)
    value = None
    for _, _, high, low, close in rows[:-1]:
        value = atr.update_bar(high, low, close)
    assert value is not None
    return float(value / rows[-2][4] * 100)


def fake_pairs() -> list[FakePair]:
    return [FakePair.from_asset_pairs(key, info) for key, info in PAIRS.items()]


def load_market(fake: FakeKraken) -> None:
    for altname, (bid, ask, trades, first, step) in MARKET.items():
        fake.set_book(altname, bids=[bid], asks=[ask])
        for price, qty in trades:
            fake.public_trade(altname, price, qty)
        for begin, open_, high, low, close in candle_rows(first, step):
            fake.candle(altname, begin * 10**9, close, interval=60, open=open_, high=high, low=low, volume="2")


async def scan(args: list[str]) -> int:
    with anyio.fail_after(60):
        return await anyio.to_thread.run_sync(main, ["scan", *args])


async def test_scan_ranks_every_usd_pair_of_the_fake_from_one_ticker_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeKraken(pairs=fake_pairs()) as fake:
        load_market(fake)
        config = tmp_path / "scan.toml"
        config.write_text(f'[kraken]\nrest_url = "{fake.rest_url}"\n')
        code = await scan(["--config", str(config), "--json", "--top", "2", "--size", "150"])
        calls = dict(fake.calls)
    out = capsys.readouterr().out
    assert code == 0
    view = json.loads(out)
    # One call each for AssetPairs and every pair's Ticker; OHLC only for the 2 shown (--candles defaults to --top).
    assert (calls["AssetPairs"], calls["Ticker"], calls["OHLC"]) == (1, 1, 2)
    assert view["quote"] == "USD" and view["size_usd"] == 150 and view["ranked"] == 3 and len(view["pairs"]) == 2
    assert [e["reason"] for e in view["excluded"]] == [
        "catalogue status is 'reduce_only', not 'online' (Kraken restricts new orders on it)"
    ]
    shown = {p["base"]: p for p in view["pairs"]}
    scores = [p["score"] for p in view["pairs"]]
    assert scores == sorted(scores, reverse=True) and [p["rank"] for p in view["pairs"]] == [1, 2]
    # The ETH book: bid 3000.00 x 10, ask 3000.60 x 20; trades 200 @ 3000 and 100 @ 3001 (the 24 h volume).
    eth = shown["ETH"]
    assert eth["spread_bps"] == pytest.approx(0.60 / 3000.30 * 10_000, abs=1e-3)
    assert eth["volume_24h_quote"] == pytest.approx(200 * 3000.0 + 100 * 3001.0, abs=0.01)
    assert eth["liquidity"] == 1.0 and eth["top_depth_usd"] == pytest.approx(30000.0)  # min(60012, 30000) >= 150
    assert eth["atr_pct"] == pytest.approx(engine_atr_pct(candle_rows(3000, -4)), abs=1e-4)
    assert eth["candles"] == CANDLES - 1 and eth["missing"] == []
    # BTC: the best ask holds 0.002 BTC, 200.02 USD; the bid 50000 USD: an order of 150 USD fills at the top.
    btc = shown["BTC"]
    assert btc["liquidity"] == 1.0 and btc["top_depth_usd"] == pytest.approx(200.02)
    assert btc["volume_24h_usd"] == pytest.approx(3 * 100000.0 + 1 * 100020.0, abs=0.01)
    assert btc["atr_pct"] == pytest.approx(engine_atr_pct(candle_rows(100000, 150)), abs=1e-4)


async def test_a_smaller_size_limit_shows_in_liquidity_and_text_output_has_one_line_per_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeKraken(pairs=fake_pairs()) as fake:
        load_market(fake)
        config = tmp_path / "scan.toml"
        config.write_text(f'[kraken]\nrest_url = "{fake.rest_url}"\n')
        code = await scan(["--config", str(config), "--size", "1000", "--candles", "0"])
        wide = await scan(["--config", str(config), "--quote", "any", "--json", "--size", "1000", "--candles", "0"])
        ohlc_calls = fake.calls["OHLC"]
    assert code == 0 and wide == 0 and ohlc_calls == 0
    text, json_text = capsys.readouterr().out.split("\n{", 1)
    lines = text.splitlines()
    assert lines[0].startswith("Market scan: 3 pair(s) quoted in USD ranked")
    table = [line for line in lines if line[:4].strip().isdigit()]
    assert len(table) == 3 and any("BTC/USD" in line for line in table)
    assert "XDG" in text or "DOGE" in text  # the excluded pair, with its reason
    view = json.loads("{" + json_text)
    assert view["quote"] == "any" and view["ranked"] == 4  # ETH/BTC joins, its volume in USD through BTC/USD
    btc = next(p for p in view["pairs"] if p["base"] == "BTC")
    # 1000 USD against a best ask of 0.002 x 100010 = 200.02 USD: a fifth of the order fills at the top.
    assert btc["liquidity"] == pytest.approx(200.02 / 1000, abs=1e-4)
    eth_btc = next(p for p in view["pairs"] if p["quote"] == "BTC")
    btc_usd = (100000.0 + 100010.0) / 2
    assert eth_btc["volume_24h_usd"] == pytest.approx(1 * 0.03 * btc_usd, rel=1e-9)
    assert all("volatility: no candles" in p["missing"] for p in view["pairs"])


def write_csv(path: Path, first: float, step: float, volume: float) -> list[tuple[int, D, D, D, D]]:
    rows = candle_rows(first, step)
    start = 1_700_000_000
    path.write_text("".join(f"{start + b},{o},{h},{lo},{c},{volume},3\n" for b, o, h, lo, c in rows))
    return rows


async def test_scan_ranks_replayed_files_without_spread_or_liquidity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    btc_rows = write_csv(tmp_path / "XBTUSD_60.csv", 100000, 150, 2.0)
    eth_rows = write_csv(tmp_path / "ETHUSD_60.csv", 3000, -4, 50.0)
    code = await scan(["--data", str(tmp_path / "XBTUSD_60.csv"), str(tmp_path / "ETHUSD_60.csv"), "--json"])
    assert code == 0
    view = json.loads(capsys.readouterr().out)
    got = {p["base"]: p for p in view["pairs"]}
    assert set(got) == {"BTC", "ETH"} and view["ranked"] == 2
    for base, rows, volume in (("BTC", btc_rows, 2.0), ("ETH", eth_rows, 50.0)):
        pair = got[base]
        # A file's candles are all closed: ATR over all 30 (the helper drops the last, so give it one more row).
        assert pair["atr_pct"] == pytest.approx(engine_atr_pct([*rows, rows[-1]]), abs=1e-4)
        last_day = rows[-24:]
        assert pair["volume_24h_quote"] == pytest.approx(sum(volume * float(r[4]) for r in last_day), abs=0.01)
        assert pair["candles"] == CANDLES and pair["spread_bps"] is None and pair["liquidity"] is None
        assert "spread: no Ticker (no bid or ask in candle data)" in pair["missing"]
    assert "1 h" in view["method"]["volatility"]


async def test_scan_reads_the_shared_hourly_file(shared_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = await scan(["--data", str(shared_dir / "data" / "kraken-ohlcvt" / "XBTUSD_60.csv"), "--json"])
    assert code == 0
    (pair,) = json.loads(capsys.readouterr().out)["pairs"]
    assert pair["candles"] == 720 and pair["atr_pct"] > 0 and 0 <= pair["trend"] <= 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--top", "0"], "--top must be a whole number from 1 to 2000, not '0'"),
        (["--top", "2.5"], "--top must be a whole number"),
        (["--size", "-5"], "--size must be a positive number of USD"),
        (["--size", "1e3"], "--size must be a positive number of USD"),
        (["--quote", "U$D"], "--quote 'U$D' is not an asset code"),
        (["--quote", "EUR"], "unknown quote 'EUR': no pair of replayed files kraken_xbtusdt_1m_ohlc.json"),
        (["--data", "missing.csv"], "data file missing.csv does not exist"),
        (["--interval", "7"], "--interval must be one of 1, 5, 15, 30, 60, 240, 1440 minutes"),
    ],
)
async def test_bad_input_gets_one_line_and_exit_status_2(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = [] if "--data" in args or "--interval" in args else ["--data", str(SAMPLE_OHLC)]
    code = await scan([*data, *args])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("trading-mcp scan: ") and says in captured.err, captured.err


async def test_kraken_out_of_reach_is_one_line_naming_the_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeKraken(pairs=fake_pairs()) as fake:
        url = fake.rest_url
    config = tmp_path / "scan.toml"
    config.write_text(f'[kraken]\nrest_url = "{url}"\n')  # the fake has stopped: nothing listens there
    code = await scan(["--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"Kraken did not answer at {url}" in err and "--data" in err


class Clock:
    """Monotonic seconds that move only when told to; sleeping moves them."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_ohlc_calls_go_in_a_burst_then_one_a_second() -> None:
    clock = Clock()
    pacer = PublicPacer(burst=3, interval_s=1.0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        await pacer.wait()
    assert clock.slept == [1.0, 1.0]  # three at once, then one a second
    clock.now += 10.0  # a pause refills the burst, never beyond it
    for _ in range(4):
        await pacer.wait()
    assert clock.slept == [1.0, 1.0, 1.0]


async def test_repeated_scans_reuse_what_is_kept_until_its_time_is_over() -> None:
    clock = Clock()
    settings, _ = scan_settings("USD", 2, 1000.0)
    async with FakeKraken(pairs=fake_pairs()) as fake:
        load_market(fake)
        kraken = KrakenMarkets(fake.rest_url, pacer=PublicPacer(clock=clock, sleep=clock.sleep), clock=clock)
        first = await kraken.data(settings, 2)
        again = await kraken.data(settings, 2)
        counts = [(fake.calls["AssetPairs"], fake.calls["Ticker"], fake.calls["OHLC"])]
        clock.now += 31  # the Ticker is old, the candles are not
        await kraken.data(settings, 2)
        counts.append((fake.calls["AssetPairs"], fake.calls["Ticker"], fake.calls["OHLC"]))
        clock.now += 300  # the candles are old too
        await kraken.data(settings, 2)
        counts.append((fake.calls["AssetPairs"], fake.calls["Ticker"], fake.calls["OHLC"]))
        clock.now += 3600  # and AssetPairs
        await kraken.data(settings, 2)
        counts.append((fake.calls["AssetPairs"], fake.calls["Ticker"], fake.calls["OHLC"]))
    assert counts == [(1, 1, 2), (1, 2, 2), (1, 3, 4), (2, 4, 6)]
    assert first.as_of_ns == again.as_of_ns and len(first.markets) == len(PAIRS)
    assert first.tiers is not None and [m.candles is not None for m in first.tiers[0]] == [True, True]


async def test_an_engine_on_krakens_feed_scans_kraken_through_its_facade() -> None:
    async with FakeKraken(pairs=fake_pairs()) as fake:
        load_market(fake)
        config = config_from_mapping(
            {"strategies": [], "market": {"source": "kraken"}, "kraken": {"rest_url": fake.rest_url}}
        )
        facade = EngineFacade(build_kraken_engine(config, None, RunOptions()))
        view = await facade.markets(quote="USD", top=1, size=100.0)
        kept = await facade.markets(quote="USD", top=1, size=100.0)
        calls = (fake.calls["Ticker"], fake.calls["OHLC"])
    assert kept == view and calls == (1, 1)
    assert view.ranked == 3 and len(view.pairs) == 1 and view.pairs[0].candles > 0
    assert "Kraken AssetPairs and Ticker" in view.source and view.excluded
