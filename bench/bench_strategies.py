"""Several strategies over one pair: 1, 4 and 8 strategies replaying the same file, end to end.

    python bench/bench_strategies.py [--data ../shared/data/kraken-ohlcvt/XBTUSD_60.csv] [--repeat 5]
    python bench/bench_strategies.py --profile 8     # cProfile of one in-process run of the 8-strategy set

Each run is the full backtest path of ``bench/bench_backtest.py`` (``Engine.from_config`` with ``speed = "max"``, a
``ReplaySource`` over the file, a temporary SQLite file and its writer thread) with the 1, 4 or 8 strategies below
on the same pair. Each run is its own process, and the three sets alternate (1, 4, 8, 1, 4, 8, ...): on this
shared 2-core machine the same code runs up to ~1.7x slower for seconds at a time. Printed per set: best and
median seconds, candles/s, orders and fills per strategy (read back from the run's SQLite file), and the cost of
the strategies alone (fresh instances of the same strategies fed the same candles, their ``on_candle`` only, in
the same process after the run), so the engine's own overhead per strategy reads as the rest. Then the ratios
4/1 and 8/1 (goal: 8 under 3x one).

The account is large (1,000,000 USD), the risk limits and caps far above what 8 entries of 1,000 USD reach, and
the fee tier pinned (``fee_volume_30d = 0``), so that no strategy is refused or charged differently because of the
others: each strategy's orders and fills are then the same in every set, which is checked (a set whose strategy
trades differently than in another set, or a strategy that made no order, measures another workload: no figure
is printed). The bench also refuses a data file that is absent or not what it claims (fewer than 40,000 candles,
or not one pair at one interval), with the reason and a non-zero exit.
"""

import argparse
import cProfile
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "kraken-ohlcvt" / "XBTUSD_60.csv"
PAIR = "BTC/USD"  # the replay names its pair canonically, as the strategies' XBTUSD resolves
MIN_CANDLES = 40_000

Spec = tuple[str, str, dict[str, int | str]]  # name, kind, params
FOUR: list[Spec] = [
    ("ema_12_26", "ema_cross", {"fast": 12, "slow": 26}),
    ("mean_rev_20", "mean_reversion", {"period": 20}),
    ("rsi_14", "rsi_reversal", {"period": 14}),
    ("breakout_20_10", "breakout", {"entry_period": 20, "exit_period": 10}),
]
EIGHT: list[Spec] = [
    *FOUR,
    ("ema_50_200", "ema_cross", {"fast": 50, "slow": 200}),
    ("mean_rev_50", "mean_reversion", {"period": 50, "entry_z": "2.5", "exit_z": "0.5"}),
    ("rsi_7", "rsi_reversal", {"period": 7, "oversold": "25", "overbought": "75"}),
    ("breakout_55_20", "breakout", {"entry_period": 55, "exit_period": 20}),
]
SETS: dict[int, list[Spec]] = {1: FOUR[:1], 4: FOUR, 8: EIGHT}
HUGE = "1000000000"
LIMITS = {
    "max_order_qty": "1000",
    "max_order_notional": HUGE,
    "max_pair_notional": HUGE,
    "max_total_notional": HUGE,
    "max_open_orders": 100,
    "max_orders_per_minute": 10_000,
    "price_band_pct": "50",
}


class Refused(Exception):
    """The workload is not the one this bench claims to measure: no figure may be printed."""


def check_data(data: Path) -> int:
    """The file's candle count, once it is known to be one pair's candles at one interval, 40,000 or more.

    Raises:
        Refused: the file is absent, unreadable, too short, or mixes pairs, intervals or event kinds.
    """
    from engine.domain.market_data import Candle
    from engine.exchanges.replay import ReplaySource
    from engine.exchanges.replay.errors import ReplayError

    if not data.is_file():
        raise Refused(f"{data} is absent")
    try:
        events = ReplaySource(data, pair=PAIR).load().events
    except (ReplayError, OSError) as exc:
        raise Refused(f"{data} cannot be replayed: {exc}") from None
    kinds = {type(e).__name__ for e in events}
    if kinds != {"Candle"}:
        raise Refused(f"{data} holds {sorted(kinds)}, not candles only")
    pairs = {e.pair for e in events}
    intervals = {e.interval_s for e in events if isinstance(e, Candle)}
    if len(pairs) != 1 or len(intervals) != 1:
        raise Refused(f"{data} is not one pair at one interval: pairs {sorted(pairs)}, intervals {sorted(intervals)}")
    if len(events) < MIN_CANDLES:
        raise Refused(f"{data} has {len(events):,} candles, fewer than the {MIN_CANDLES:,} this bench claims")
    return len(events)


def config_for(specs: list[Spec], data: Path) -> Any:
    from engine.runtime.config import config_from_mapping

    return config_from_mapping(
        {
            "strategies": [{"name": n, "kind": k, "pair": "XBTUSD", "params": dict(p)} for n, k, p in specs],
            "market": {"speed": "max", "file": str(data)},
            "paper": {"starting_balances": {"USD": "1000000"}, "fee_volume_30d": "0"},
            "risk": {"limits": LIMITS, "caps": LIMITS},
        }
    )


def strategies_alone(specs: list[Spec], candles: list[Any]) -> tuple[float, int]:
    """Seconds fresh instances of ``specs`` take over ``candles`` (their ``on_candle`` only), and their signals.

    Each is shown the position it would hold (1 after a buy signal, 0 after a sell), so it signals as in the run.
    """
    from decimal import Decimal

    from engine.strategies import strategy_class
    from engine.strategies.base import StrategyContext

    strategies = [strategy_class(kind)(params) for _, kind, params in specs]
    contexts = [StrategyContext(Decimal(0)) for _ in specs]
    held, flat = Decimal(1), Decimal(0)
    signals = 0
    t0 = time.perf_counter()
    for candle in candles:
        for strategy, ctx in zip(strategies, contexts, strict=True):
            signal = strategy.on_candle(candle, ctx)
            if signal is not None:
                signals += 1
                ctx.position_qty = held if signal.side == "buy" else flat
    return time.perf_counter() - t0, signals


def run_set(count: int, data: Path, profiler: cProfile.Profile | None = None) -> dict[str, Any]:
    """One end-to-end run of the ``count``-strategy set (as bench_backtest's ``run_ours``), then its strategies
    alone; the orders and fills of each strategy are read back from the run's SQLite file. ``profiler`` (if any)
    profiles the engine's run only."""
    import anyio
    import anyio.lowlevel

    from engine.exchanges.replay import ReplaySource
    from engine.persistence.store import Store
    from engine.runtime.app import Engine, RunOptions
    from engine.runtime.sources import ReplayMarketSource

    specs = SETS[count]
    config = config_for(specs, data)
    anyio.run(anyio.lowlevel.checkpoint)  # anyio's backend import is process start-up, not the run
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        t0 = time.perf_counter()
        replay = ReplaySource(data, pair=PAIR)
        replay.load()
        source = ReplayMarketSource(replay, None, data.name, yield_interval_s=0.25)
        engine = Engine.from_config(
            config,
            db,
            source=source,
            options=RunOptions(durable_intents=False, record_every_candle=False, id_prefix="bt"),
        )
        t1 = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        anyio.run(engine.run)
        if profiler is not None:
            profiler.disable()
        t2 = time.perf_counter()
        store = Store.open_readonly(db)
        orders = store.load_orders()
        fills = store.load_fills()
    per: dict[str, dict[str, int]] = {name: {"orders": 0, "fills": 0} for name, _, _ in specs}
    for order in orders:
        per[order.strategy]["orders"] += 1
    for fill in fills:
        per[fill.strategy]["fills"] += 1
    alone_s, signals = strategies_alone(specs, list(replay.events))
    return {
        "candles": engine.state.cursor,
        "load_s": t1 - t0,
        "run_s": t2 - t1,
        "total_s": t2 - t0,
        "alone_s": alone_s,
        "alone_signals": signals,
        "refusals": sum(engine.trader.refusal_counts.values()),
        "per_strategy": per,
        "trades": {
            name: [(f.ts_ns, f.side.value, str(f.qty), str(f.price)) for f in fills if f.strategy == name]
            for name, _, _ in specs
        },
    }


def _child(count: int, data: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(count), "--data", str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise Refused(f"the {count}-strategy run failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def check_runs(results: dict[int, list[dict[str, Any]]]) -> None:
    """Raises Refused unless every strategy traded, nothing was refused, and each strategy made the same fills in
    every run of every set (its load is then the same whatever runs beside it)."""
    seen: dict[str, Any] = {}
    for count, runs in results.items():
        for run in runs:
            if run["refusals"]:
                raise Refused(f"{run['refusals']} orders were refused in the {count}-strategy set")
            for name, load in run["per_strategy"].items():
                if not load["orders"] or not load["fills"]:
                    raise Refused(f"{name} made no order or fill in the {count}-strategy set")
            for name, trades in run["trades"].items():
                if seen.setdefault(name, trades) != trades:
                    raise Refused(f"{name} traded differently in the {count}-strategy set than in another run")


def report(results: dict[int, list[dict[str, Any]]]) -> None:
    best: dict[int, float] = {}
    orders: dict[int, int] = {}
    for count, runs in results.items():
        totals = [r["total_s"] for r in runs]
        first = min(runs, key=lambda r: r["total_s"])
        best[count] = first["total_s"]
        alone = min(r["alone_s"] for r in runs)
        candles = first["candles"]
        orders[count] = sum(v["orders"] for v in first["per_strategy"].values())
        load = ", ".join(f"{n} {v['orders']}/{v['fills']}" for n, v in first["per_strategy"].items())
        print(
            f"{count} strateg{'y' if count == 1 else 'ies'}: best {best[count]:.3f}s = {candles / best[count]:,.0f} "
            f"candles/s (reading the file {first['load_s']:.3f}s), median {statistics.median(totals):.3f}s over "
            f"{len(runs)} runs; strategies alone (on_candle) best {alone:.3f}s, so the engine best "
            f"{best[count] - alone:.3f}s\n    orders/fills ({orders[count]:,} orders): {load}"
        )
    one = results[1]
    for count in (4, 8):
        pairs = [r["total_s"] / o["total_s"] for o, r in zip(one, results[count], strict=True)]
        alone = min(r["alone_s"] for r in results[count]) - min(r["alone_s"] for r in one)
        engine = best[count] - best[1] - alone
        more = orders[count] - orders[1]
        goal = " (goal: under 3x)" if count == 8 else ""
        print(
            f"{count}/1: best/best {best[count] / best[1]:.2f}x, median of {len(pairs)} side-by-side runs "
            f"{statistics.median(pairs):.2f}x (range {min(pairs):.2f}-{max(pairs):.2f}x){goal}; of the "
            f"{best[count] - best[1]:.3f}s more, the {count - 1} extra strategies' on_candle {alone:.3f}s, "
            f"the engine {engine:.3f}s ({engine / (count - 1) * 1000:.0f} ms per extra strategy, "
            f"{engine / more * 1e6:.0f} us per extra order if it were all orders: {more:,} more)"
        )


def profile(count: int, data: Path, top: int) -> None:
    """Print the ``top`` functions by own time of one engine run (the file's reading and the strategies alone
    left out) of the ``count``-strategy set."""
    profiler = cProfile.Profile()
    run = run_set(count, data, profiler)
    print(f"{count} strategies: {run['candles']} candles, the engine's run {run['run_s']:.3f}s under the profiler")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", type=int, choices=sorted(SETS))
    parser.add_argument("--profile", type=int, choices=sorted(SETS), help="profile one in-process run of this set")
    parser.add_argument("--top", type=int, default=35, help="functions the profile prints")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_set(args.child, args.data)))
        return 0
    try:
        candles = check_data(args.data)
        if args.profile:
            profile(args.profile, args.data, args.top)
            return 0
        results: dict[int, list[dict[str, Any]]] = {count: [] for count in SETS}
        for _ in range(args.repeat):
            for count in SETS:
                results[count].append(_child(count, args.data))
        check_runs(results)
    except Refused as exc:
        print(f"REFUSED: {exc}", file=sys.stderr)
        return 1
    print(f"data: {args.data} ({candles:,} candles of {PAIR}; {args.repeat} alternating runs per set)")
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
