"""A backtest says which risk limits applied and reports every refused order: counted by rule in the summary,
each in --json, and an order_refused event each in the database; a paper run records them the same way."""

import json
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest
from backtest.ema_cross_reference import read_candles

from engine.persistence import Store
from engine.runtime.cli import main

SHIPPED_OHLC = Path(__file__).resolve().parents[2] / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
# BTC trades near 106,000 USDT in the sample: a 1,000 USDT entry is about 0.0094 BTC, above this cap.
TIGHT = """quote_currency = "USDT"

[paper]
fee_volume_30d = 0
starting_balances = { USDT = 10000 }

[risk.limits]
max_order_qty = 0.001
"""
LOT = Decimal("0.00000001")
BACKTEST = ["backtest", "--data", str(SHIPPED_OHLC), "--strategy", "ema_cross", "--pair", "XBTUSDT"]


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_a_backtest_runs_under_no_limits_by_default_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tight.toml"
    config.write_text(TIGHT)
    result = run_json([*BACKTEST, "--config", str(config)], capsys)
    assert result["risk_limits"] == {"applied": "none", "limits": None}
    assert result["refusals"] == {"total": 0, "by_rule": {}, "orders": []}
    assert len(result["fills"]) == 22
    assert main([*BACKTEST, "--config", str(config)]) == 0
    text = capsys.readouterr().out
    assert "risk limits    none (sizes and exposure unbounded;" in text
    assert "refused orders 0" in text


def test_with_the_configs_limits_every_refused_order_is_reported_and_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tight.toml"
    config.write_text(TIGHT)
    db = tmp_path / "bt.db"
    argv = [*BACKTEST, "--config", str(config), "--risk-limits", "config"]
    result = run_json([*argv, "--db", str(db)], capsys)
    assert result["risk_limits"]["applied"] == "config"
    assert result["risk_limits"]["limits"]["max_order_qty"] == "0.001"
    refused = result["refusals"]["orders"]
    # Every entry of the unlimited run (11 round trips) is refused here, so nothing fills.
    assert result["fills"] == [] and len(refused) == 11
    assert result["refusals"]["total"] == 11 and result["refusals"]["by_rule"] == {"max_order_qty": 11}
    closes = {c.time + 60: c.close for c in read_candles(SHIPPED_OHLC)}
    for r in refused:
        assert set(r) == {"time", "strategy", "pair", "side", "qty", "rule", "reason"}
        assert (r["strategy"], r["pair"], r["side"], r["rule"]) == ("ema_cross", "BTC/USDT", "buy", "max_order_qty")
        assert r["reason"] == f"order size {r['qty']} exceeds max_order_qty 0.001"
        # Stamped at the close of the candle that decided it, sized from that close.
        close_s = int(datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp())
        assert r["qty"] == format((1000 / closes[close_s]).quantize(LOT, rounding=ROUND_DOWN), "f")
    with Store.open_readonly(db) as store:
        events = store.tail_events(100, "order_refused")
    assert [(e.source, e.payload["qty"], e.payload["reason"]) for e in events] == [
        ("risk", r["qty"], r["reason"]) for r in refused
    ]
    assert main([*argv, "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "risk limits    the config's [risk] limits: max_order_qty 0.001," in text
    assert "refused orders 11 (max_order_qty 11; --json lists each)" in text
    assert main(["status", "--db", str(db)]) == 0
    assert "refused orders: 11" in capsys.readouterr().out


def test_a_paper_run_records_its_refusals_the_same_way(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.toml"
    config.write_text(TIGHT.replace('quote_currency = "USDT"\n', "").replace("USDT", "USD"))
    db = tmp_path / "run.db"
    assert main(["run", "--speed", "max", "--quiet", "--config", str(config), "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["status", "--db", str(db), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    with Store.open_readonly(db) as store:
        events = store.tail_events(1000, "order_refused")
    assert events and status["refused_orders"] == len(events)
    assert {e.payload["rule"] for e in events} == {"max_order_qty"}
    assert all(datetime.fromtimestamp(e.ts_ns / 1e9, UTC).second == 0 for e in events)  # candle closes


def test_an_unknown_risk_limits_choice_is_refused_with_exit_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*BACKTEST, "--risk-limits", "live"])
    assert exit_.value.code == 2
    assert "--risk-limits: invalid choice: 'live'" in capsys.readouterr().err


def test_a_bool_parameter_is_given_as_true_or_false_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    limit = [*BACKTEST, "--param", "entry_limit_bps=5"]
    posted = run_json([*limit, "--param", "entry_post_only=TRUE"], capsys)
    assert posted["params"]["entry_post_only"] == "True"
    buys = [f for f in posted["fills"] if f["side"] == "buy"]
    assert buys and {f["liquidity"] for f in buys} == {"maker"}  # post-only entries rest on the book
    plain = run_json([*limit, "--param", "entry_post_only=false"], capsys)
    assert "entry_post_only" not in plain["params"]  # false is its default, shown only when it differs
    assert plain["params"]["entry_limit_bps"] == "5"
    assert main([*BACKTEST, "--param", "fast=true"]) == 2
    assert "fast: expected a number, got True" in capsys.readouterr().err
