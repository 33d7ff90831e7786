"""``trading-mcp backtest``'s text summary: figures rounded to their meaning, read against the exact ``--json``
values of the same run (rounded here plainly, by ``Decimal.quantize``); ``--trades`` and ``--export``."""

import csv
import json
import re
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest

from trading_mcp.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
BACKTEST = ["backtest", "--data", str(SAMPLE), "--strategy", "ema_cross", "--pair", "XBTUSDT"]


def cents(text: str) -> str:
    """Money in USDT as a person reads it: two decimals, thousands separated (plain, not the code's helper)."""
    value = Decimal(text).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
    whole, _, frac = f"{abs(value):f}".partition(".")
    grouped = ",".join(reversed([whole[::-1][i : i + 3][::-1] for i in range(0, len(whole), 3)]))
    return f"{'-' if value < 0 else ''}{grouped}.{frac} USDT"


def pct(text: str) -> str:
    return f"{(Decimal(text) * 100).quantize(Decimal('0.01'), ROUND_HALF_EVEN)}%"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


def test_the_summary_rounds_money_and_ratios_from_the_exact_run(capsys: pytest.CaptureFixture[str]) -> None:
    exact: dict[str, Any] = json.loads(run([*BACKTEST, "--json"], capsys))
    m = exact["metrics"]
    lines = run(BACKTEST, capsys).splitlines()
    assert f"  final equity   {cents(exact['final_equity'])} (from {cents(m['start_equity'])})" in lines
    assert f"  total return   {pct(m['total_return'])}" in lines  # negative here: its sign is its own
    assert Decimal(m["total_return"]) < 0
    assert f"  realized PnL   {cents(m['realized_pnl'])} (net of fees)" in lines
    assert f"  fees paid      {cents(m['fees_paid'])}" in lines
    assert f"  max drawdown   {pct(m['max_drawdown'])} ({cents(m['max_drawdown_abs'])})" in lines
    assert f"  win rate       {pct(m['win_rate'])}" in lines
    assert f"  round trips    {len(exact['trades'])}" in lines
    # No figure of more than 2 decimals is left in the summary's money and ratio lines.
    figures = lines[4 : lines.index("  refused orders 0")]
    assert len(figures) > 10 and [line for line in figures if re.search(r"\d\.\d{3,}", line)] == []


def test_trades_are_listed_up_to_a_count_and_exported_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exact: dict[str, Any] = json.loads(run([*BACKTEST, "--json"], capsys))
    trades = exact["trades"]
    assert len(trades) > 3
    listed = [line for line in run([*BACKTEST, "--trades", "3"], capsys).splitlines() if " -> " in line]
    assert len(listed) == 3 and listed[0].startswith(f"  {trades[0]['entry'][:16]} -> {trades[0]['exit'][:16]}")
    everything = [line for line in run([*BACKTEST, "--trades", "all"], capsys).splitlines() if " -> " in line]
    assert len(everything) == len(trades)
    out = tmp_path / "trades.csv"
    assert f"trades written to {out}" in run([*BACKTEST, "--export", str(out)], capsys)
    with out.open(newline="") as f:
        assert list(csv.DictReader(f)) == trades  # exact strings, every trade


@pytest.mark.parametrize("bad", ["-1", "some", "1.5"])
def test_a_bad_trade_count_is_refused(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*BACKTEST, "--trades", bad])
    assert exited.value.code == 2
    assert "expected a count or 'all'" in capsys.readouterr().err
