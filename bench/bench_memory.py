"""Peak memory of ``trading-mcp backtest`` over a long file: does memory stay flat as the file grows?

    python bench/bench_memory.py [--candles 10000000] [--data .../XBTUSD_60.csv] [--params fast=50 slow=200]

The long file is made from the shared ``XBTUSD_60.csv`` (50,378 real hourly candles, found from any checkout by
:mod:`bench.shared_data`): its rows are laid end to end as one-minute candles, every other copy played backwards
(open and close swapped), so the price path is continuous and stays within the real range however long the file;
10,000,000 candles are 19 years of minutes, a 570 MB file. Each size (a tenth of the goal, then the goal) is
backtested in a fresh process, as a user runs it (``python -m trading_mcp backtest --json``: ``trading-mcp
backtest``), and its peak resident memory is read from the kernel (``ru_maxrss`` of the finished child). The
figures: file size, candles, seconds, candles per second, peak RSS, and the growth in bytes per candle between the
two sizes.

It refuses to print a figure when the workload is not what it claims: the shared file absent or short, the backtest
not replaying every candle of the file, or a run that made no trade (an idle strategy measures only the reader).
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/x.py`: the repo, for bench.*

from bench.shared_data import REPO, XBTUSD_60_CANDLES, checked_candles, find_shared, refuse

START_S = 1_388_534_400  # 2014-01-01T00:00:00Z
GOAL_MB = 200


def write_long_file(source: Path, candles: int, folder: Path) -> Path:
    """``candles`` one-minute rows made from ``source``'s (see the module's docstring)."""
    rows = [line.split(",") for line in source.read_text().splitlines() if line.strip()]
    backwards = [[r[0], r[4], r[2], r[3], r[1], *r[5:]] for r in reversed(rows)]  # open <-> close
    path = folder / "XBTUSD_1.csv"
    written = 0
    with path.open("w") as out:
        copy = 0
        while written < candles:
            block = rows if copy % 2 == 0 else backwards
            take = block[: candles - written]
            out.write("".join(f"{START_S + 60 * (written + i)},{','.join(r[1:])}\n" for i, r in enumerate(take)))
            written += len(take)
            copy += 1
    return path


def run_backtest(path: Path, params: list[str]) -> tuple[dict[str, object], float, float]:
    """The backtest's JSON summary, its wall seconds and its peak RSS (MB), run in a fresh process."""
    argv = [sys.executable, "-m", "trading_mcp", "backtest", "--data", str(path), "--strategy", "ema_cross"]
    for param in params:
        argv += ["--param", param]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    done = subprocess.run([*argv, "--json", "--no-progress"], capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        raise RuntimeError(f"the backtest failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    if peak_kb <= before:
        raise RuntimeError("this child's peak is hidden by an earlier, larger one: run each size in its own bench")
    summary: dict[str, object] = json.loads(done.stdout)
    return summary, seconds, peak_kb / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=10_000_000, help="the long file's candles (default 10M)")
    parser.add_argument("--data", type=Path, default=None, help="default: the shared XBTUSD_60.csv, found")
    parser.add_argument(
        "--params", nargs="*", default=["fast=50", "slow=200"], help="ema_cross parameters (NAME=VALUE)"
    )
    args = parser.parse_args()
    data = args.data or find_shared()
    if data is None:
        return refuse("bench_memory", "the shared XBTUSD_60.csv is not found (set $TRADING_MCP_SHARED or --data)")
    try:
        checked_candles(data, at_least=XBTUSD_60_CANDLES)
    except ValueError as exc:
        return refuse("bench_memory", str(exc))
    if args.candles < 100_000:
        return refuse("bench_memory", f"--candles {args.candles}: a memory growth needs at least 100,000 candles")
    sizes = [args.candles // 10, args.candles]  # growing by ten: the larger file comes second (ru_maxrss only rises)
    print(f"bench_memory: {data.name} laid end to end as one-minute candles; ema_cross {' '.join(args.params)}")
    peaks: list[float] = []
    for candles in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = write_long_file(data, candles, Path(tmp))
            size_mb = path.stat().st_size / 1e6
            try:
                summary, seconds, peak_mb = run_backtest(path, args.params)
            except RuntimeError as exc:
                return refuse("bench_memory", str(exc))
        replayed = summary.get("candles")
        fills = summary.get("fills")
        if replayed != candles:
            return refuse("bench_memory", f"the backtest replayed {replayed} of the file's {candles} candles")
        if not isinstance(fills, list) or not fills:
            return refuse("bench_memory", "the backtest made no trade: it would measure the reader alone")
        peaks.append(peak_mb)
        print(
            f"  {candles:>12,} candles ({size_mb:,.0f} MB file): {seconds:7.1f} s, "
            f"{candles / seconds:>9,.0f} candles/s, {len(fills):,} fills, peak RSS {peak_mb:,.0f} MB"
        )
    growth = (peaks[1] - peaks[0]) * 1024 * 1024 / (sizes[1] - sizes[0])
    verdict = "met" if peaks[1] < GOAL_MB else "NOT met"
    print(f"  growth {growth:,.1f} bytes per candle; goal: under {GOAL_MB} MB at {sizes[1]:,} candles ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
