"""Command line: ``run``, ``status`` and ``backtest`` (the MCP package adds ``serve`` and ``attach``).

Every error a user can cause (a bad option, a bad config, an unreadable data file) ends with one clear line on
stderr and exit status 2, never a traceback; nothing is changed.
"""

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from engine.domain.instrument import Instrument
from engine.errors import FacadeError
from engine.exchanges.kraken.protocol.errors import KrakenError
from engine.exchanges.kraken.rest_client import KrakenRestClient
from engine.exchanges.port import ExchangeError
from engine.exchanges.replay import ReplayError
from engine.persistence import StoreError
from engine.redaction import Redactor
from engine.runtime.app import Engine, EngineError, RunOptions
from engine.runtime.catalog_refresh import CatalogChoice
from engine.runtime.cli_backtest import BacktestError, add_backtest_parser, cmd_backtest
from engine.runtime.cli_download import add_download_parser, cmd_download
from engine.runtime.cli_operator import OperatorCommandError, cmd_halt, cmd_resume
from engine.runtime.cli_optimize import OptimizeError, add_optimize_parser, cmd_optimize
from engine.runtime.cli_orders import OrderCommandError, add_orders_parsers, cmd_cancel, cmd_close
from engine.runtime.cli_pairs import PairsError, add_pairs_parser, cmd_pairs
from engine.runtime.cli_scan import add_scan_parser, cmd_scan
from engine.runtime.cli_status import NoSavedState, cmd_status
from engine.runtime.cli_strategies import add_strategies_parser, cmd_strategies
from engine.runtime.config import Config, ConfigError, config_from_mapping, load_config, parse_speed
from engine.runtime.facade import EngineFacade
from engine.runtime.state_lock import Owner, StateInUse, StateLock
from engine.runtime.status_line import format_summary, status_loop

__all__ = ["EXIT_USAGE", "UsageError", "build_parser", "main", "run_engine_command"]

EXIT_USAGE = 2
Extra = Callable[[EngineFacade], Coroutine[Any, Any, None]]


class UsageError(Exception):
    """A mistake in the command line or configuration; the message is shown as is."""


def build_parser() -> tuple[argparse.ArgumentParser, Any]:
    parser = argparse.ArgumentParser(
        prog="trading-mcp",
        description="Kraken trading engine with an MCP supervisor (paper trading by default).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="trade (paper by default) until the data ends or Ctrl-C; resumes saved state")
    _common(run)
    run.add_argument(
        "--speed", help="replay pace: auto (the default: a candle every 0.1 s), max, realtime, or a multiple such as 60"
    )
    run.add_argument("--data", type=Path, help="replay this Kraken OHLCVT CSV or REST OHLC/Trades JSON instead")
    run.add_argument("--pair", help="pair the replayed data is traded as, in any spelling (default BTC/USD)")
    run.add_argument(
        "--market", choices=["replay", "kraken"], help="market data: a replayed file or Kraken's live feed"
    )
    run.add_argument(
        "--live", action="store_true", help="trade real money on Kraken (also needs TRADING_MCP_ALLOW_LIVE=1)"
    )
    run.add_argument("--reset", action="store_true", help="delete the saved state first and start over")
    run.add_argument("--quiet", action="store_true", help="no status line")

    status = sub.add_parser("status", help="print the saved state without trading")
    _common(status)
    status.add_argument("--json", action="store_true", help="print JSON")

    halt = sub.add_parser(
        "halt", help="kill switch: the engine using this state cancels every open order and halts (no LLM involved)"
    )
    _common(halt)
    halt.add_argument("--flatten", action="store_true", help="also close every position at market")
    halt.add_argument("--reason", default="", help="why (written to the event log)")

    resume = sub.add_parser(
        "resume", help="lift a pause or a halt, the operator's own included (the MCP client cannot lift that one)"
    )
    _common(resume)

    add_orders_parsers(sub)
    add_pairs_parser(sub)
    check = sub.add_parser("kraken-check", help="check connectivity, status, clock skew, keys and instruments")
    check.add_argument("--config", type=Path, help="TOML configuration file")
    check.add_argument("--json", action="store_true", help="print JSON")

    add_backtest_parser(sub)
    add_optimize_parser(sub)
    add_scan_parser(sub)
    add_download_parser(sub)
    add_strategies_parser(sub)
    return parser, sub


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML configuration file (default: built-in defaults)")
    parser.add_argument("--db", type=Path, help="SQLite state file (default: <data_dir>/engine.db)")


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise UsageError(f"data file {path} does not exist or is not a file")


def _load(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    if getattr(args, "data", None) is not None:
        _require_file(args.data)
    overrides: dict[str, Any] = {}
    market: dict[str, Any] = {}
    if getattr(args, "speed", None):
        try:
            parse_speed(args.speed)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        market["speed"] = args.speed
    if getattr(args, "data", None):
        market["file"] = args.data
    if getattr(args, "pair", None):
        market["pair"] = args.pair
    if getattr(args, "market", None):
        market["source"] = args.market
    if market:
        overrides["market"] = {**config.market.model_dump(), **market}
    if getattr(args, "live", False):
        overrides["mode"] = "live"
    if overrides:
        config = config_from_mapping({**config.model_dump(), **overrides})
    return config


def _db_path(args: argparse.Namespace, config: Config) -> Path:
    return args.db if args.db is not None else config.db_path


def check_live_opt_in(config: Config, live_flag: bool) -> None:
    """Refuse live trading unless every opt-in is present; the message lists what is missing.

    Raises:
        UsageError: when live trading is asked for without ``--live``, ``TRADING_MCP_ALLOW_LIVE=1`` or keys.
    """
    if config.mode != "live" and not live_flag:
        return
    missing = []
    if not live_flag:
        missing.append("the --live flag")
    if os.environ.get("TRADING_MCP_ALLOW_LIVE") != "1":
        missing.append("TRADING_MCP_ALLOW_LIVE=1 in the environment")
    for name in ("KRAKEN_API_KEY", "KRAKEN_API_SECRET"):
        if not os.environ.get(name):
            missing.append(f"{name} in the environment")
    if missing:
        raise UsageError("live trading refused: missing " + ", ".join(missing))


@dataclass
class RunResult:
    interrupted: bool


async def run_engine(engine: Engine, *, quiet: bool, extras: Sequence[Extra] = ()) -> RunResult:
    """Run until the data ends or SIGINT/SIGTERM; print the summary. State is saved either way."""
    interrupted = False
    async with engine.serve() as facade, anyio.create_task_group() as tg:

        async def watch_signals() -> None:
            nonlocal interrupted
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    interrupted = True
                    tg.cancel_scope.cancel()
                    return

        async def until_done() -> None:
            await engine.done.wait()
            if not engine.options.keep_alive:
                tg.cancel_scope.cancel()

        tg.start_soon(watch_signals)
        tg.start_soon(until_done)
        if not quiet:
            tg.start_soon(status_loop, facade)
        for extra in extras:
            tg.start_soon(extra, facade)
    return RunResult(interrupted)


async def _summary(engine: Engine) -> str:
    facade = EngineFacade(engine)
    return format_summary(await facade.performance(), await facade.status())


def cmd_run(args: argparse.Namespace, extras: Sequence[Extra] = (), keep_alive: bool = False) -> int:
    config = _load(args)
    check_live_opt_in(config, args.live)
    db = _db_path(args, config)
    if args.reset:
        reset_state(db)
    engine = build_engine(config, db, RunOptions(keep_alive=keep_alive))
    for note in engine.notes:
        print(f"trading-mcp run: {note}", file=sys.stderr)

    async def main() -> RunResult:
        result = await run_engine(engine, quiet=args.quiet, extras=extras)
        print(await _summary(engine))
        return result

    result = anyio.run(main)
    if result.interrupted:
        print(f"stopped; state saved in {db} (run again to resume)", file=sys.stderr)
    elif not args.quiet:
        # The default state file lives in the user's data folder, out of sight: say where.
        print(f"state saved in {db} (trading-mcp status shows it; run --reset starts over)", file=sys.stderr)
    return 0


def reset_state(db: Path) -> None:
    """Delete the state file (and its log), unless an engine is using it.

    Raises:
        StateInUse: an engine holds it (naming that process).
    """
    lock = StateLock(db)
    lock.acquire(Owner.this_process("trading-mcp run --reset"))
    try:
        for suffix in ("", "-wal", "-shm", ".operator", ".operator.taken"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    finally:
        lock.release()


def build_engine(config: Config, db: Path | None, options: RunOptions) -> Engine:
    """The engine for ``config``: Kraken's live feed or a replay, paper or live venue."""
    if config.market.source == "kraken" or config.mode == "live":
        from engine.runtime.catalog_refresh import choose_catalog
        from engine.runtime.live import build_kraken_engine

        async def choose() -> CatalogChoice:
            async with KrakenRestClient(config.kraken.rest_url, tier=config.kraken.tier) as rest:
                return await choose_catalog(rest)

        # A run on Kraken trades by Kraken's current rules: refreshed now, else the kept copy, else the shipped.
        choice = anyio.run(choose)
        print(choice.note, file=sys.stderr)
        instruments = {i.pair: i for i in choice.catalog}
        if config.mode == "live":
            instruments = anyio.run(_live_fees, config, instruments)
        return build_kraken_engine(config, db, options, instruments=instruments)
    return Engine.from_config(config, db, options=options)


async def _live_fees(config: Config, instruments: dict[str, Instrument]) -> dict[str, Instrument]:
    """The traded pairs at the live account's own fee rates (TradeVolume), saying which in one line."""
    from engine.runtime.live import KEY_ENV, SECRET_ENV, traded_pairs
    from engine.runtime.live_fees import account_fees

    key, secret = os.environ.get(KEY_ENV), os.environ.get(SECRET_ENV)
    if not key or not secret:
        return instruments  # refused later, in one line, by the live engine's own check
    kraken = config.kraken
    async with KrakenRestClient(kraken.rest_url, api_key=key, api_secret=secret, tier=kraken.tier) as rest:
        updated, note = await account_fees(rest, instruments, traded_pairs(config))
    print(note, file=sys.stderr)
    return updated


def cmd_kraken_check(args: argparse.Namespace) -> int:
    import dataclasses

    from engine.runtime.live import kraken_check, render_check

    config = load_config(args.config)
    report = anyio.run(lambda: kraken_check(config, env=os.environ))
    if args.json:
        print(json.dumps({**dataclasses.asdict(report), "ok": report.ok}, indent=2, default=str))
    else:
        print(render_check(report))
    return 0 if report.ok else 1


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "halt": cmd_halt,
    "resume": cmd_resume,
    "cancel": cmd_cancel,
    "close": cmd_close,
    "kraken-check": cmd_kraken_check,
    "run": cmd_run,
    "status": cmd_status,
    "backtest": cmd_backtest,
    "optimize": cmd_optimize,
    "pairs": cmd_pairs,
    "scan": cmd_scan,
    "download": cmd_download,
    "strategies": cmd_strategies,
}


def run_engine_command(args: argparse.Namespace) -> int:
    """Run one of the engine's own commands, turning user errors into one line and exit status 2."""
    try:
        return COMMANDS[args.command](args)
    except (
        UsageError,
        BacktestError,
        OptimizeError,
        ConfigError,
        EngineError,
        ReplayError,
        FacadeError,
        OperatorCommandError,
        OrderCommandError,
        PairsError,
        StateInUse,
        NoSavedState,
    ) as exc:
        print(f"trading-mcp {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as exc:
        db = getattr(args, "db", None) or "the state file"
        print(
            f"trading-mcp {args.command}: {exc}; move {db} aside (or run with --reset to discard it) to start fresh",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except (KrakenError, ExchangeError) as exc:
        # The venue's own words, never verbatim: an upstream may echo the signed request (key, signature).
        from engine.runtime.live import describe_kraken_error

        text = describe_kraken_error(exc) if isinstance(exc, KrakenError) else Redactor().foreign(str(exc))
        print(f"trading-mcp {args.command}: the exchange refused: {text}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"trading-mcp {args.command}: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    parser, _ = build_parser()
    args = parser.parse_args(argv)
    return run_engine_command(args)
