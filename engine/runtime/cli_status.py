"""``trading-mcp status``: the saved state of a state file, read without trading (and while an engine runs)."""

import argparse
import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.exchanges.catalog import default_instruments
from engine.persistence import Store
from engine.risk.account_rules import AccountGuard, AccountRules, RulesState
from engine.runtime.account_guard import RULES_KV, RULES_STATE_KV
from engine.runtime.config import load_config
from engine.runtime.operator import pending_request
from engine.runtime.state_lock import StateLock

__all__ = ["NoSavedState", "cmd_status", "render_status", "saved_status"]


class NoSavedState(Exception):
    """There is no state file where the command looked."""


def cmd_status(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    db: Path = args.db if args.db is not None else config.db_path
    if not db.exists():
        raise NoSavedState(f"no saved state at {db}: run `trading-mcp run` first")
    with Store.open_readonly(db) as store:
        report = saved_status(store)
    holder = StateLock.holder(db)
    report["engine_running"] = None if holder is None else holder.describe()
    pending = pending_request(db)
    report["operator_request_pending"] = None if pending is None else pending.action
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render_status(report))
    return 0


def saved_status(store: Store) -> dict[str, Any]:
    kv = store.load_kv()
    positions = [
        {
            "strategy": p.strategy,
            "pair": p.pair,
            "qty": str(p.qty),
            "avg_entry": str(p.avg_entry),
            "realized_pnl": str(p.realized_pnl),
            "fees": str(p.fees),
        }
        for p in store.load_positions()
        if p.qty != 0
    ]
    all_positions = store.load_positions()
    equity = store.load_equity()
    opening = kv.get("opening_balances", {})
    return {
        "mode": kv.get("mode", "paper"),
        "trading_state": kv.get("trading_state", "active"),
        "halt_reason": kv.get("halt_reason", ""),
        "halted_by": kv.get("halted_by") if kv.get("trading_state") in ("paused", "halted") else None,
        "data_source": kv.get("source_id", kv.get("source")),
        "events_processed": kv.get("cursor", 0),
        "balances": {a: {"total": str(b.total), "held": str(b.held)} for a, b in sorted(store.load_balances().items())},
        "opening_balances": opening,
        "positions": positions,
        "open_orders": [
            {
                "client_id": o.client_id,
                "strategy": o.strategy,
                "pair": o.pair,
                "side": o.side.value,
                "type": o.order_type.value,
                "qty": str(o.qty),
                "filled_qty": str(o.filled_qty),
                "limit_price": None if o.limit_price is None else str(o.limit_price),
                "status": o.status.value,
            }
            for o in store.load_orders(open_only=True)
        ],
        "pnl": {
            # Per currency: each position's figures are in its pair's quote asset (ETHXBT's in BTC), and a saved
            # state has no marks to convert them with (the MCP performance tools report account-currency totals).
            "realized_gross": _by_quote((p.pair, p.realized_pnl) for p in all_positions),
            "fees": _by_quote((p.pair, p.fees) for p in all_positions),
            "equity": str(equity[-1][1]) if equity else None,
        },
        "fills": store.count_fills(),
        # Orders refused before they were sent (risk limits, Kraken's rules, funds): order_refused events.
        "refused_orders": store.count_events("order_refused"),
        "account_rules": _rules_status(kv, equity[-1][1] if equity else None),
        # The limits in force when last saved (the max_orders_per_minute window is not saved: it restarts empty).
        "risk_limits": dict(kv.get("risk_limits") or {}),
        # The latest circuit-breaker trip of each strategy (it disabled the strategy; enabling it re-arms it).
        "breaker_trips": {
            str(e.payload.get("strategy")): {"rule": e.payload.get("rule"), "detail": e.payload.get("detail")}
            for e in store.tail_events(50, "breaker_tripped")
        },
        "guard_exits": store.count_events("guard_triggered"),
        "profit_reserve": (kv.get("profit_reserve") or {}).get("amount"),
    }


def _rules_status(kv: dict[str, Any], equity: Decimal | None) -> list[dict[str, Any]]:
    """Each account rule in force ([risk.rules] as last applied), where the saved equity stands against it, and
    whether it tripped."""
    saved = kv.get(RULES_KV)
    if not saved:
        return []
    guard = AccountGuard(AccountRules.model_validate(saved), RulesState.from_json(kv.get(RULES_STATE_KV)))
    state = guard.state
    tripped = {
        "max_drawdown_pct": state.drawdown_tripped,
        "max_daily_loss": state.daily_tripped,
        "reduce_at_drawdown_pct": state.reducing,
    }
    rows = []
    for name, threshold, value, headroom, unit in guard.rows(equity) if equity is not None else []:
        rows.append(
            {
                "rule": name,
                "threshold": str(threshold),
                "value": None if value is None else f"{value:.2f}",
                "headroom": None if headroom is None else f"{headroom:.2f}",
                "unit": unit or "account currency",
                "tripped": tripped[name],
                "halting": state.halt_rule == name and kv.get("trading_state") == "halted",
            }
        )
    return rows


def _by_quote(amounts: Iterable[tuple[str, Decimal]]) -> dict[str, str]:
    """Sum ``(pair, amount)`` per the pair's quote asset (a pair the shipped catalog lacks: "<pair>'s quote")."""
    instruments = default_instruments()
    totals: dict[str, Decimal] = {}
    for pair, amount in amounts:
        quote = instruments[pair].quote if pair in instruments else f"{pair}'s quote"
        totals[quote] = totals.get(quote, Decimal(0)) + amount
    return {quote: str(total) for quote, total in sorted(totals.items())}


def render_status(report: dict[str, Any]) -> str:
    state = report["trading_state"]
    if report.get("halted_by"):
        by = "the operator" if report["halted_by"] == "operator" else "an MCP client"
        state += f" by {by}" + (f" ({report['halt_reason']})" if report.get("halt_reason") else "")
    elif state == "reducing":
        state += " (exits only" + (f": {report['halt_reason']})" if report.get("halt_reason") else ")")
    lines = [
        f"mode: {report['mode']}   trading: {state}   source: {report['data_source']}",
        f"events processed: {report['events_processed']}   fills: {report['fills']}   "
        f"refused orders: {report['refused_orders']}",
    ]
    if report.get("engine_running"):
        lines.append(f"engine running: {report['engine_running']}")
    if report.get("operator_request_pending"):
        pending = report["operator_request_pending"]
        lines.append(f"operator request pending: {pending} (the engine applies it at its next check or start)")
    if report.get("risk_limits"):
        shown = ", ".join(
            f"{name} {value}{'%' if name == 'price_band_pct' else ''}" for name, value in report["risk_limits"].items()
        )
        lines.append(f"risk limits: {shown}")
    for rule in report.get("account_rules", []):
        pct = "%" if rule["unit"] == "%" else ""
        flag = " HALTED by it" if rule["halting"] else (" TRIPPED" if rule["tripped"] else "")
        lines.append(
            f"rule {rule['rule']}: {rule['value']}{pct} of {rule['threshold']}{pct} "
            f"(headroom {rule['headroom']}{pct}){flag}"
        )
    for strategy, trip in report.get("breaker_trips", {}).items():
        lines.append(f"breaker {trip['rule']} stopped {strategy}: {trip['detail']} (enable it to re-arm)")
    if report.get("guard_exits"):
        lines.append(f"position guard exits: {report['guard_exits']} (guard_triggered events)")
    if report.get("profit_reserve"):
        lines.append(f"profit reserve: {report['profit_reserve']} (set aside; buys never spend it)")
    lines.append("balances:")
    for asset, b in report["balances"].items():
        lines.append(f"  {asset:<6} total {b['total']}  held {b['held']}")
    lines.append("positions:" if report["positions"] else "positions: none")
    for p in report["positions"]:
        lines.append(f"  {p['strategy']:<16} {p['pair']:<8} qty {p['qty']} @ {p['avg_entry']}")
    lines.append("open orders:" if report["open_orders"] else "open orders: none")
    for o in report["open_orders"]:
        lines.append(f"  {o['client_id']} {o['side']} {o['qty']} {o['pair']} {o['type']} {o['status']}")
    pnl = report["pnl"]

    def amounts(by_currency: dict[str, str]) -> str:
        return ", ".join(f"{amount} {currency}" for currency, amount in by_currency.items()) or "0"

    lines.append(
        f"PnL: realized {amounts(pnl['realized_gross'])} (gross), fees {amounts(pnl['fees'])}, "
        f"last equity {pnl['equity']}"
    )
    return "\n".join(lines)
