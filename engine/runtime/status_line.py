"""The live status line on stderr and the end-of-run summary."""

import sys
from typing import TextIO

import anyio

from engine.runtime.facade import EngineFacade
from engine.runtime.views import PerformanceView, StatusView

__all__ = ["format_status", "format_summary", "status_loop"]


def format_status(status: StatusView) -> str:
    progress = f"{status.progress * 100:5.1f}%" if status.progress is not None else "  live"
    when = (status.market_time or "-")[:19].replace("T", " ")
    return (
        f"[{status.mode}] {progress} {when} | equity {status.equity:,.2f} {status.quote_currency}"
        f" | positions {status.open_positions} | orders {status.open_orders} | fills {status.trades}"
        f" | {status.trading_state}" + (f" | ETA {_clock(status.eta_s)}" if status.eta_s is not None else "")
    )


def _clock(seconds: int) -> str:
    """``h:mm:ss`` (``mm:ss`` under an hour)."""
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def format_summary(perf: PerformanceView, status: StatusView) -> str:
    m = perf.metrics
    lines = [
        f"Performance ({status.mode}, {status.data_source})",
        f"  equity          {status.equity:,.2f} {status.quote_currency}",
    ]
    keys = [
        ("total_return", "total return"),
        ("realized_pnl", "realized PnL"),
        ("unrealized_pnl", "unrealized PnL"),
        ("fees_paid", "fees paid"),
        ("max_drawdown", "max drawdown"),
        ("sharpe", "Sharpe"),
        ("sortino", "Sortino"),
        ("trade_count", "round trips"),
        ("win_rate", "win rate"),
        ("profit_factor", "profit factor"),
        ("expectancy", "expectancy"),
        ("exposure", "exposure"),
    ]
    for key, label in keys:
        value = m.get(key)
        if value is None:
            text = "n/a"
        elif key in ("total_return", "max_drawdown", "win_rate", "exposure"):
            text = f"{float(value) * 100:.2f}%"
        elif isinstance(value, str):
            text = f"{float(value):,.4f}" if key in ("sharpe", "sortino", "profit_factor") else f"{float(value):,.2f}"
        else:
            text = str(value)
        lines.append(f"  {label:<15} {text}")
    lines.append(f"  (Sharpe/Sortino from {perf.return_interval} returns, annualised over 365 days, risk-free 0)")
    return "\n".join(lines)


async def status_loop(facade: EngineFacade, stream: TextIO = sys.stderr, interval: float = 0.5) -> None:
    """Redraw one status line (a TTY) or print one every 10 s (a log)."""
    tty = stream.isatty()
    every = interval if tty else 10.0
    try:
        while True:
            line = format_status(await facade.status())
            stream.write(f"\r\x1b[2K{line}" if tty else f"{line}\n")
            stream.flush()
            await anyio.sleep(every)
    finally:
        if tty:
            stream.write("\n")
            stream.flush()
