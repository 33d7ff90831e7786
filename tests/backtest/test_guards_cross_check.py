"""Position guards in a backtest, checked fill for fill against the plain reimplementation.

The engine's stop-loss, take-profit (with a partial scale-out), trailing stop and time stop, set as the
strategy's parameters on the command line, must make exactly the fills (time, side, price, qty, fee) and trigger
exactly the guards that :func:`backtest.ema_cross_reference.run_reference` computes with its own loop over the
candles' highs and lows (no engine code), on the shipped minute candles and, when present, on Kraken's hourly
XBTUSD history.
"""

import json
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from backtest.ema_cross_reference import Guards, read_candles, run_reference
from backtest.test_cross_check import (
    BTC_RULES,
    BUDGET,
    FEE,
    SHARED_XBTUSD_60,
    SHIPPED_OHLC,
    START,
    _iso,
    engine_rows,
    first_difference,
    reference_rows,
)

from engine.runtime.cli import main

D = Decimal


@dataclass(frozen=True)
class Case:
    data: Path
    pair: str
    quote: str
    guards: Guards


CASES = {
    "shipped 1m, every guard": Case(
        SHIPPED_OHLC, "XBTUSDT", "USDT", Guards(D("0.15"), D("0.3"), D("0.5"), D("0.25"), 40)
    ),
    "shipped 1m, whole take-profit and time stop": Case(
        SHIPPED_OHLC, "XBTUSDT", "USDT", Guards(take_profit=D("0.2"), time_stop=15)
    ),
    "shared XBTUSD_60, every guard": Case(SHARED_XBTUSD_60, "XBTUSD", "USD", Guards(D(3), D(8), D("0.5"), D(5), 200)),
}


def _params(g: Guards) -> list[str]:
    values = {
        "stop_loss_pct": g.stop_loss,
        "take_profit_pct": g.take_profit,
        "take_profit_share": g.share,
        "trailing_stop_pct": g.trailing,
        "time_stop_candles": g.time_stop,
    }
    argv: list[str] = []
    for name, value in values.items():
        argv += ["--param", f"{name}={value}"]
    return argv


def _backtest(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    config = tmp_path / "backtest.toml"
    balances = f"starting_balances = {{ {case.quote} = {START} }}"
    config.write_text(f'quote_currency = "{case.quote}"\n\n[paper]\nfee_volume_30d = 0\n{balances}\n')
    strategy = ["--strategy", "ema_cross", "--param", "fast=5", "--param", "slow=20", *_params(case.guards)]
    argv = ["backtest", "--data", str(case.data), "--pair", case.pair, *strategy, "--config", str(config), "--json"]
    capsys.readouterr()
    assert main(argv) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


@pytest.mark.parametrize("name", list(CASES))
def test_guards_make_the_fills_the_plain_reimplementation_makes(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES[name]
    if not case.data.is_file():
        pytest.skip(f"{case.data} is absent")
    reference = run_reference(read_candles(case.data), fast=5, slow=20, budget=BUDGET, fee=FEE, start_quote=START,
                              rules=BTC_RULES, guards=case.guards)  # fmt: skip
    result = _backtest(case, tmp_path, capsys)
    expected_triggers = Counter(rule for _, rule in reference.triggers)
    assert len(expected_triggers) >= 2, "the case must trigger several guards to mean anything"
    assert result["guard_exits"] == dict(expected_triggers)
    ours, theirs = engine_rows(result), reference_rows(reference.fills)
    assert ours == theirs, first_difference(ours, theirs)
    assert Decimal(result["final_equity"]) == reference.equity
    refused = [(r["time"], r["side"], Decimal(r["qty"])) for r in result["refusals"]["orders"]]
    assert refused == [(_iso(t), side, qty) for t, side, qty, why in reference.refused if not why.startswith("venue")]
    rejected = [(r["side"], Decimal(r["qty"])) for r in result["rejected_by_venue"]]
    assert rejected == [(side, qty) for _, side, qty, why in reference.refused if why.startswith("venue")]


def test_guards_off_change_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every guard at 0 (the defaults, given explicitly) trades exactly as no guard at all."""
    case = Case(SHIPPED_OHLC, "XBTUSDT", "USDT", Guards())
    reference = run_reference(read_candles(case.data), fast=5, slow=20, budget=BUDGET, fee=FEE, start_quote=START,
                              rules=BTC_RULES)  # fmt: skip
    result = _backtest(case, tmp_path, capsys)
    assert result["guard_exits"] == {}
    assert engine_rows(result) == reference_rows(reference.fills) and len(reference.fills) >= 4
