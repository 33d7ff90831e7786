"""The command line: run, status, backtest; bad input gets one clear line and changes nothing."""

import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from engine.runtime.cli_status import _by_quote
from trading_mcp.cli import main

SAMPLE_TRADES = Path(__file__).resolve().parents[2] / "engine" / "data" / "kraken_xbtusdt_trades.json"
SAMPLE_OHLC = Path(__file__).resolve().parents[2] / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"


def test_run_then_status_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "e.db"
    assert main(["run", "--speed", "max", "--quiet", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "Performance (paper" in out and "Sharpe" in out
    assert main(["status", "--db", str(db), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["mode"] == "paper"
    assert status["events_processed"] == 720
    assert status["fills"] > 0
    assert set(status["balances"]) >= {"USD"}


def test_a_finished_run_says_where_its_state_is(own_data_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The default state file is in the user's data folder (out of sight): the run names it.
    assert main(["run", "--speed", "max"]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"state saved in {own_data_folder / 'engine.db'} (trading-mcp status shows it; run --reset starts over)"
    )
    assert (own_data_folder / "engine.db").is_file()


def test_backtest_is_deterministic_and_lists_trades(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "backtest",
        "--data",
        str(SAMPLE_OHLC),
        "--strategy",
        "ema_cross",
        "--param",
        "fast=5",
        "--param",
        "slow=20",
        "--json",
    ]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert first == second
    assert first["params"] == {"fast": "5", "slow": "20"}
    assert first["candles"] == 720
    assert first["trades"] and first["metrics"]["trade_count"] == len(first["trades"])


def test_backtest_on_trades_json_aggregates_into_candles(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "backtest",
                "--data",
                str(SAMPLE_TRADES),
                "--strategy",
                "mean_reversion",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    # 1,000 trades from 17:23:53 to 00:13:55 make one candle for each of those 411 minutes
    assert result["pair"] == "BTC/USD" and result["candles"] == 411
    assert result["trades"], "the strategy saw candles and traded"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backtest", "--data", "missing.csv", "--strategy", "ema_cross"], "missing.csv"),
        (["backtest", "--data", str(SAMPLE_OHLC), "--strategy", "nope"], "unknown strategy kind 'nope'"),
        (
            ["backtest", "--data", str(SAMPLE_OHLC), "--strategy", "ema_cross", "--param", "fast=50"],
            "fast (50) must be smaller",
        ),
        (["backtest", "--data", str(SAMPLE_OHLC), "--strategy", "ema_cross", "--param", "fast=nan"], "fast"),
        (
            ["backtest", "--data", str(SAMPLE_OHLC), "--strategy", "ema_cross", "--param", "speed"],
            "use NAME=VALUE",
        ),
        (
            ["backtest", "--data", str(SAMPLE_OHLC), "--strategy", "ema_cross", "--pair", "FOOBARBAZ"],
            "unknown pair",
        ),
        (["run", "--speed", "fast"], "speed 'fast'"),
        (["run", "--speed", "-3"], "positive"),
    ],
)
def test_bad_input_gets_one_clear_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if argv[0] == "run":
        argv = [*argv, "--db", str(tmp_path / "x.db")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "x.db").exists()


def test_bad_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[paper]\nstarting_balance = { USD = "5" }\n')
    assert main(["run", "--config", str(config), "--db", str(tmp_path / "x.db")]) == 2
    assert "paper.starting_balance: unknown key" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


def test_live_needs_both_opt_ins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRADING_MCP_ALLOW_LIVE", raising=False)
    monkeypatch.setenv("KRAKEN_API_KEY", "k")
    monkeypatch.setenv("KRAKEN_API_SECRET", "c2VjcmV0")
    assert main(["run", "--live", "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert "TRADING_MCP_ALLOW_LIVE=1" in err and "c2VjcmV0" not in err


def test_status_without_state_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--db", str(tmp_path / "none.db")]) == 2
    assert "run `trading-mcp run` first" in capsys.readouterr().err


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "trading_mcp", "run", "--speed", "30", "--db", str(db)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # the first status line: the engine is trading
    assert "[paper]" in first
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "Traceback" not in err
    assert "state saved" in err
    assert "Performance" in out
    resumed = subprocess.run(
        [sys.executable, "-m", "trading_mcp", "status", "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(resumed.stdout)["events_processed"] >= 1


def test_halt_command_latches_a_stopped_engine_and_only_resume_lifts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "e.db"
    assert main(["halt", "--db", str(db)]) == 2
    assert "nothing to halt" in capsys.readouterr().err
    assert main(["run", "--speed", "max", "--quiet", "--db", str(db)]) == 0
    assert main(["halt", "--db", str(db), "--reason", "maintenance"]) == 0
    assert "no engine is running" in capsys.readouterr().out
    assert (tmp_path / "e.db.operator").exists()  # the next start cancels open orders before it trades
    assert main(["status", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trading_state"] == "halted"  # at once, not at the next start
    assert main(["run", "--speed", "max", "--quiet", "--db", str(db)]) == 0
    assert not (tmp_path / "e.db.operator").exists()
    capsys.readouterr()
    assert main(["status", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trading_state"] == "halted"
    assert main(["resume", "--db", str(db)]) == 0
    assert "resumed" in capsys.readouterr().out
    assert main(["status", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trading_state"] == "active"


def test_saved_pnl_is_summed_per_quote_currency_never_across_them() -> None:
    amounts = [("BTC/USD", Decimal("1.5")), ("ETH/BTC", Decimal("0.01")), ("BTC/USD", Decimal("-0.5"))]
    amounts.append(("FOOBAR", Decimal(1)))
    assert _by_quote(amounts) == {"BTC": "0.01", "FOOBAR's quote": "1", "USD": "1.0"}


def test_a_backtest_of_a_pair_in_no_catalogue_runs_on_rules_inferred_from_the_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["backtest", "--data", str(SAMPLE_OHLC), "--strategy", "ema_cross", "--pair", "pepeusd", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["pair"] == "PEPE/USD" and result["trades"], "it ran and traded"
    (note,) = result["notes"]
    assert "PEPE/USD is in no catalogue" in note and "price decimals 1" in note  # the capture's prices: 1 decimal
    assert "trading-mcp pairs --refresh" in captured.err and captured.err.count("\n") == 1


def test_a_strategy_on_a_pair_the_data_does_not_carry_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default strategies trade BTC/USD; the sample traded as ETH/USD reaches none of them: said, not silent."""
    assert main(["run", "--pair", "eth-usd", "--speed", "max", "--quiet", "--db", str(tmp_path / "e.db")]) == 0
    err = capsys.readouterr().err
    assert "strategy ema_cross trades BTC/USD, which the replayed data does not carry (ETH/USD)" in err
    assert "strategy mean_reversion trades BTC/USD" in err


def test_the_default_pace_is_a_candle_every_tenth_of_a_second_whatever_the_interval(tmp_path: Path) -> None:
    from engine.runtime.app import Engine
    from engine.runtime.config import config_from_mapping
    from engine.runtime.sources import ReplayMarketSource
    from engine.runtime.status_line import format_status
    from engine.runtime.views import StatusView

    hourly = tmp_path / "XBTUSD_60.csv"
    hourly.write_text("".join(f"{1_600_000_000 + 3600 * i},1,1,1,1,1,1\n" for i in range(5)))
    minutes = Engine.from_config(config_from_mapping({}), None)
    hours = Engine.from_config(config_from_mapping({"market": {"file": str(hourly)}}), None)
    assert isinstance(minutes.source, ReplayMarketSource) and isinstance(hours.source, ReplayMarketSource)
    assert (minutes.source.speed, hours.source.speed) == (600, 36_000)  # 60 s and 3,600 s candles over 0.1 s
    status = StatusView.model_validate({**_STATUS, "eta_s": 3_725})
    assert format_status(status).endswith("| active | ETA 1:02:05")


_STATUS: dict[str, object] = {
    "mode": "paper",
    "venue": "paper",
    "trading_state": "active",
    "halt_reason": "",
    "data_source": "x",
    "market_time": None,
    "uptime_s": 1,
    "progress": "0.5",
    "events_processed": 1,
    "events_total": 2,
    "strategies_running": [],
    "quote_currency": "USD",
    "equity": "1",
    "open_positions": 0,
    "open_orders": 0,
    "trades": 0,
}
