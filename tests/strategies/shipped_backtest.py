"""A ``trading-mcp backtest --json`` on the shipped XBTUSDT sample, for the strategy tests.

The sample is quoted in USDT, so the account is too (a USD account could not size an entry before it knew a USDT
price in USD, and would refuse every one). Market orders under no risk limits fill whole at the close of the candle
that signalled, so a run's fills are its signals: :func:`fill_sides_and_times` gives them as (side, unix seconds of
the deciding candle's close) to compare with a plain computation over :func:`shipped_candles`.
"""

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from backtest.ema_cross_reference import Candle, read_candles

from engine.runtime.cli import main

SHIPPED_OHLC = Path(__file__).resolve().parents[2] / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"


def shipped_candles() -> list[Candle]:
    """The sample's closed one-minute candles (``time`` is the open, unix seconds)."""
    return read_candles(SHIPPED_OHLC)


def usdt_config(folder: Path, body: str = "") -> Path:
    """A config file in ``folder``: a 10,000 USDT paper account, and ``body`` (TOML, top-level keys first)."""
    path = folder / "usdt.toml"
    path.write_text(f'quote_currency = "USDT"\n{body}\n[paper]\nstarting_balances = {{ USDT = 10000 }}\n')
    return path


def backtest_json(kind: str, config: Path, capsys: pytest.CaptureFixture[str], *params: str) -> dict[str, Any]:
    capsys.readouterr()
    argv = ["backtest", "--data", str(SHIPPED_OHLC), "--strategy", kind, "--pair", "XBTUSDT", "--json"]
    argv += ["--config", str(config), *(f"--param={p}" for p in params)]
    assert main(argv) == 0, capsys.readouterr().err
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def expected_fills(signals: list[str | None], candles: list[Candle]) -> list[tuple[str, int]]:
    """(side, time) of the fills that plain per-candle ``signals`` make: a market order fills at the next candle's
    open (tests/backtest/ema_cross_reference.py), so a signal on the last candle fills nowhere."""
    return [(s, candles[i + 1].time) for i, s in enumerate(signals[:-1]) if s is not None]


def fill_sides_and_times(result: dict[str, Any]) -> list[tuple[str, int]]:
    """(side, unix seconds) of every fill; asserts there is at least one and that the run is long only."""
    fills = [
        (f["side"], int(datetime.fromisoformat(f["time"].replace("Z", "+00:00")).timestamp())) for f in result["fills"]
    ]
    sides = [side for side, _ in fills]
    assert sides, result["refusals"]
    assert sides == ["buy", "sell"] * (len(sides) // 2) + ["buy"] * (len(sides) % 2)
    return fills
