"""Data and helpers of the optimisation tests: the shipped one-minute sample (as rows the tests read themselves),
CSV windows of it, a synthetic file whose regimes change, and the CLI run in-process."""

import json
import math
from pathlib import Path
from typing import Any

import pytest

from engine.runtime.cli import main

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
# The sample trades BTC against USDT: an account in USDT, at a fixed fee tier.
USDT_CONFIG = """quote_currency = "USDT"

[paper]
fee_volume_30d = 0
starting_balances = { USDT = 10000 }
"""
Row = tuple[int, str, str, str, str, str, int]


def usdt_config(tmp_path: Path) -> Path:
    path = tmp_path / "usdt.toml"
    path.write_text(USDT_CONFIG)
    return path


def sample_rows() -> list[Row]:
    """The sample's closed candles (time, open, high, low, close, volume, trades), read from the JSON here."""
    result = json.loads(SAMPLE.read_text())["result"]
    last = int(result["last"])
    return [(int(r[0]), r[1], r[2], r[3], r[4], r[6], int(r[7])) for r in result["XBTUSDT"] if int(r[0]) <= last]


def write_csv(path: Path, rows: list[Row]) -> Path:
    """Rows as a Kraken OHLCVT CSV (no header), its folder made if need be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(str(v) for v in row) + "\n" for row in rows))
    return path


def synthetic_rows(blocks: str, size: int = 200, start: int = 1_700_000_040) -> list[Row]:
    """One-minute candles in blocks of ``size``: ``A`` swings fast and smoothly (an EMA(2)/EMA(4) cross rides
    every swing, an EMA(40) lags them and loses), ``B`` dips then trends up under a 1.2 % zigzag (EMA(2)/EMA(4)
    whipsaws and pays fees on every zig, EMA(2)/EMA(40) holds the trend)."""
    prices = []
    for kind in blocks:
        for i in range(size):
            if kind == "A":
                prices.append(100 * (1 + 0.02 * math.sin(2 * math.pi * i / 16)))
            else:
                trend = 1 - 0.05 * i / 50 if i < 50 else 0.95 + 0.3 * (i - 50) / size
                prices.append(100 * trend * (1 + (0.012 if i % 2 else -0.012)))
    rows: list[Row] = []
    previous = prices[0]
    for k, close in enumerate(prices):
        high, low = max(previous, close) * 1.0005, min(previous, close) * 0.9995
        rows.append((start + 60 * k, f"{previous:.2f}", f"{high:.2f}", f"{low:.2f}", f"{close:.2f}", "10", 5))
        previous = close
    return rows


def cli_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    """Run a command with ``--json`` in-process; its stdout must be one JSON document."""
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def backtest_metrics(data: Path, params: dict[str, str], capsys: pytest.CaptureFixture[str], *extra: str) -> Any:
    """``trading-mcp backtest --json``'s metrics for ema_cross with ``params`` on ``data``."""
    argv = ["backtest", "--data", str(data), "--strategy", "ema_cross", "--no-progress", *extra]
    for name, value in params.items():
        argv += ["--param", f"{name}={value}"]
    return cli_json(argv, capsys)["metrics"]
