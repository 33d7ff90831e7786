"""MCP latency: get_status and bot://positions while the engine replays flat out, and emergency_stop with 200 orders.

Runs in-process through the SDK's client (both protocol eras), so the figures are the MCP layer plus the engine's
facade, without a transport. Usage::

    python bench/bench_mcp_latency.py [--n 500] [--stops 20] [--data PATH]

``--data`` defaults to the shared ``data/kraken-ohlcvt/XBTUSD_60.csv`` (50k hourly candles), found from any checkout
(:mod:`bench.shared_data`), so that the replay is still running while the reads are measured. Without it the
bench refuses (exit 2) rather than measure an idle engine over the 720-candle sample, and it prints no read figure
when the replay finished before the reads did (the figure would then be of an idle engine).
"""

import argparse
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp_types import ElicitRequestParams, ElicitResult

from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import Config, config_from_mapping
from engine.runtime.facade import EngineFacade
from trading_mcp.server import build_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/x.py`: the repo, for bench.*

from bench.shared_data import XBTUSD_60_CANDLES, checked_candles, find_shared, refuse


def percentiles(samples_s: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples_s)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   max {ms[-1]:7.3f} ms   (n={len(ms)})"


async def timed(n: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


def replay_config(data: Path | None) -> Config:
    market: dict[str, Any] = {"speed": "max"}
    if data is not None:
        market.update(file=str(data), pair="XBTUSD", interval_minutes=60)
    return config_from_mapping({"market": market})


async def bench_reads(n: int, data: Path | None, options: RunOptions, label: str) -> str | None:
    """Print the read latencies; or, when the replay ended before the reads did, print none and say why."""
    print(f"reads while the engine replays ({label}):")
    engine = Engine.from_config(replay_config(data), db_path=None, options=options)
    async with engine.serve() as facade:
        server = build_server(facade)
        for mode in ("auto", "legacy"):
            async with Client(server, mode=mode, cache=None) as client:
                await client.call_tool("get_status", {})  # warm-up
                before = engine.state.cursor
                status = await timed(n, lambda: client.call_tool("get_status", {}))
                positions = await timed(n, lambda: client.read_resource("bot://positions"))
                replayed = engine.state.cursor - before
                if engine.state.finished:  # the reads were (in part) of an idle engine
                    return (
                        f"the replay ended during the {2 * n} reads ({replayed} candles replayed meanwhile): "
                        "use a longer file or fewer calls (--n)"
                    )
            era = "2026-07-28" if mode == "auto" else "2025-11-25"
            print(f"[{era}] get_status          {percentiles(status)}")
            print(f"[{era}] read bot://positions {percentiles(positions)}")
            print(f"[{era}]   candles replayed during these {2 * n} calls: {replayed}")
        print(f"  replay: {engine.source.description}; finished: {engine.state.finished}")
    return None


async def place_resting_orders(facade: EngineFacade, count: int) -> None:
    last = (await facade.market("XBTUSD")).last
    assert last is not None
    price = (last / 2).quantize(Decimal("0.1"))
    for _ in range(count):
        await facade.submit_order("XBTUSD", "buy", Decimal("0.0001"), price, source="bench")


async def accept(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
    return ElicitResult(action="accept", content={"confirm": True})


async def bench_emergency_stop(stops: int, orders: int) -> None:
    caps = {"max_open_orders": 1000, "max_pair_notional": 100000, "max_total_notional": 100000}
    config = config_from_mapping(
        {
            "market": {"speed": "max"},
            "risk": {"limits": caps, "caps": caps},
            "strategies": [],
        }
    )
    engine = Engine.from_config(config, db_path=None, options=RunOptions(max_events=30))
    async with engine.serve() as facade:
        await engine.done.wait()
        server = build_server(facade)
        for mode in ("auto", "legacy"):
            elicited: list[float] = []
            token_path: list[float] = []
            async with (
                Client(server, mode=mode, elicitation_callback=accept, cache=None) as asking,
                Client(server, mode=mode, cache=None) as tokens,
            ):
                cold: list[float] = []
                for i in range(-2, stops):  # the first two (one per client) are the cold start, reported apart
                    if (await facade.status()).trading_state != "active":
                        await facade.resume(source="bench")
                    await place_resting_orders(facade, orders)
                    assert (await facade.status()).open_orders == orders
                    start = time.perf_counter()
                    if i % 2 == 0:
                        result = await asking.call_tool("emergency_stop", {})
                        (elicited if i >= 0 else cold).append(time.perf_counter() - start)
                    else:
                        first = await tokens.call_tool("emergency_stop", {})
                        token = (first.structured_content or {})["confirmation_token"]
                        result = await tokens.call_tool("emergency_stop", {"confirmation_token": token})
                        (token_path if i >= 0 else cold).append(time.perf_counter() - start)
                    stop = (result.structured_content or {}).get("stop") or {}
                    assert stop.get("canceled_orders") == orders, result
                    assert stop.get("open_orders_after") == 0
            era = "2026-07-28" if mode == "auto" else "2025-11-25"
            print(f"[{era}] emergency_stop, {orders} open orders, elicitation: {percentiles(elicited)}")
            print(f"[{era}] emergency_stop, {orders} open orders, token (2 calls): {percentiles(token_path)}")
            print(f"[{era}]   first call of each client (cold): {', '.join(f'{c * 1000:.1f} ms' for c in cold)}")


async def main(args: argparse.Namespace) -> int:
    data = args.data or find_shared()
    if data is None:
        return refuse("bench_mcp_latency", "the shared XBTUSD_60.csv is not found (set $TRADING_MCP_SHARED or --data)")
    try:
        checked_candles(data, at_least=XBTUSD_60_CANDLES // 5)
    except ValueError as exc:
        return refuse("bench_mcp_latency", str(exc))
    print(f"MCP latency, in-process client; replay data: {data}")
    # `run` pacing: every order intent is committed before it is sent and every candle is recorded, so the replay
    # often waits for the writer; backtest pacing keeps the event loop saturated, the harder case for reads.
    for options, label in (
        (RunOptions(), "run mode: durable intents, state recorded per candle"),
        (RunOptions(durable_intents=False, record_every_candle=False), "backtest pacing: loop saturated"),
    ):
        idle = await bench_reads(args.n, data, options, label)
        if idle is not None:
            return refuse("bench_mcp_latency", idle)
    await bench_emergency_stop(args.stops, args.orders)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="calls per read measurement")
    parser.add_argument("--stops", type=int, default=50, help="emergency stops per protocol era")
    parser.add_argument("--orders", type=int, default=200, help="open paper orders at each stop")
    parser.add_argument("--data", type=Path, default=None, help="OHLCVT CSV to replay")
    sys.exit(anyio.run(main, parser.parse_args()))
