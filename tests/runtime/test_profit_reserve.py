"""The profit reserve ([risk] reserve_profit_pct): a share of each winning round trip's net profit that buys never
spend, recomputed here from the fills by plain code, checked after every fill of a replay whose entries try to spend
nearly everything; kept across a restart."""

from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from runtime.test_account_rules_replay import write_candles

from engine.persistence import Store
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import Config, config_from_mapping

pytestmark = pytest.mark.anyio
START = Decimal(2000)


def config(data: Path, reserve_pct: str) -> Config:
    return config_from_mapping(
        {
            "market": {"speed": "max", "file": str(data), "pair": "BTC/USD"},
            "paper": {"starting_balances": {"USD": str(START)}, "fee_volume_30d": "0"},
            "risk": {"reserve_profit_pct": reserve_pct},
            "strategies": [
                {
                    "name": "ema",
                    "kind": "ema_cross",
                    "pair": "BTC/USD",
                    "params": {"fast": 3, "slow": 8, "equity_fraction_pct": "90"},
                }
            ],
        }
    )


def fills(db: Path) -> list[tuple[int, str, Decimal, Decimal, Decimal]]:
    with Store.open_readonly(db) as store:
        return [(f.ts_ns, f.side.value, f.price, f.qty, f.fee) for f in store.load_fills()]


def kv(db: Path) -> dict[str, Any]:
    with Store.open_readonly(db) as store:
        return store.load_kv()


def check_never_spent(rows: list[tuple[int, str, Decimal, Decimal, Decimal]], share: Decimal) -> Decimal:
    """Replay the fills by hand: the USD balance after every fill covers the reserve accrued before it; return the
    final reserve."""
    cash, reserve = START, Decimal(0)
    held, cost, fees = Decimal(0), Decimal(0), Decimal(0)
    for _ts, side, price, qty, fee in rows:
        if side == "buy":
            assert cash - qty * price - fee >= reserve, f"a buy spent the reserve ({reserve})"
            cash -= qty * price + fee
            held, cost, fees = held + qty, cost + qty * price, fees + fee
        else:
            cash += qty * price - fee
            held -= qty
            if held == 0:
                net = qty * price - cost - fees - fee
                if net > 0:
                    reserve += net * share / 100
                cost = fees = Decimal(0)
    return reserve


async def test_buys_never_spend_the_reserve_and_it_binds(tmp_path: Path) -> None:
    data = tmp_path / "btc.csv"
    write_candles(data)
    free_db, kept_db = tmp_path / "free.db", tmp_path / "kept.db"
    for db, pct in ((free_db, "0"), (kept_db, "50")):
        with anyio.fail_after(120):
            await Engine.from_config(config(data, pct), db).run()
    free, kept = fills(free_db), fills(kept_db)
    reserve = check_never_spent(kept, Decimal(50))
    assert reserve > 0
    # Without the reserve the same entries spend money the reserve holds back: the reserve is what changed them.
    assert free != kept
    with pytest.raises(AssertionError, match="spent the reserve"):
        check_never_spent(free, Decimal(50))
    saved = kv(kept_db)["profit_reserve"]
    assert Decimal(saved["amount"]) == reserve


async def test_the_reserve_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "btc.csv"
    write_candles(data)
    straight, resumed = tmp_path / "straight.db", tmp_path / "resumed.db"
    with anyio.fail_after(120):
        await Engine.from_config(config(data, "50"), straight).run()
        for stop in (40, 50, 60):
            await Engine.from_config(config(data, "50"), resumed, options=RunOptions(max_events=stop)).run()
        engine = Engine.from_config(config(data, "50"), resumed)
        await engine.run()
    assert fills(resumed) == fills(straight)
    assert kv(resumed)["profit_reserve"] == kv(straight)["profit_reserve"]
    async with Engine.from_config(config(data, "50"), resumed).serve() as facade:
        assert (await facade.balance()).reserve == Decimal(kv(straight)["profit_reserve"]["amount"])


async def test_a_new_share_applies_from_the_restart_on_and_never_rewrites_the_past(tmp_path: Path) -> None:
    data = tmp_path / "btc.csv"
    write_candles(data)
    db = tmp_path / "switch.db"
    with anyio.fail_after(120):
        first = Engine.from_config(config(data, "50"), db, options=RunOptions(max_events=100))
        await first.run()
        switch_ns = first.clock.now_ns()
        await Engine.from_config(config(data, "20"), db).run()
    expected, cost, fees = Decimal(0), Decimal(0), Decimal(0)
    shares: set[Decimal] = set()
    for ts, side, price, qty, fee in fills(db):
        if side == "buy":
            cost, fees = cost + qty * price, fees + fee
            continue
        net = qty * price - cost - fees - fee
        cost = fees = Decimal(0)
        if net > 0:
            share = Decimal(50) if ts <= switch_ns else Decimal(20)
            expected += net * share / 100
            shares.add(share)
    assert shares == {Decimal(50), Decimal(20)}, "winning trips on both sides of the switch"
    assert Decimal(kv(db)["profit_reserve"]["amount"]) == expected
