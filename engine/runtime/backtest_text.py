"""What ``trading-mcp backtest`` prints for a person, and the trades it exports as CSV.

Every figure is rounded to its meaning for reading: money to its currency's display decimals (2 for fiat and
stablecoins, 0 for JPY, 8 for crypto) with the currency named, ratios of equity as percentages (a return with its
sign), Sharpe, Sortino and the profit factor to two decimals. The trades are listed up to a count (``--trades``;
every one with ``all``). ``--json`` and ``--export`` keep the exact values (strings of the Decimals).
"""

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["TRADE_COLUMNS", "money", "percent", "render_backtest", "write_trades_csv"]

TRADE_COLUMNS = ("entry", "exit", "qty", "entry_price", "exit_price", "pnl", "fees")
_TWO_PLACES = frozenset({"USD", "EUR", "GBP", "CHF", "CAD", "AUD", "USDT", "USDC", "DAI", "PYUSD"})
_NO_PLACES = frozenset({"JPY"})


def money(value: str | Decimal, currency: str, *, sign: bool = False) -> str:
    """``value`` rounded to ``currency``'s display decimals, thousands separated, with the currency."""
    places = 2 if currency in _TWO_PLACES else 0 if currency in _NO_PLACES else 8
    return f"{Decimal(value):{'+' if sign else ''},.{places}f} {currency}"


def percent(fraction: str | Decimal, *, sign: bool = False) -> str:
    """A fraction (0.0123) as a percentage to two decimals ("1.23%", or "+1.23%" with ``sign``)."""
    return f"{Decimal(fraction) * 100:{'+' if sign else ''}.2f}%"


def _ratio(value: str | None) -> str:
    return "n/a" if value is None else f"{Decimal(value):.2f}"


def render_backtest(result: dict[str, Any], trades: int | None = 10) -> str:
    """The text summary of a backtest's ``--json`` result, listing at most ``trades`` trades (``None``: all)."""
    m = result["metrics"]
    ccy = result["quote_currency"]
    lines = [
        f"Backtest {result['strategy']} {result['params']} on {result['pair']} ({result['candles']:,} candles)",
        f"  window         {result['window']['start']} to {result['window']['end']}",
        f"  risk limits    {_limits_line(result['risk_limits'])}",
        f"  account rules  {_rules_line(result['account_rules'])}",
        f"  final equity   {money(result['final_equity'], ccy)} (from {money(m['start_equity'], ccy)})",
        f"  total return   {percent(m['total_return'], sign=True)}",
        f"  realized PnL   {money(m['realized_pnl'], ccy, sign=True)} (net of fees)",
        f"  fees paid      {money(m['fees_paid'], ccy)}",
        f"  max drawdown   {percent(m['max_drawdown'])} ({money(m['max_drawdown_abs'], ccy)})",
        f"  Sharpe         {_ratio(m.get('sharpe'))}",
        f"  Sortino        {_ratio(m.get('sortino'))}",
        f"  CAGR           {'n/a' if m.get('cagr') is None else percent(m['cagr'], sign=True)}",
        f"  round trips    {m['trade_count']}",
    ]
    if m["trade_count"]:
        lines += [
            f"  win rate       {percent(m['win_rate'])}",
            f"  profit factor  {_ratio(m.get('profit_factor'))}",
            f"  expectancy     {money(m['expectancy'], ccy, sign=True)} a round trip",
        ]
    lines.append(f"  exposure       {percent(m['exposure'])} of the time in a position")
    days = "n/a" if m.get("span_days") is None else f"{Decimal(m['span_days']):.2f}"
    lines.append(
        f"  (ratios from {m.get('return_count')} {result['return_interval']} returns, annualised by "
        f"sqrt({m.get('periods_per_year')}); CAGR over {days} days of 365)"
    )
    if m.get("annualised_note"):
        lines.append(f"  ({m['annualised_note']})")
    lines.append(f"  fills          {len(result['fills'])}")
    guards = result["guard_exits"]
    if guards:
        listed = ", ".join(f"{rule} {count}" for rule, count in guards.items())
        lines.append(f"  guard exits    {sum(guards.values())} ({listed})")
    breakers = result["breaker_trips"]
    if breakers:
        listed = ", ".join(f"{rule} {count}" for rule, count in breakers.items())
        lines.append(f"  breaker trips  {sum(breakers.values())} ({listed}; the strategy stopped entering)")
    refusals = result["refusals"]
    if refusals["total"]:
        by_rule = ", ".join(f"{rule} {count}" for rule, count in refusals["by_rule"].items())
        lines.append(f"  refused orders {refusals['total']} ({by_rule}; --json lists each)")
    else:
        lines.append("  refused orders 0")
    rejected = result["rejected_by_venue"]
    if rejected:
        reasons: dict[str, int] = {}
        for r in rejected:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        by_reason = ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items()))
        lines.append(f"  rejected by the venue {len(rejected)} ({by_reason})")
    lines += _trade_lines(result["trades"], ccy, trades)
    return "\n".join(lines)


def _trade_lines(all_trades: list[dict[str, str]], ccy: str, limit: int | None) -> list[str]:
    shown = all_trades if limit is None else all_trades[:limit]
    if len(shown) == len(all_trades):
        head = f"Trades ({len(all_trades)}):"
    else:
        head = (
            f"Trades ({len(all_trades)}; the first {len(shown)} shown: --trades all lists every one, "
            "--export FILE.csv writes them exactly):"
        )
    lines = [head]
    for t in shown:
        lines.append(
            f"  {t['entry'][:16]} -> {t['exit'][:16]}  qty {t['qty']}  {t['entry_price']} -> {t['exit_price']}"
            f"  pnl {money(t['pnl'], ccy, sign=True)}"
        )
    return lines


def write_trades_csv(trades: list[dict[str, str]], path: Path) -> None:
    """The round trips, one row each with :data:`TRADE_COLUMNS` as the header, values exact.

    Raises:
        OSError: the file cannot be written.
    """
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=TRADE_COLUMNS)
        writer.writeheader()
        writer.writerows(trades)


def _rules_line(applied: dict[str, Any]) -> str:
    rules = {k: v for k, v in applied["rules"].items() if k != "flatten_on_drawdown"}
    if not rules:
        return "none ([risk.rules] in --config: max_drawdown_pct, max_daily_loss, reduce_at_drawdown_pct)"
    listed = ", ".join(f"{name} {value}" for name, value in rules.items())
    if applied["rules"].get("flatten_on_drawdown"):
        listed += ", flatten_on_drawdown"
    trips = ", ".join(f"{rule} {count}" for rule, count in applied["trips"].items()) or "none"
    return f"{listed}; trips: {trips}; trading ended {applied['trading_state']}"


def _limits_line(applied: dict[str, Any]) -> str:
    if applied["applied"] == "none":
        return "none (sizes and exposure unbounded; --risk-limits config applies the config's [risk] limits)"
    limits = applied["limits"]
    return "the config's [risk] limits: " + ", ".join(f"{name} {value}" for name, value in limits.items())
