"""``trading-mcp optimize`` throughput on the shared hourly file: trials per second with 1 and N workers, and the
time of a 100-combination grid.

    python bench/bench_optimize.py [--data ../shared/data/kraken-ohlcvt/XBTUSD_60.csv] [--workers N] [--trials 16]

Each trial is a full backtest of EMA cross over the whole file (50,378 hourly candles): the same engine path as
``trading-mcp backtest``. The two rate runs use the random sampler with the same seed, so both run the same
parameter sets (the search's rounds make results independent of the worker count; the benchmark checks that they
agree, so that both figures measure the same work). Times are end to end, as a user waits for them: loading the
file, starting the worker processes (spawned, each loading the file once), every trial, the deflated Sharpe ratio.
The grid is fast 5..50 step 5 by slow 60..240 step 20: 100 combinations, all valid (the goal: under 30 s on two
cores).

No figure is printed for a run that did fewer trials than asked (a trial the strategy refused counts as not done),
nor when the data file is absent.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/x.py`: the repo, for bench.*

from bench.shared_data import XBTUSD_60_CANDLES, checked_candles, find_shared, refuse

GRID = ("fast=5:50:5", "slow=60:240:20")
GRID_SIZE = 100
RATE_RANGES = ("fast=5:50", "slow=60:240")


class Refused(Exception):
    """A figure the benchmark will not print (the message says why)."""


def timed(
    data: Path, *, params: tuple[str, ...], trials: int, workers: int, sampler: str
) -> tuple[float, float, list[str]]:
    """Seconds for one optimisation, seconds until its first trial had finished (start-up and one backtest), and a
    fingerprint of its trials (parameters and objective, in order)."""
    from engine.research.run import OptimizeRequest, optimize
    from engine.research.walk_forward import Progress

    request = OptimizeRequest(
        data=data,
        strategy="ema_cross",
        params=params,
        pair="XBTUSD",
        trials=trials,
        sampler=sampler,
        seed=1,
        workers=workers,
    )
    started = time.perf_counter()
    first: list[float] = []

    def heard(progress: Progress) -> None:
        if not first:
            first.append(time.perf_counter() - started)

    result = optimize(request, heard)
    elapsed = time.perf_counter() - started
    ran = [t for t in result.trials if t.state != "invalid"]
    if len(ran) < trials:
        raise Refused(f"the run did {len(ran)} trials of the {trials} asked: no figure")
    return elapsed, first[0], [f"{t.params} {t.value}" for t in result.trials]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="default: the shared XBTUSD_60.csv, found")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="N (default: the CPU count)")
    parser.add_argument("--trials", type=int, default=48, help="trials of each rate run (default 48)")
    args = parser.parse_args()
    args.data = args.data or find_shared()
    if args.data is None:
        return refuse("bench_optimize", "the shared XBTUSD_60.csv is not found (set $TRADING_MCP_SHARED or --data)")
    try:
        checked_candles(args.data, at_least=XBTUSD_60_CANDLES // 5)
    except ValueError as exc:
        return refuse("bench_optimize", str(exc))
    print(f"data {args.data.name}, EMA cross, {os.cpu_count()} CPUs")
    try:
        one, start_one, first = timed(args.data, params=RATE_RANGES, trials=args.trials, workers=1, sampler="random")
        print(
            f"  1 worker    {args.trials} trials in {one:6.1f} s: {args.trials / one:5.2f} trials/s "
            f"(first trial done after {start_one:.1f} s)"
        )
        many, start_many, second = timed(
            args.data, params=RATE_RANGES, trials=args.trials, workers=args.workers, sampler="random"
        )
        if second != first:
            raise Refused(f"{args.workers} workers ran other trials than 1 worker: no figure")
        print(
            f"  {args.workers} workers   {args.trials} trials in {many:6.1f} s: {args.trials / many:5.2f} trials/s "
            f"(x{one / many:.2f}; first trial done after {start_many:.1f} s)"
        )
        grid, _, _ = timed(args.data, params=GRID, trials=GRID_SIZE, workers=args.workers, sampler="grid")
        verdict = "within" if grid < 30 else "over"
        print(f"  grid of {GRID_SIZE} combinations, {args.workers} workers: {grid:.1f} s ({verdict} the 30 s goal)")
    except Refused as exc:
        print(f"bench_optimize: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
