"""Readers must not stall trading: a max-speed ``run`` with and without MCP clients reading flat out over HTTP.

The engine runs as a user runs it, ``trading-mcp run --speed max --mcp-http 127.0.0.1:0`` on a state file (every
order intent synced before its send, every candle recorded), so the MCP server is the gateway process. Two runs
over the same data, on fresh state files:

1. alone, for the measuring window;
2. with ``--clients`` MCP clients (streamable HTTP, bearer token, the 2026-07-28 protocol) calling read tools back
   to back (get_status, get_balance, get_positions, get_orders, get_trades, get_risk, bot://positions, in turn)
   for the same window, from one load process (``--load-processes N`` shares them out over N), niced, standing
   for clients on other machines (see ``run_load``). Measured on 2 cores: its latencies
   include the clients waiting for each other on one event loop (the SDK client validates every result against
   the tool's schema; one process of eight niced clients was 81 % busy and its p99 68 ms while the gateway was
   busy a third of the time), and eight processes cost the engine more than their CPU (34 % slowdown at
   SCHED_IDLE, 51 % niced, with +13 us of engine CPU per candle: a 2-core machine with ten busy processes).
   A load process busy most of the window gets no verdict.

Pace is measured from the state file (the replay cursor, as another process sees it). The bench prints the
candles each run moved in the window and the orders it placed, the engine's CPU, the slowdown, the reads done
and their latency (per tool too; each client calls every tool once before the window, so one-time costs of a
session stay out of it). It refuses to print a verdict when its load is not what it claims: a replay that ran
out of data or stopped trading inside the window, a client that failed, too few reads, or a load process busy
most of the window (its latencies would be its own).

Data: ``../shared/data/kraken-ohlcvt/XBTUSD_60.csv`` when present (else the shipped one-minute sample), repeated
with its times shifted until it lasts the window at max speed (one pass of XBTUSD_60 takes ~12 s here).

    python bench/bench_mcp_readers.py [--seconds 60] [--clients 8] [--repeat 8]
"""

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/x.py`: the repo, for bench.*

from bench.shared_data import REPO, find_shared

SHARED_CSV = find_shared()
SAMPLE = REPO / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
TOKEN = "bench-readers-token-0123456789abcdef"
TOOLS = ("get_status", "get_balance", "get_positions", "get_orders", "get_trades", "get_risk", "bot://positions")


def long_history(folder: Path, repeat: int) -> tuple[Path, int, str]:
    """A Kraken OHLCVT file of ``repeat`` copies of the history, each shifted past the previous one's end."""
    if SHARED_CSV is not None:
        rows = [line.split(",") for line in SHARED_CSV.read_text().splitlines() if line]
        source, interval = SHARED_CSV.name, 3600
    else:
        data = json.loads(SAMPLE.read_text())["result"]["XBTUSDT"][:-1]  # the last row is still open
        rows = [[str(r[0]), r[1], r[2], r[3], r[4], r[6], str(r[7])] for r in data]
        source, interval = SAMPLE.name, 60
    span = int(rows[-1][0]) - int(rows[0][0]) + interval
    path = folder / f"XBTUSD_{interval // 60}.csv"
    with path.open("w") as out:
        for copy in range(repeat):
            shift = copy * span
            for row in rows:
                out.write(",".join([str(int(row[0]) + shift), *row[1:]]) + "\n")
    return path, len(rows) * repeat, source


def orders_placed(db: Path) -> int:
    """Orders in the state file so far (the replay is trading, not only recording candles)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process so far, from /proc (0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cursor(db: Path) -> int:
    """The replay position as another process sees it (0 before the first record)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT value FROM kv WHERE key = 'cursor'").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(json.loads(row[0])) if row else 0


# An account that outlasts the fees of every pass of the repeated history (10,000 USD would run dry after two
# passes of XBTUSD_60 and every later entry would be refused: a replay that records candles but no longer trades).
CONFIG = '[paper]\nstarting_balances = { USD = "10000000" }\n'


def start_engine(data: Path, db: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "TRADING_MCP_TOKEN": TOKEN, "PYTHONPATH": str(REPO)}
    config = db.with_suffix(".toml")
    config.write_text(CONFIG)
    command = [sys.executable, "-m", "trading_mcp", "run", "--speed", "max", "--quiet", "--db", str(db)]
    command += ["--config", str(config), "--data", str(data), "--mcp-http", "127.0.0.1:0"]
    # Its stderr goes to a file: a pipe nobody drains would block a chatty engine (or its gateway) once full.
    log = db.with_suffix(".log")
    with log.open("w") as err:
        engine = subprocess.Popen(command, env=env, stderr=err, stdout=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 60
    while "http://" not in (text := log.read_text()):
        if engine.poll() is not None or time.monotonic() > deadline:
            engine.kill()
            raise SystemExit(f"the engine did not start: {text.strip()[-300:]}")
        time.sleep(0.05)
    url = text.split("MCP over HTTP at ")[1].split(";")[0]
    return engine, url


def stop(engine: subprocess.Popen[str]) -> None:
    engine.send_signal(signal.SIGINT)
    try:
        engine.wait(30)
    except subprocess.TimeoutExpired:
        engine.kill()


@dataclass
class Run:
    """What one run did in the window: candles replayed, and the readers' figures (none when alone)."""

    candles: int
    seconds: float
    running_at_end: bool
    orders: int
    engine_cpu: float = 0.0
    reads: int = 0
    error_count: int = 0
    errors: list[str] = field(default_factory=list)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    per_tool: dict[str, list[float]] = field(default_factory=dict)
    load_cpu: float = 0.0  # the busiest load process's CPU share of one core in the window

    @property
    def rate(self) -> float:
        return self.candles / self.seconds


def split(clients: int, processes: int) -> list[int]:
    """``clients`` shared out over ``processes`` load processes as evenly as can be (none when no clients)."""
    processes = max(1, min(processes, clients))
    return [clients // processes + (i < clients % processes) for i in range(processes)] if clients else []


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(
    data: Path, folder: Path, name: str, seconds: float, clients: int, processes: int, load_args: list[str]
) -> Run:
    db = folder / f"{name}.db"
    engine, url = start_engine(data, db)
    try:
        deadline = time.monotonic() + 60
        while cursor(db) < 500:  # past start-up and the first candles
            if time.monotonic() > deadline or engine.poll() is not None:
                raise SystemExit(f"{name}: the replay did not get going")
            time.sleep(0.05)
        loads: list[subprocess.Popen[str]] = []
        for share in split(clients, processes):
            load = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--load",
                    url,
                    "--clients",
                    str(share),
                    "--seconds",
                    str(seconds),
                    *load_args,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
            loads.append(load)
        for load in loads:  # each says when its clients are connected and warm; the window starts when all are
            assert load.stdout is not None and load.stdin is not None
            if load.stdout.readline().strip() != "ready":
                raise SystemExit(f"{name}: a load process did not start")
        for load in loads:
            assert load.stdin is not None
            load.stdin.write("go\n")
            load.stdin.flush()
        start_cursor, start, start_orders = cursor(db), time.perf_counter(), orders_placed(db)
        start_cpu = cpu_seconds(engine.pid)
        time.sleep(seconds)
        end_cursor, end, end_cpu = cursor(db), time.perf_counter(), cpu_seconds(engine.pid)
        running = engine.poll() is None and end_cursor < total_candles(data)
        run = Run(end_cursor - start_cursor, end - start, running, orders_placed(db) - start_orders)
        run.engine_cpu = end_cpu - start_cpu
        latencies: list[tuple[str, float]] = []
        for load in loads:
            out, _ = load.communicate(timeout=seconds + 60)
            figures = json.loads(out)
            latencies += [(str(tool), float(x)) for tool, x in figures["latencies"]]
            run.error_count += figures["error_count"]
            run.errors += figures["errors"]
            run.load_cpu = max(run.load_cpu, figures["cpu_s"] / figures["window_s"])
        ms = sorted(x * 1000 for _tool, x in latencies)
        run.reads = len(ms)
        if ms:
            run.p50_ms, run.p99_ms, run.max_ms = statistics.median(ms), percentile(ms, 0.99), ms[-1]
        for tool in TOOLS:
            own = sorted(x * 1000 for name, x in latencies if name == tool)
            if own:
                run.per_tool[tool] = [statistics.median(own), percentile(own, 0.99)]
    finally:
        stop(engine)
    return run


def total_candles(data: Path) -> int:
    with data.open() as handle:
        return sum(1 for _ in handle)


# -- the load process --------------------------------------------------------------------------------------


def run_load(url: str, clients: int, seconds: float, interval: float, nice: int) -> None:
    """``clients`` MCP clients reading for ``seconds`` (back to back, or ``interval`` seconds apart each); prints
    JSON latencies at the end."""
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    # The load generator shares this machine's cores: it stands for clients on other machines and must not be
    # what slows the engine. Niced (the default, 10) it still costs the engine some: on a kernel with the EEVDF
    # scheduler (Linux 6.6 on) a niced task may run out its slice before a woken engine thread gets the core.
    # SCHED_IDLE (--load-nice -1) costs the engine least but starves the load itself whenever the engine and the
    # gateway hold both cores, so its latencies include its own waits (measured: a 551 ms outlier, paced).
    if nice < 0:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    elif nice:
        os.nice(nice)

    async def one(
        index: int, latencies: list[tuple[str, float]], errors: list[str], ready: list[int], go: anyio.Event
    ) -> None:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            for tool in TOOLS:  # a session's first calls pay one-time costs: the window measures the steady state
                if tool.startswith("bot://"):
                    await client.read_resource(tool)
                else:
                    await client.call_tool(tool, {})
            ready.append(index)
            await go.wait()
            end = time.monotonic() + seconds
            turn = index
            while time.monotonic() < end:
                tool = TOOLS[turn % len(TOOLS)]
                turn += 1
                start = time.perf_counter()
                try:
                    if tool.startswith("bot://"):
                        await client.read_resource(tool)
                    else:
                        result = await client.call_tool(tool, {})
                        if result.is_error:
                            errors.append(tool)
                except Exception as exc:  # a failed read is counted and reported, never hidden
                    errors.append(f"{tool}: {type(exc).__name__}")
                latencies.append((tool, time.perf_counter() - start))
                if interval:
                    await anyio.sleep(interval)

    async def main() -> None:
        latencies: list[tuple[str, float]] = []
        errors: list[str] = []
        ready: list[int] = []
        go = anyio.Event()
        async with anyio.create_task_group() as tg:
            for index in range(clients):
                tg.start_soon(one, index, latencies, errors, ready, go)
            while len(ready) < clients:
                await anyio.sleep(0.01)
            print("ready", flush=True)
            await anyio.to_thread.run_sync(sys.stdin.readline)  # the bench starts every load process's window at once
            started, cpu = time.perf_counter(), time.process_time()
            go.set()
        window, used = time.perf_counter() - started, time.process_time() - cpu
        figures = {"latencies": latencies, "errors": errors[:20], "error_count": len(errors)}
        print(json.dumps({**figures, "cpu_s": used, "window_s": window}))

    anyio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring window")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=24, help="copies of the history in the replayed file")
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between a client's reads (0: flat out)")
    parser.add_argument(
        "--load-nice",
        type=int,
        default=10,
        help="niceness of the load processes (0: as the engine; -1: SCHED_IDLE, only spare CPU)",
    )
    parser.add_argument("--load-processes", type=int, default=1, help="processes the clients are shared out over")
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        run_load(args.load, args.clients, args.seconds, args.interval, args.load_nice)
        return
    with tempfile.TemporaryDirectory(prefix="bench-readers-") as tmp:
        folder = Path(tmp)
        data, candles, source = long_history(folder, args.repeat)
        print(f"machine: {os.cpu_count()} cores; data: {source} x{args.repeat} = {candles} candles; {args.seconds:g} s")
        load_args = ["--interval", str(args.interval), "--load-nice", str(args.load_nice)]
        pace = "back to back" if not args.interval else f"{args.interval * 1000:g} ms apart"
        priority = "SCHED_IDLE" if args.load_nice < 0 else f"niceness {args.load_nice}"
        print(f"load: {args.clients} clients reading {pace}, {priority}")
        processes = max(1, args.load_processes)
        alone = measure(data, folder, "alone", args.seconds, 0, processes, load_args)
        print(
            f"alone:       {alone.candles:>7} candles, {alone.orders} orders in {alone.seconds:.1f} s"
            f" = {alone.rate:.0f}/s"
        )
        loaded = measure(data, folder, "readers", args.seconds, args.clients, processes, load_args)
        print(
            f"{args.clients} readers:   {loaded.candles:>7} candles, {loaded.orders} orders in {loaded.seconds:.1f} s"
            f" = {loaded.rate:.0f}/s"
        )
        print(
            f"reads: {loaded.reads} ({loaded.reads / loaded.seconds:.0f}/s), p50 {loaded.p50_ms:.1f} ms, "
            f"p99 {loaded.p99_ms:.1f} ms, max {loaded.max_ms:.1f} ms, errors {loaded.error_count}"
        )
        print(
            f"engine process CPU in the window: alone {alone.engine_cpu / alone.seconds:.2f} cores, "
            f"with readers {loaded.engine_cpu / loaded.seconds:.2f} cores "
            f"({(loaded.engine_cpu / loaded.candles - alone.engine_cpu / alone.candles) * 1e6:+.1f} us per candle)"
        )
        print(f"load: {len(split(args.clients, processes))} processes, the busiest used {loaded.load_cpu:.2f} cores")
        for tool, (p50, p99) in loaded.per_tool.items():
            print(f"  {tool:<16} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms")
        problems = []
        if not alone.running_at_end or not loaded.running_at_end:
            problems.append("a replay ran out of data inside the window: use --repeat to lengthen it")
        if min(alone.orders, loaded.orders) < args.seconds:
            problems.append("fewer than one order a second in a window: the replay was not trading")
        if loaded.error_count:
            problems.append(f"reads failed: {loaded.errors}")
        if loaded.reads < args.clients * args.seconds / max(1.0, 10 * args.interval):
            problems.append("fewer reads than one per client per second: the load is not what it claims")
        if loaded.load_cpu > 0.8:
            problems.append(
                "a load process was busy most of the window: its clients' latencies include waiting for each other "
                "(use more --load-processes)"
            )
        if problems:
            print("NO VERDICT: " + "; ".join(problems))
            sys.exit(1)
        slowdown = 1 - loaded.rate / alone.rate
        print(
            f"slowdown with {args.clients} readers: {slowdown:.1%} (goal < 20 %); "
            f"read p99 {loaded.p99_ms:.1f} ms (goal < 50 ms)"
        )


if __name__ == "__main__":
    main()
