"""Backtest throughput and peak memory: this engine against backtrader, side by side, on the same file.

    python bench/bench_backtest.py [--data ../shared/data/kraken-ohlcvt/XBTUSD_60.csv] [--repeat 5] [--event-driven]

Our figure is the full path: replay parsing, strategy (EMA 12/26 crossover), sizing, risk checks, the simulated
exchange (fill at the next candle's open, Kraken taker fees), the portfolio, and persistence of orders and fills
through the SQLite writer thread (a file database in a temporary folder). backtrader runs an equivalent EMA
crossover (same periods, 1,000 USD per entry, sell all on the cross down, 0.4 % commission, market orders filled at
the next bar's open). Each side runs in its own process so peak memory (ru_maxrss) is its own. backtrader is
installed for the benchmark only (`pip install backtrader`); without it, only our figures are printed.

The runs alternate (ours, backtrader, ours, ...) so that both sides see the same machine: on a shared virtual
machine the same code runs up to ~1.7x slower for seconds at a time. Figures printed: each side's best and median
end-to-end time, split into reading the file (our parse and checks; backtrader's ``preload``) and the rest, and the
speed-up as best against best and as the median of the side-by-side pairs. ``--event-driven`` adds backtrader's
bar-by-bar mode (``runonce=False``), the one that works like ours and like live trading, as a reference line;
the goal is judged against backtrader's default (vectorised indicators), its fastest.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/x.py`: the repo, for bench.*

from bench.shared_data import XBTUSD_60_CANDLES, checked_candles, find_shared, refuse

# Every account rule enabled, at thresholds this history never reaches (so that both runs trade alike and the
# figure is the cost of evaluating the rules at every candle, not of a halted run doing less).
ALL_RULES = {"max_drawdown_pct": "95", "reduce_at_drawdown_pct": "90", "max_daily_loss": "1000000"}


# Every position guard, circuit breaker and the profit reserve on top of the account rules, likewise at levels this
# history never reaches (a 90 % stop, a 1,000 % take-profit, a million-candle time stop, a million losses in a
# row; a 1 % reserve that never binds): the figure is what watching costs. The run refuses to print a cost when
# its fills or final equity differ from the plain run's (it would then measure another workload).
ALL_GUARDS = {
    "stop_loss_pct": "90",
    "trailing_stop_pct": "90",
    "take_profit_pct": "1000",
    "take_profit_share": "0.5",
    "time_stop_candles": 1_000_000,
}
ALL_BREAKERS = {"max_consecutive_losses": 1_000_000, "max_errors": 1_000_000, "stale_after_s": 31_000_000}


def run_ours_with_rules(data: Path) -> dict[str, object]:
    return run_ours(data, rules=ALL_RULES)


def run_ours_guarded(data: Path) -> dict[str, object]:
    return run_ours(data, rules=ALL_RULES, guards=True)


def run_ours(data: Path, rules: dict[str, str] | None = None, guards: bool = False) -> dict[str, object]:
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
                    "params": {"fast": 12, "slow": 26, **(ALL_GUARDS if guards else {})},
                }
            ],
            "market": {"speed": "max", "file": str(data)},
            "risk": {
                "limits": {"max_order_qty": "5", "max_open_orders": 50},
                "rules": rules or {},
                **({"breakers": ALL_BREAKERS, "reserve_profit_pct": "1"} if guards else {}),
            },
        }
    )
    # anyio imports its event-loop backend (asyncio, ssl, ...: ~60 ms) on its first run. That is process start-up,
    # like `import backtrader` in run_backtrader, so it is paid here, before the clock starts.
    anyio.run(anyio.lowlevel.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        # The replay names its pair canonically, as the strategy's XBTUSD resolves (BTC/USD): else nothing trades.
        replay = ReplaySource(data, pair="BTC/USD")
        replay.load()  # reading and checking the file: timed apart (the engine would load it on start)
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
        "guard_exits": sum(engine.trader.guard_counts.values()),
        "breaker_trips": len(engine.trader.breaker_trips),
        "round_trips": len(engine.portfolio.round_trips),
        "final_equity": str(engine.portfolio.equity()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_backtrader(data: Path, *, runonce: bool = True) -> dict[str, object]:
    import resource

    import backtrader as bt

    class TimedCSVData(bt.feeds.GenericCSVData):  # type: ignore[misc]
        """The CSV feed, noting how long cerebro's preload (reading the whole file) takes."""

        preload_s = 0.0

        def preload(self) -> None:
            start = time.perf_counter()
            super().preload()
            TimedCSVData.preload_s += time.perf_counter() - start

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
    feed = TimedCSVData(
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
    result = cerebro.run(runonce=runonce)
    t2 = time.perf_counter()
    candles = len(result[0].data)
    return {
        "candles": candles,
        "load_s": TimedCSVData.preload_s,
        "run_s": t2 - t0 - TimedCSVData.preload_s,
        "total_s": t2 - t0,
        "final_equity": f"{cerebro.broker.getvalue():.2f}",
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_backtrader_event_driven(data: Path) -> dict[str, object]:
    return run_backtrader(data, runonce=False)


RUNNERS: dict[str, Callable[[Path], dict[str, object]]] = {
    "ours": run_ours,
    "ours-with-rules": run_ours_with_rules,
    "ours-guarded": run_ours_guarded,
    "backtrader": run_backtrader,
    "backtrader-event-driven": run_backtrader_event_driven,
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


def _seconds(run: dict[str, object], key: str) -> float:
    value = run[key]
    assert isinstance(value, int | float)
    return float(value)


def _report(which: str, runs: list[dict[str, object]]) -> dict[str, object] | None:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        print(f"{which:<24} unavailable: {runs[0].get('error')}")
        return None
    best = min(ok, key=lambda r: _seconds(r, "total_s"))
    median = statistics.median(_seconds(r, "total_s") for r in ok)
    candles = _seconds(best, "candles")
    extra = f", {best['fills']} fills, {best['round_trips']} round trips" if "fills" in best else ""
    print(
        f"{which:<24} best {_seconds(best, 'total_s'):.3f}s = {candles / _seconds(best, 'total_s'):,.0f} candles/s "
        f"(reading the file {_seconds(best, 'load_s'):.3f}s + the rest {_seconds(best, 'run_s'):.3f}s), "
        f"median {median:.3f}s over {len(ok)} runs; peak RSS {_seconds(best, 'peak_rss_mb'):.0f} MB, "
        f"final equity {best['final_equity']}{extra}"
    )
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=None, help="default: the shared XBTUSD_60.csv, found")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--event-driven", action="store_true", help="also time backtrader with runonce=False")
    parser.add_argument("--child", choices=sorted(RUNNERS))
    parser.add_argument("--rules", action="store_true", help="also time ours with every account rule enabled")
    parser.add_argument(
        "--guards", action="store_true", help="also time ours with every rule, guard, breaker and the reserve on"
    )
    args = parser.parse_args()
    args.data = args.data or find_shared()
    if args.child:
        print(json.dumps(RUNNERS[args.child](args.data)))
        return
    if args.data is None:
        sys.exit(refuse("bench_backtest", "the shared XBTUSD_60.csv is not found (set $TRADING_MCP_SHARED or --data)"))
    try:
        checked_candles(args.data, at_least=XBTUSD_60_CANDLES // 5)
    except ValueError as exc:
        sys.exit(refuse("bench_backtest", str(exc)))
    sides = ["ours", *(["ours-with-rules"] if args.rules else []), *(["ours-guarded"] if args.guards else [])]
    sides += ["backtrader"]
    sides += ["backtrader-event-driven"] if args.event_driven else []
    results: dict[str, list[dict[str, object]]] = {which: [] for which in sides}
    for _ in range(args.repeat):
        for which in sides:
            results[which].append(_child(which, args.data))
    print(f"data: {args.data} ({args.repeat} alternating runs per side)")
    best = {which: _report(which, runs) for which, runs in results.items()}
    ours, theirs = best["ours"], best["backtrader"]
    ruled = best.get("ours-with-rules")
    if ours is not None and ruled is not None:
        side_by_side = [
            _seconds(r, "total_s") / _seconds(o, "total_s") - 1
            for o, r in zip(results["ours"], results["ours-with-rules"], strict=True)
            if "error" not in o and "error" not in r
        ]
        cost = _seconds(ruled, "total_s") / _seconds(ours, "total_s") - 1
        print(
            f"every account rule enabled costs: best/best {cost:+.1%}"
            f", median of {len(side_by_side)} side-by-side pairs {statistics.median(side_by_side):+.1%} (goal < 15 %)"
        )
    guarded = best.get("ours-guarded")
    if ours is not None and guarded is not None:
        same = (guarded["fills"], guarded["final_equity"]) == (ours["fills"], ours["final_equity"])
        if not same or guarded["guard_exits"] or guarded["breaker_trips"]:
            print(
                "REFUSED: with every guard on, the run traded differently (fills "
                f"{guarded['fills']} vs {ours['fills']}, guard exits {guarded['guard_exits']}, breaker trips "
                f"{guarded['breaker_trips']}): the cost of watching cannot be read from it"
            )
        else:
            side_by_side = [
                _seconds(g, "total_s") / _seconds(o, "total_s") - 1
                for o, g in zip(results["ours"], results["ours-guarded"], strict=True)
                if "error" not in o and "error" not in g
            ]
            cost = _seconds(guarded, "total_s") / _seconds(ours, "total_s") - 1
            print(
                f"every account rule, position guard, breaker and the reserve enabled cost: best/best {cost:+.1%}, "
                f"median of {len(side_by_side)} side-by-side pairs {statistics.median(side_by_side):+.1%} "
                "(goal < 15 %; same fills and final equity as without)"
            )
    if ours is None or theirs is None:
        return
    pairs = [
        _seconds(t, "total_s") / _seconds(o, "total_s")
        for o, t in zip(results["ours"], results["backtrader"], strict=True)
        if "error" not in o and "error" not in t
    ]
    rest = _seconds(theirs, "run_s") / _seconds(ours, "run_s")
    end_to_end = _seconds(theirs, "total_s") / _seconds(ours, "total_s")
    print(
        f"speed-up vs backtrader, end to end: best/best {end_to_end:.1f}x, "
        f"median of {len(pairs)} side-by-side pairs {statistics.median(pairs):.1f}x "
        f"(range {min(pairs):.1f}-{max(pairs):.1f}x); without reading the file: best/best {rest:.1f}x"
    )


if __name__ == "__main__":
    main()
