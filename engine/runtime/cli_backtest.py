"""``trading-mcp backtest``: one strategy over a data file, as fast as the machine goes.

A backtest answers "what would these rules have done", so by default it runs under no risk limits at all (sizes,
notionals and exposure unbounded): limits tuned for live trading would otherwise refuse orders the rules made
(``max_order_qty = 1`` refuses a 1,000 USD entry in BTC at 122 USD, or most ETH entries). ``--risk-limits config``
applies the ``--config`` file's ``[risk]`` limits instead. Kraken's own rules (volume precision, ``ordermin``,
``costmin``) and the account's funds apply either way. The summary says which limits applied.

Every order refused before it was sent is reported: counted by rule in the text summary, listed in ``--json``
(time, strategy, pair, side, qty, rule, reason), and in the database as an ``order_refused`` event each (what
``--json`` lists is read back from there). Orders the simulated venue rejected are listed beside them. ``--json``
also lists every fill (time, side, price, qty, fee), so a run can be compared fill for fill with another
implementation of the same rules (tests/backtest/test_cross_check.py does).

``--start`` / ``--end`` (ISO dates or date-times, UTC) replay only the candles inside that window; ``window`` says
which were. ``metrics`` holds CAGR and the annualisation of the ratios (``return_interval``, ``periods_per_year``);
a figure that does not hold is null, ``annualised_note`` says why (:mod:`engine.portfolio.performance`).

The run itself is :mod:`engine.runtime.backtest_run`'s, which the MCP tool ``backtest`` runs too.
"""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from engine.domain.orders import Fill, Order
from engine.errors import InvalidRequest
from engine.persistence.records import EventRecord
from engine.runtime.app import Engine
from engine.runtime.backtest_run import (
    BACKTEST_YIELD_S,
    RISK_LIMIT_CHOICES,
    BacktestError,
    BacktestOutcome,
    BacktestSpec,
    parse_when,
    prepare_backtest,
    run_prepared,
)
from engine.runtime.backtest_run import backtest_config as config_for
from engine.runtime.backtest_text import render_backtest, write_trades_csv
from engine.runtime.config import Config, load_config
from engine.runtime.facade import iso

__all__ = [
    "BACKTEST_YIELD_S",
    "RISK_LIMIT_CHOICES",
    "BacktestError",
    "add_backtest_parser",
    "backtest_config",
    "backtest_spec",
    "cmd_backtest",
    "render_backtest",
]


def add_backtest_parser(sub: Any) -> None:
    bt = sub.add_parser("backtest", help="run one strategy over a data file as fast as possible")
    bt.add_argument("--data", type=Path, required=True, help="Kraken OHLCVT CSV, or REST OHLC or Trades JSON")
    bt.add_argument("--strategy", required=True, help="strategy kind (trading-mcp strategies lists them)")
    bt.add_argument("--param", action="append", default=[], metavar="K=V", help="strategy parameter (repeatable)")
    bt.add_argument("--pair", default="BTC/USD", help="pair the data is traded as, in any spelling (default BTC/USD)")
    bt.add_argument("--interval", type=int, help="candle interval in minutes (inferred when omitted)")
    bt.add_argument("--config", type=Path, help="TOML config (paper account, fees, and [risk] with --risk-limits)")
    bt.add_argument(
        "--risk-limits",
        choices=RISK_LIMIT_CHOICES,
        default="none",
        help="none (default): sizes and exposure unbounded; config: the --config file's [risk] limits",
    )
    bt.add_argument("--start", help="replay candles opening at or after this ISO date or date-time (UTC)")
    bt.add_argument("--end", help="...and closing at or before this one (a date: through its end)")
    bt.add_argument("--db", type=Path, help="write the run to this SQLite file (default: in memory)")
    bt.add_argument("--json", action="store_true", help="print JSON (exact values, every trade and fill)")
    bt.add_argument(
        "--trades",
        type=_trade_count,
        default=10,
        metavar="N|all",
        help="trades listed in the text summary (default 10; all: every one)",
    )
    bt.add_argument("--export", type=Path, metavar="FILE.csv", help="also write every trade to FILE.csv (exact values)")
    bt.add_argument("--no-progress", action="store_true", help="no progress bar")


def _trade_count(text: str) -> int | None:
    if text == "all":
        return None
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a count or 'all', got {text!r}")


def _parse_params(items: Sequence[str]) -> dict[str, str | bool]:
    """``NAME=VALUE`` pairs; ``true`` and ``false`` (any case) are booleans, as in TOML (a number parameter given
    one is refused by its declaration), every other value stays text for the parameter to read."""
    params: dict[str, str | bool] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BacktestError(f"--param {item!r}: use NAME=VALUE")
        text = value.strip()
        params[key.strip()] = {"true": True, "false": False}.get(text.lower(), text)
    return params


def backtest_spec(args: argparse.Namespace) -> BacktestSpec:
    """The command line as a :class:`~engine.runtime.backtest_run.BacktestSpec`.

    Raises:
        BacktestError: a malformed ``--param``, ``--start`` or ``--end``.
    """
    try:
        start = parse_when(args.start, what="start") if getattr(args, "start", None) else None
        end = parse_when(args.end, what="end") if getattr(args, "end", None) else None
    except InvalidRequest as exc:
        raise BacktestError(f"--{exc}") from None
    if start is not None and end is not None and start >= end:
        raise BacktestError(f"--start {args.start} is not before --end {args.end}")
    return BacktestSpec(
        data=args.data,
        strategy=args.strategy,
        params=_parse_params(args.param),
        pair=args.pair,
        interval_minutes=args.interval,
        risk_limits=getattr(args, "risk_limits", "none"),
        start_ns=start,
        end_ns=end,
    )


def backtest_config(args: argparse.Namespace) -> Config:
    """The configuration of one backtest: the ``--config`` file (or the defaults) with one strategy on the file,
    replayed at full speed, under no risk limits unless ``--risk-limits config``."""
    return config_for(load_config(args.config), backtest_spec(args))


def cmd_backtest(args: argparse.Namespace) -> int:
    prepared = prepare_backtest(load_config(args.config), backtest_spec(args), args.db)
    engine = prepared.engine
    for note in engine.notes:
        print(f"trading-mcp backtest: {note}", file=sys.stderr)
    show_progress = not args.no_progress and prepared.window.candles > 20000 and sys.stderr.isatty()
    outcome = anyio.run(run_prepared, prepared, _progress_bar if show_progress else None)
    if show_progress:
        sys.stderr.write("\n")  # the bar's line ends before the summary starts
    result = backtest_json(args, outcome)
    if args.export is not None:
        write_trades_csv(result["trades"], args.export)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render_backtest(result, args.trades))
        if args.export is not None:
            print(f"trades written to {args.export}")
    return 0


def backtest_json(args: argparse.Namespace, outcome: BacktestOutcome) -> dict[str, Any]:
    """What ``--json`` prints (and the text summary shows)."""
    engine = outcome.engine
    config = engine.config
    refused = engine.trader.refusal_counts
    total = sum(refused.values())
    limits = engine.risk.limits
    return {
        "data": str(args.data),
        "pair": config.market.pair,
        "quote_currency": config.quote_currency,
        "notes": engine.notes,
        "strategy": args.strategy,
        "params": {k: str(v) for k, v in engine.slots[0].strategy.shown_values().items()},
        "candles": engine.state.cursor,
        "window": outcome.window.model_dump(mode="json"),
        "risk_limits": {
            "applied": args.risk_limits,
            "limits": None if args.risk_limits == "none" else limits.model_dump(mode="json"),
        },
        # [risk.rules] of --config apply in a backtest as in a run (the same code), each trip counted by rule.
        "account_rules": {
            "rules": engine.account_guard.rules.model_dump(mode="json", exclude_none=True),
            "trips": dict(sorted(engine.account_guard.trips.items())),
            "trading_state": engine.risk.state.value,
        },
        # Position guards (the strategy's stop_loss_pct, take_profit_pct, ... parameters), triggers by rule.
        "guard_exits": dict(sorted(engine.trader.guard_counts.items())),
        # Per-strategy circuit breakers ([risk.breakers] in --config): trips by rule (each disables its strategy).
        "breaker_trips": dict(sorted(engine.trader.breaker_counts.items())),
        "metrics": outcome.performance.metrics,
        "return_interval": outcome.performance.return_interval,
        "final_equity": format(engine.portfolio.equity(), "f"),
        "fills": [_fill_json(f) for f in outcome.fills],
        "trades": [
            {
                "entry": iso(t.entry_ts_ns) or "",
                "exit": iso(t.exit_ts_ns) or "",
                "qty": format(t.qty, "f"),
                "entry_price": format(t.entry_price, "f"),
                "exit_price": format(t.exit_price, "f"),
                "pnl": format(t.pnl, "f"),
                "fees": format(t.fees, "f"),
            }
            for t in engine.portfolio.round_trips
        ],
        "refusals": {
            "total": total,
            "by_rule": dict(sorted(refused.items(), key=lambda kv: (-kv[1], kv[0]))),
            "orders": [_refusal_json(e) for e in outcome.refusal_events],
        },
        "rejected_by_venue": [_rejection_json(o) for o in outcome.rejected],
    }


def _fill_json(fill: Fill) -> dict[str, str]:
    return {
        "time": iso(fill.ts_ns) or "",
        "strategy": fill.strategy,
        "side": fill.side.value,
        "price": format(fill.price, "f"),
        "qty": format(fill.qty, "f"),
        "fee": format(fill.fee, "f"),
        "liquidity": fill.liquidity,
    }


def _refusal_json(event: EventRecord) -> dict[str, Any]:
    p = event.payload
    return {
        "time": iso(event.ts_ns) or "",
        "strategy": p.get("strategy"),
        "pair": p.get("pair"),
        "side": p.get("side"),
        "qty": p.get("qty"),
        "rule": p.get("rule"),
        "reason": p.get("reason"),
    }


def _rejection_json(order: Order) -> dict[str, Any]:
    return {
        "time": iso(order.created_ts_ns) or "",
        "strategy": order.strategy,
        "pair": order.pair,
        "side": order.side.value,
        "qty": format(order.qty, "f"),
        "reason": order.reason,
    }


async def _progress_bar(engine: Engine) -> None:
    total = engine.source.total or 1
    while True:
        done = engine.state.cursor
        width = 40
        filled = int(width * done / total)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        sys.stderr.flush()
        await anyio.sleep(0.2)
