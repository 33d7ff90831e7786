"""The market scanner over 1,500 pairs: a full ranking from data in memory (goal: under 1 s).

    python bench/bench_scanner.py [--pairs 1500] [--candles 720] [--repeat 5] [--seed 7]

The data is made in memory, shaped like Kraken's: an AssetPairs entry per pair (price decimals that give about five
significant digits, as Kraken's do), a Ticker entry as Kraken sends it (every number as text at the pair's
decimals, lot volumes with three decimals), and ``--candles`` hourly candles per pair from a random walk (volatility
drawn per pair, prices rounded to the pair's decimals). Quotes are USD, EUR, GBP, USDT, USDC, BTC and ETH, with their
USD pairs among the 1,500, so every pair has a USD rate.

The timed part is what the scanner does once the data is in memory: reading every Ticker entry (text to numbers,
named by the catalogue), then :func:`engine.market.scanner.rank` over every pair, quote ``any``: volume, spread,
liquidity at 1,000 USD, Wilder ATR(14) and the efficiency ratio(20) over each pair's candles, percentiles, scores,
ordering. Turning Kraken's OHLC rows (text) into arrays is timed apart and printed as a separate figure: a live scan
fetches OHLC for the best few pairs only.

No figure is printed unless the ranking holds every pair asked for with every metric computed (and ``--pairs`` at
least 1,500 and ``--candles`` 720 for the goal's verdict); the process exits 1 instead, saying why.
"""

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.domain.instrument import Instrument  # noqa: E402
from engine.market.scanner import METRICS, CandleSeries, Ranking, ScanSettings, rank  # noqa: E402
from engine.market.scanner_inputs import instrument_index, markets_from_tickers  # noqa: E402

GOAL_S = 1.0
GOAL_PAIRS = 1500
GOAL_CANDLES = 720
HOUR_NS = 3600 * 1_000_000_000
QUOTES = {"ZUSD": 0.40, "ZEUR": 0.2, "USDT": 0.12, "USDC": 0.08, "XXBT": 0.1, "XETH": 0.05, "ZGBP": 0.05}
# The quotes' own USD pairs (base, price in USD), so that every quote has a USD rate.
RATE_PAIRS = {"ZEUR": 1.08, "ZGBP": 1.27, "USDT": 1.0002, "USDC": 0.9999, "XXBT": 97000.0, "XETH": 3400.0}


def decimals_for(price: float) -> int:
    """About five significant digits, as Kraken's pair_decimals give (BTC/USD 1, ETH/USD 2, SHIB/USD 8...)."""
    return max(0, min(10, 4 - math.floor(math.log10(price))))


def text(value: float, places: int) -> str:
    return f"{value:.{places}f}"


def make_pair(
    rng: random.Random, key: str, base: str, quote: str, price: float, candles: int
) -> tuple[dict[str, Any], dict[str, Any], list[list[Any]]]:
    """An AssetPairs entry, a Ticker entry and ``candles`` OHLC rows, all as Kraken writes them."""
    places = decimals_for(price)
    info = {
        "altname": key,
        "wsname": f"{base}/{quote}",
        "base": base,
        "quote": quote,
        "pair_decimals": places,
        "lot_decimals": 8,
        "cost_decimals": 5,
        "ordermin": "1",
        "costmin": "0.5",
        "tick_size": text(10.0**-places, places),
        "status": "online",
    }
    sigma = rng.uniform(0.002, 0.03)
    drift = rng.gauss(0.0, sigma / 10)
    close = price
    rows: list[list[Any]] = []
    start = 1_760_000_000
    for k in range(candles):
        open_ = close
        close = max(open_ * math.exp(rng.gauss(drift, sigma)), 10.0**-places)
        high = max(open_, close) * (1 + abs(rng.gauss(0, sigma / 2)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, sigma / 2)))
        volume = rng.lognormvariate(3, 1.5)
        row = [start + k * 3600, *(text(v, places) for v in (open_, high, low, close, (high + low) / 2))]
        rows.append([*row, text(volume, 8), rng.randint(1, 500)])
    tick = 10.0**-places
    bid = round(close, places)
    ask = bid + tick * rng.randint(1, 20)
    volume_24h = rng.lognormvariate(8, 2)
    ticker = {
        "a": [text(ask, places), str(rng.randint(1, 50)), text(rng.lognormvariate(2, 2), 3)],
        "b": [text(bid, places), str(rng.randint(1, 50)), text(rng.lognormvariate(2, 2), 3)],
        "c": [text(bid, places), text(rng.lognormvariate(0, 1), 8)],
        "v": [text(volume_24h / 3, 8), text(volume_24h, 8)],
        "p": [text(close, places), text(close * rng.uniform(0.98, 1.02), places)],
        "t": [rng.randint(0, 5000), rng.randint(1, 20000)],
        "l": [text(close * 0.97, places), text(close * 0.95, places)],
        "h": [text(close * 1.03, places), text(close * 1.05, places)],
        "o": text(close * rng.uniform(0.97, 1.03), places),
    }
    return info, ticker, rows


def make_data(count: int, candles: int, seed: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[Any]]]:
    rng = random.Random(seed)
    pairs: dict[str, Any] = {}
    tickers: dict[str, Any] = {}
    ohlc: dict[str, list[Any]] = {}
    specs = [(f"{quote}ZUSD", quote, "ZUSD", usd) for quote, usd in RATE_PAIRS.items()]
    quotes, weights = list(QUOTES), list(QUOTES.values())
    for n in range(count - len(specs)):
        base = f"A{n:04d}"
        quote = rng.choices(quotes, weights)[0]
        usd_price = 10 ** rng.uniform(-5, 4.5)
        in_quote = usd_price / RATE_PAIRS.get(quote, 1.0)
        specs.append((f"{base}{quote}", base, quote, in_quote))
    for key, base, quote, price in specs:
        pairs[key], tickers[key], ohlc[key] = make_pair(rng, key, base, quote, price, candles)
    return pairs, tickers, ohlc


def series_from_rows(rows: list[list[Any]], interval_s: int) -> CandleSeries:
    """Kraken's OHLC rows (text) as float64 columns: how the scanner gets candles from a REST answer."""
    table = np.array([r[1:7] for r in rows], dtype=np.float64)
    opens = np.array([r[0] for r in rows], dtype=np.int64) * 1_000_000_000
    return CandleSeries(
        interval_s, opens + interval_s * 1_000_000_000, table[:, 1], table[:, 2], table[:, 3], table[:, 5]
    )


def timed_scan(
    tickers: dict[str, Any], index: dict[str, Instrument], series: dict[str, CandleSeries]
) -> tuple[float, Ranking, list[str]]:
    started = time.perf_counter()
    markets, problems = markets_from_tickers(tickers, index, series)
    ranking = rank(list(markets.values()), ScanSettings(quote=None, size_usd=1000.0))
    return time.perf_counter() - started, ranking, problems


def refusal(ranking: Ranking, problems: list[str], pairs: int, candles: int) -> str | None:
    if problems:
        return f"{len(problems)} Ticker entries were left out, e.g. {problems[0]}"
    if len(ranking.ranked) != pairs or ranking.excluded:
        return f"the ranking holds {len(ranking.ranked)} pairs ({len(ranking.excluded)} excluded), not {pairs}"
    incomplete = [r.pair for r in ranking.ranked if r.missing or any(r.percentiles[m] is None for m in METRICS)]
    if incomplete:
        return f"{len(incomplete)} pairs lack a metric, e.g. {incomplete[0]}"
    short = [r.pair for r in ranking.ranked if r.metrics.candles != candles]
    if short:
        return f"{len(short)} pairs were measured on fewer than {candles} candles"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=GOAL_PAIRS)
    parser.add_argument("--candles", type=int, default=GOAL_CANDLES)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.pairs < len(RATE_PAIRS) + 1 or args.candles < 21 or args.repeat < 1:
        print(f"refused: need --pairs > {len(RATE_PAIRS)}, --candles >= 21 and --repeat >= 1", file=sys.stderr)
        return 1

    made = time.perf_counter()
    pairs, tickers, ohlc = make_data(args.pairs, args.candles, args.seed)
    made = time.perf_counter() - made
    index = instrument_index(Instrument.from_kraken(key, info) for key, info in pairs.items())
    parsing = time.perf_counter()
    series = {key: series_from_rows(rows, 3600) for key, rows in ohlc.items()}
    parsing = time.perf_counter() - parsing

    times = []
    ranking: Ranking | None = None
    for _ in range(args.repeat):
        seconds, ranking, problems = timed_scan(tickers, index, series)
        reason = refusal(ranking, problems, args.pairs, args.candles)
        if reason is not None:
            print(f"refused: no figure printed: {reason}", file=sys.stderr)
            return 1
        times.append(seconds)
    assert ranking is not None
    best, median = min(times), statistics.median(times)
    total_candles = sum(len(s) for s in series.values())
    print(
        f"data: {args.pairs} pairs (Ticker entries as Kraken's text), {total_candles:,} candles "
        f"({args.candles} each, hourly), made in {made:.2f} s (not timed)"
    )
    print(
        f"full ranking (read {args.pairs} Ticker entries + rank with every metric): "
        f"best {best * 1000:.1f} ms, median {median * 1000:.1f} ms over {args.repeat} runs"
    )
    print(
        f"apart: Kraken OHLC rows (text) to arrays for all {args.pairs} pairs: {parsing * 1000:.0f} ms "
        "(a live scan fetches OHLC for the best few only)"
    )
    top = ranking.ranked[0]
    print(f"check: {len(ranking.ranked)} ranked, every metric present; best {top.pair} score {top.score:.3f}")
    if args.pairs >= GOAL_PAIRS and args.candles == GOAL_CANDLES:
        verdict = "met" if median < GOAL_S else "NOT met"
        print(f"goal: a full ranking of {GOAL_PAIRS:,} pairs x {GOAL_CANDLES} candles under {GOAL_S:g} s: {verdict}")
    else:
        print(f"goal: not judged (it is for {GOAL_PAIRS:,} pairs x {GOAL_CANDLES} candles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
