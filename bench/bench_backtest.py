"""Backtest throughput and peak memory: this engine against backtrader, side by side, on the same file.

    python bench/bench_backtest.py [--data ../shared/data/kraken-ohlcvt/XBTUSD_60.csv] [--repeat 3]

Our figure is the full path: replay parsing, strategy (EMA 12/26 crossover), sizing, risk checks, the simulated
exchange (fill at the next candle's open, Kraken taker fees), the portfolio, and persistence of orders and fills
through the SQLite writer thread (a file database in a temporary folder). backtrader runs an equivalent EMA
crossover (same periods, 1,000 USD per entry, sell all on the cross down, 0.4 % commission, market orders filled at
the next bar's open). Each side runs in its own process so peak memory (ru_maxrss) is its own. backtrader is
installed for the benchmark only (`pip install backtrader`); without it, only our figures are printed.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "kraken-ohlcvt" / "XBTUSD_60.csv"


def run_ours(data: Path) -> dict[str, object]:
    import resource

    import anyio
    import anyio.lowlevel

    from engine.exchanges.replay import ReplaySource
    from engine.runtime.app import Engine, RunOptions
    from engine.runtime.config import config_from_mapping
    from engine.runtime.sources import ReplayMarketSource

    config = config_from_mapping(
        {
            "strategies": [
                {
                    "name": "ema_cross",
                    "kind": "ema_cross",
                    "pair": "XBTUSD",
                    "params": {"fast": 12, "slow": 26},
                }
            ],
            "market": {"speed": "max", "file": str(data)},
            "risk": {"limits": {"max_order_qty": "5", "max_open_orders": 50}},
        }
    )
    # anyio imports its event-loop backend (asyncio, ssl, ...: ~60 ms) on its first run. That is process start-up,
    # like `import backtrader` in run_backtrader, so it is paid here, before the clock starts.
    anyio.run(anyio.lowlevel.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        replay = ReplaySource(data, pair="XBTUSD")
        source = ReplayMarketSource(replay, None, data.name, yield_interval_s=0.25)
        engine = Engine.from_config(
            config,
            Path(tmp) / "bench.db",
            source=source,
            options=RunOptions(durable_intents=False, record_every_candle=False, id_prefix="bt"),
        )
        t1 = time.perf_counter()
        anyio.run(engine.run)
        t2 = time.perf_counter()
    return {
        "candles": engine.state.cursor,
        "load_s": t1 - t0,
        "run_s": t2 - t1,
        "total_s": t2 - t0,
        "fills": engine.portfolio.fill_count,
        "round_trips": len(engine.portfolio.round_trips),
        "final_equity": str(engine.portfolio.equity()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_backtrader(data: Path) -> dict[str, object]:
    import resource

    import backtrader as bt

    class EmaCross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            fast = bt.ind.EMA(self.data.close, period=12)
            slow = bt.ind.EMA(self.data.close, period=26)
            self.cross = bt.ind.CrossOver(fast, slow)

        def next(self) -> None:
            if not self.position and self.cross > 0:
                self.buy(size=round(1000 / self.data.close[0], 8))
            elif self.position and self.cross < 0:
                self.close()

    t0 = time.perf_counter()
    cerebro = bt.Cerebro(stdstats=False)
    feed = bt.feeds.GenericCSVData(
        dataname=str(data),
        dtformat=2,
        timeframe=bt.TimeFrame.Minutes,
        compression=60,
        datetime=0,
        open=1,
        high=2,
        low=3,
        close=4,
        volume=5,
        openinterest=-1,
        headers=False,
    )
    cerebro.adddata(feed)
    cerebro.addstrategy(EmaCross)
    cerebro.broker.setcash(10000.0)
    cerebro.broker.setcommission(commission=0.004)
    t1 = time.perf_counter()
    result = cerebro.run()
    t2 = time.perf_counter()
    candles = len(result[0].data)
    return {
        "candles": candles,
        "load_s": t1 - t0,
        "run_s": t2 - t1,
        "total_s": t2 - t0,
        "final_equity": f"{cerebro.broker.getvalue():.2f}",
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(which: str, data: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", which, "--data", str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=["ours", "backtrader"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_ours(args.data) if args.child == "ours" else run_backtrader(args.data)))
        return
    if not args.data.exists():
        print(f"skip: {args.data} is absent")
        return
    results: dict[str, list[dict[str, object]]] = {"ours": [], "backtrader": []}
    for _ in range(args.repeat):
        for which in results:
            results[which].append(_child(which, args.data))
    print(f"data: {args.data} ({args.repeat} runs each, best shown)")
    best: dict[str, dict[str, object]] = {}
    for which, runs in results.items():
        ok = [r for r in runs if "error" not in r]
        if not ok:
            print(f"{which:<11} unavailable: {runs[0].get('error')}")
            continue
        b = min(ok, key=lambda r: float(r["total_s"]))  # type: ignore[arg-type]
        best[which] = b
        rate = int(b["candles"]) / float(b["total_s"])  # type: ignore[call-overload,arg-type]
        print(
            f"{which:<11} {b['candles']} candles in {float(b['total_s']):.3f}s "  # type: ignore[arg-type]
            f"(load {float(b['load_s']):.3f}s + run {float(b['run_s']):.3f}s) = {rate:,.0f} candles/s, "  # type: ignore[arg-type]
            f"peak RSS {float(b['peak_rss_mb']):.0f} MB, final equity {b['final_equity']}"  # type: ignore[arg-type]
            + (f", {b['fills']} fills, {b['round_trips']} round trips" if "fills" in b else "")
        )
    if "ours" in best and "backtrader" in best:
        ratio = float(best["backtrader"]["total_s"]) / float(best["ours"]["total_s"])  # type: ignore[arg-type]
        print(f"speed-up vs backtrader (end to end, same file): {ratio:.1f}x")


if __name__ == "__main__":
    main()
