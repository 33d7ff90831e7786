"""The account protects itself: replays that trip each account rule ([risk.rules]), checked against when plain code
in this file says the rule should trip (on the equity curve of the same replay without the rules), the latch kept
by a second engine on the same state file and lifted only by the operator."""

import json
import os
import random
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest

from engine.errors import LimitExceeded, NotAllowed
from engine.persistence import Store
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import Config, config_from_mapping
from engine.runtime.operator import OperatorRequest, write_request
from trading_mcp.cli import main

pytestmark = pytest.mark.anyio
HOUR = 3600
DAY_NS = 86_400 * 10**9
START = 1_700_000_000 // 86_400 * 86_400  # midnight UTC


def write_candles(path: Path, seed: int = 7, hours: int = 24 * 8) -> None:
    """Hourly Kraken OHLCVT rows for BTC/USD: a random walk, 1.5 % an hour, with a slump in its second half."""
    rng = random.Random(seed)
    close = 30000.0
    rows = []
    for hour in range(hours):
        drift = 0.004 if hour < hours // 2 else -0.006
        open_ = close
        close = max(100.0, open_ * (1 + drift + rng.gauss(0, 0.015)))
        high, low = max(open_, close) * 1.002, min(open_, close) * 0.998
        rows.append(f"{START + hour * HOUR},{open_:.1f},{high:.1f},{low:.1f},{close:.1f},{1 + rng.random():.4f},9")
    path.write_text("\n".join(rows) + "\n")


def config(data: Path, **rules: object) -> Config:
    return config_from_mapping(
        {
            "market": {"speed": "max", "file": str(data), "pair": "BTC/USD"},
            "paper": {"starting_balances": {"USD": "2000"}, "fee_volume_30d": "0"},
            "risk": {"rules": rules},
            "strategies": [
                {
                    "name": "ema",
                    "kind": "ema_cross",
                    "pair": "BTC/USD",
                    "order_quote_amount": "1500",
                    "params": {"fast": 3, "slow": 8},
                }
            ],
        }
    )


async def run(engine: Engine) -> None:
    with anyio.fail_after(120):
        await engine.run()


def events(db: Path, kind: str) -> list[tuple[int, dict[str, Any]]]:
    with Store.open_readonly(db) as store:
        rows = store.db.execute("SELECT ts_ns, payload FROM events WHERE kind = ? ORDER BY id", (kind,)).fetchall()
    return [(ts, json.loads(p)) for ts, p in rows]


def kv(db: Path) -> dict[str, Any]:
    with Store.open_readonly(db) as store:
        return store.load_kv()


# -- when each rule should trip, computed by plain code from an equity curve -------------------------------------
def first_drawdown(curve: list[tuple[int, Decimal]], pct: Decimal) -> int | None:
    peak = None
    for ts, eq in curve:
        peak = eq if peak is None or eq > peak else peak
        if (peak - eq) / peak * 100 >= pct:
            return ts
    return None


def first_daily_loss(curve: list[tuple[int, Decimal]], amount: Decimal) -> int | None:
    day = start = None
    for ts, eq in curve:
        if ts // DAY_NS != day:
            day, start = ts // DAY_NS, eq
        assert start is not None
        if start - eq >= amount:
            return ts
    return None


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "XBTUSD_60.csv"
    write_candles(path)
    return path


@pytest.fixture
async def free_curve(data: Path, tmp_path: Path) -> list[tuple[int, Decimal]]:
    """The equity curve of the same replay with no rule."""
    engine = Engine.from_config(config(data), tmp_path / "free.db", options=RunOptions(id_prefix="f"))
    await run(engine)
    return list(zip(engine.equity_curve.ts_ns, engine.equity_curve.equity, strict=True))


async def test_max_drawdown_halts_when_plain_code_says_and_the_latch_survives_a_restart(
    data: Path, tmp_path: Path, free_curve: list[tuple[int, Decimal]]
) -> None:
    expected = first_drawdown(free_curve, Decimal(8))
    assert expected is not None, "the slump should draw the account down 8 %"
    db = tmp_path / "dd.db"
    cfg = config(data, max_drawdown_pct="8", flatten_on_drawdown=True)
    engine = Engine.from_config(cfg, db, options=RunOptions(id_prefix="d"))
    await run(engine)
    tripped = events(db, "risk_rule_tripped")
    assert [(ts, p["rule"]) for ts, p in tripped] == [(expected, "max_drawdown_pct")]
    assert "flattening" in tripped[0][1]["action"]
    # Until the trip the run is the rule-free run, point for point; after it the account holds no BTC.
    n = next(i for i, (ts, _) in enumerate(free_curve) if ts == expected)
    mine = list(zip(engine.equity_curve.ts_ns, engine.equity_curve.equity, strict=True))
    assert mine[: n + 1] == free_curve[: n + 1]
    assert engine.portfolio.balances.assets().get("BTC") is None or engine.portfolio.position_qty("ema", "BTC/USD") == 0
    assert engine.risk.state.value == "halted" and engine.risk.halted_by == "operator"
    assert engine.account_guard.trips == {"max_drawdown_pct": 1}
    saved = kv(db)
    assert saved["trading_state"] == "halted" and saved["account_rules_state"]["halt_rule"] == "max_drawdown_pct"

    # A second engine on the same state file is still halted; the MCP client cannot lift it; the operator can.
    again = Engine.from_config(cfg, db, options=RunOptions(id_prefix="d", keep_alive=True))
    async with again.serve() as facade:
        assert (await facade.status()).trading_state == "halted"
        risk = await facade.risk()
        assert risk.trading_state == "halted" and "max_drawdown_pct" in risk.halt_reason
        assert again.account_guard.state.halt_rule == "max_drawdown_pct" and again.account_guard.state.drawdown_tripped
        assert [r.name for r in risk.rules if r.tripped] == ["max_drawdown_pct"]
        with pytest.raises(NotAllowed):
            await facade.resume(source="mcp:test")
        assert again.risk.state.value == "halted"
        await facade.resume(source="operator:cli", by="operator")
        assert again.risk.state.value == "active"
        assert again.account_guard.state.halt_rule == ""
    assert kv(db)["account_rules_state"]["drawdown_tripped"] is False


async def test_daily_loss_halts_until_the_next_utc_day_which_resumes_with_an_event(
    data: Path, tmp_path: Path, free_curve: list[tuple[int, Decimal]]
) -> None:
    expected = first_daily_loss(free_curve, Decimal(60))
    assert expected is not None, "some day should lose 60 USD"
    db = tmp_path / "daily.db"
    engine = Engine.from_config(config(data, max_daily_loss="60"), db, options=RunOptions(id_prefix="l"))
    await run(engine)
    tripped = events(db, "risk_rule_tripped")
    assert tripped[0][0] == expected and tripped[0][1]["rule"] == "max_daily_loss"
    assert Decimal(tripped[0][1]["value"]) >= 60
    cleared = events(db, "risk_rule_cleared")
    assert cleared, "the next UTC day should lift the halt"
    next_day = (expected // DAY_NS + 1) * DAY_NS
    # Lifted at the first candle of the next day (the candle closing at midnight belongs to it).
    assert cleared[0][0] == min(ts for ts, _ in free_curve if ts >= next_day)
    assert "resumed" in cleared[0][1]["action"]
    assert cleared[0][0] in [ts for ts, _ in events(db, "resume_trading")], "the engine itself resumed trading"
    # Between the trip and the next day nothing was bought or sold.
    with Store.open_readonly(db) as store:
        fills = store.load_fills()
    assert not [f for f in fills if expected < f.ts_ns < cleared[0][0]]


async def test_reducing_refuses_buys_by_rule_and_lets_sells_through(
    data: Path, tmp_path: Path, free_curve: list[tuple[int, Decimal]]
) -> None:
    expected = first_drawdown(free_curve, Decimal(3))
    assert expected is not None
    db = tmp_path / "reduce.db"
    engine = Engine.from_config(config(data, reduce_at_drawdown_pct="3"), db, options=RunOptions(id_prefix="r"))
    await run(engine)
    tripped = events(db, "risk_rule_tripped")
    assert tripped[0][0] == expected and tripped[0][1]["rule"] == "reduce_at_drawdown_pct"
    refused = events(db, "order_refused")
    assert refused and {p["rule"] for _, p in refused} == {"reduce_at_drawdown_pct"}
    assert {p["side"] for _, p in refused} == {"buy"}
    with Store.open_readonly(db) as store:
        fills = store.load_fills()
    # While reducing no buy filled, and sells did: the windows come from the events.
    cleared = [ts for ts, _ in events(db, "risk_rule_cleared")]
    window_end = cleared[0] if cleared else 2**63
    in_window = [f for f in fills if expected < f.ts_ns <= window_end]
    assert all(f.side.value == "sell" for f in in_window)


async def test_operator_halt_request_from_the_shell_lifts_a_rule_halt_at_start(data: Path, tmp_path: Path) -> None:
    db = tmp_path / "op.db"
    cfg = config(data, max_drawdown_pct="8")
    engine = Engine.from_config(cfg, db, options=RunOptions(id_prefix="o"))
    await run(engine)
    assert engine.risk.state.value == "halted"
    write_request(db, OperatorRequest(action="resume"))
    again = Engine.from_config(cfg, db, options=RunOptions(id_prefix="o", keep_alive=True))
    async with again.serve() as facade:
        assert (await facade.status()).trading_state == "active"
    resumed = events(db, "resume_trading")
    assert resumed and resumed[-1][1]


# -- the operator's commands -------------------------------------------------------------------------------------
def write_config(path: Path, data: Path, rules: str) -> Path:
    path.write_text(
        f"""
[market]
file = "{data}"
pair = "BTC/USD"
speed = "max"

[paper]
starting_balances = {{ USD = "2000" }}
fee_volume_30d = "0"

[risk.rules]
{rules}

[[strategies]]
name = "ema"
kind = "ema_cross"
pair = "BTC/USD"
order_quote_amount = "1500"
params = {{ fast = 3, slow = 8 }}
"""
    )
    return path


def test_backtest_summary_counts_trips_per_rule(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "c.toml", data, 'reduce_at_drawdown_pct = "3"\nmax_daily_loss = "60"')
    argv = ["backtest", "--data", str(data), "--strategy", "ema_cross", "--param", "fast=3", "--param", "slow=8"]
    assert main([*argv, "--config", str(cfg), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    trips = result["account_rules"]["trips"]
    assert trips.get("reduce_at_drawdown_pct", 0) >= 1 and trips.get("max_daily_loss", 0) >= 1
    assert main([*argv, "--config", str(cfg)]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.strip().startswith("account rules"))
    assert "reduce_at_drawdown_pct 3" in line and f"max_daily_loss {trips['max_daily_loss']}" in line


def test_the_latch_survives_sigkill_and_status_says_why(data: Path, tmp_path: Path) -> None:
    # The free run's curve says at which candle the 8 % drawdown trips; the child is killed right after it.
    curve: list[tuple[int, Decimal]] = anyio.run(_free_curve, data, tmp_path)
    expected = first_drawdown(curve, Decimal(8))
    assert expected is not None
    event_number = next(i for i, (ts, _) in enumerate(curve) if ts == expected) + 1
    db = tmp_path / "killed.db"
    cfg = write_config(tmp_path / "k.toml", data, 'max_drawdown_pct = "8"\nflatten_on_drawdown = true')
    env = {**os.environ, "TRADING_MCP_CRASH_AT": f"event:{event_number}"}
    child = subprocess.run(
        [sys.executable, "-m", "trading_mcp", "run", "--config", str(cfg), "--db", str(db), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    status = subprocess.run(
        [sys.executable, "-m", "trading_mcp", "status", "--db", str(db), "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert "trading: halted by the operator (max_drawdown_pct:" in status.stdout
    assert "rule max_drawdown_pct:" in status.stdout and "HALTED by it" in status.stdout

    async def restart() -> None:
        engine = Engine.from_config(config(data, max_drawdown_pct="8"), db, options=RunOptions(keep_alive=True))
        async with engine.serve() as facade:
            assert engine.risk.state.value == "halted"
            with pytest.raises(NotAllowed):
                await facade.resume(source="mcp:test")
            row = next(r for r in (await facade.risk()).rules if r.name == "max_drawdown_pct")
            assert row.tripped and row.summary.startswith("drawdown ") and row.summary.endswith("of 8.00%")

    anyio.run(restart)


async def _free_curve(data: Path, tmp_path: Path) -> list[tuple[int, Decimal]]:
    engine = Engine.from_config(config(data), tmp_path / "free2.db", options=RunOptions(id_prefix="f"))
    await run(engine)
    return list(zip(engine.equity_curve.ts_ns, engine.equity_curve.equity, strict=True))


async def test_the_client_tightens_rules_through_set_risk_limits_never_beyond_the_caps(tmp_path: Path) -> None:
    cfg = config_from_mapping(
        {
            "market": {"speed": "max"},
            "risk": {
                "rules": {"max_daily_loss": "500", "max_drawdown_pct": "20"},
                "rule_caps": {"max_daily_loss": "800", "max_drawdown_pct": "20"},
            },
        }
    )
    db = tmp_path / "t.db"
    engine = Engine.from_config(cfg, db, options=RunOptions(id_prefix="t", keep_alive=True))
    async with engine.serve() as facade:
        with anyio.fail_after(60):
            await engine.done.wait()
        view = await facade.set_risk_limits({"max_daily_loss": Decimal(300), "max_order_qty": "0.5"}, source="mcp:t")
        daily = next(r for r in view.rules if r.name == "max_daily_loss")
        assert daily.threshold == 300 and daily.cap == 800
        assert daily.summary.startswith("daily loss ") and daily.summary.endswith(" of 300.00 USD")
        assert daily.value is not None and daily.headroom == daily.threshold - daily.value
        assert next(x for x in view.limits if x.name == "max_order_qty").value == Decimal("0.5")
        with pytest.raises(LimitExceeded, match="looser than the operator's cap 20"):
            await facade.set_risk_limits({"max_drawdown_pct": "25"}, source="mcp:t")
        with pytest.raises(LimitExceeded):  # one half beyond its cap: neither half applies
            await facade.set_risk_limits({"max_daily_loss": "100", "max_order_qty": "99"}, source="mcp:t")
        assert engine.account_guard.rules.max_daily_loss == 300
        assert (await facade.set_risk_limits({"max_daily_loss": "700"}, source="mcp:t")).rules  # within the cap
    # A restart keeps what the client set (the configuration did not change).
    again = Engine.from_config(cfg, db, options=RunOptions(id_prefix="t", keep_alive=True))
    async with again.serve():
        assert again.account_guard.rules.max_daily_loss == 700
    # A lower cap at the next start clamps it.
    lower = cfg.model_copy(
        update={
            "risk": cfg.risk.model_copy(
                update={"rule_caps": cfg.risk.rule_caps.model_copy(update={"max_daily_loss": Decimal(600)})}
            )
        }
    )
    third = Engine.from_config(lower, db, options=RunOptions(id_prefix="t", keep_alive=True))
    async with third.serve():
        assert third.account_guard.rules.max_daily_loss == 600


async def test_reducing_refuses_a_manual_buy_by_the_rule_and_does_not_stop_a_manual_sell(tmp_path: Path) -> None:
    # The shipped sample draws the account down 0.21 % at most: reducing at 0.2 % is reached.
    cfg = config_from_mapping({"market": {"speed": "max"}, "risk": {"rules": {"reduce_at_drawdown_pct": "0.2"}}})
    engine = Engine.from_config(cfg, tmp_path / "m.db", options=RunOptions(id_prefix="m", keep_alive=True))
    async with engine.serve() as facade:
        with anyio.fail_after(60):
            await engine.done.wait()
        assert (await facade.status()).trading_state == "reducing"
        with pytest.raises(LimitExceeded, match="reducing"):
            await facade.submit_order("BTC/USD", "buy", Decimal("0.001"), None, source="mcp:t")
        # A sell is not stopped by the state: only by what it sells (the manual account holds no BTC).
        with pytest.raises(LimitExceeded, match="insufficient BTC"):
            await facade.submit_order("BTC/USD", "sell", Decimal("0.001"), None, source="mcp:t")
    rules = [p["rule"] for _, p in events(tmp_path / "m.db", "order_refused")]
    assert rules[-2:] == ["reduce_at_drawdown_pct", "insufficient_funds"]


async def test_a_saved_reducing_state_is_left_when_the_rule_no_longer_holds(tmp_path: Path) -> None:
    cfg = config_from_mapping({"market": {"speed": "max"}, "risk": {"rules": {"reduce_at_drawdown_pct": "0.2"}}})
    db = tmp_path / "r.db"
    engine = Engine.from_config(cfg, db, options=RunOptions(id_prefix="m", max_events=700))
    await run(engine)
    assert engine.risk.state.value == "reducing"
    # As if the rules' own state had not reached the disk: the trading state alone must not stay REDUCING forever.
    with Store.open(db) as store:
        store.set_kv("account_rules_state", {})
    looser = config_from_mapping({"market": {"speed": "max"}, "risk": {"rules": {"reduce_at_drawdown_pct": "5"}}})
    again = Engine.from_config(looser, db, options=RunOptions(id_prefix="m"))
    await run(again)
    assert again.risk.state.value == "active"
    assert events(db, "risk_rule_cleared")[-1][1]["rule"] == "reduce_at_drawdown_pct"


async def test_a_rule_halt_lifted_while_the_engine_was_stopped_rearms_the_rules(data: Path, tmp_path: Path) -> None:
    db = tmp_path / "off.db"
    cfg = config(data, max_drawdown_pct="8")
    engine = Engine.from_config(cfg, db, options=RunOptions(id_prefix="o"))
    await run(engine)
    assert engine.account_guard.state.drawdown_tripped
    last_ts, last_equity = engine.equity_curve.ts_ns[-1], engine.equity_curve.equity[-1]
    assert main(["resume", "--db", str(db)]) == 0  # no engine runs: the state file is changed directly
    again = Engine.from_config(cfg, db, options=RunOptions(id_prefix="o", keep_alive=True))
    async with again.serve():
        state = again.account_guard.state
        assert again.risk.state.value == "active"
        assert not state.drawdown_tripped and state.halt_rule == ""
        assert state.peak == last_equity and state.since_ns == last_ts
