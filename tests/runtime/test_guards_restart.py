"""Position guards across restarts: a paper replay stopped at many points and resumed on the same state file makes
exactly the fills of the uninterrupted replay, and triggers the same guards (the guards' memory, the peak since
entry, the candles held, a latched exit, a scale-out already taken, is rebuilt from the replayed history and the
restored position, never saved)."""

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from engine.persistence import Store
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import Config, config_from_mapping

pytestmark = pytest.mark.anyio
SAMPLE = Path(__file__).resolve().parents[2] / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
GUARDS = {
    "fast": 5,
    "slow": 20,
    "stop_loss_pct": "0.15",
    "take_profit_pct": "0.3",
    "take_profit_share": "0.5",
    "trailing_stop_pct": "0.25",
    "time_stop_candles": 40,
}


def config() -> Config:
    return config_from_mapping(
        {
            "quote_currency": "USDT",
            "market": {"speed": "max", "file": str(SAMPLE), "pair": "BTC/USDT"},
            "paper": {"starting_balances": {"USDT": "10000"}, "fee_volume_30d": "0"},
            "strategies": [{"name": "guarded", "kind": "ema_cross", "pair": "BTC/USDT", "params": GUARDS}],
        }
    )


def fills(db: Path) -> list[tuple[Any, ...]]:
    with Store.open_readonly(db) as store:
        rows = store.db.execute("SELECT ts_ns, side, price, qty, fee FROM fills ORDER BY ts_ns, trade_id").fetchall()
    return [tuple(row) for row in rows]


def guard_events(db: Path) -> list[tuple[int, str]]:
    with Store.open_readonly(db) as store:
        rows = store.db.execute(
            "SELECT ts_ns, payload FROM events WHERE kind = 'guard_triggered' ORDER BY id"
        ).fetchall()
    return [(ts, json.loads(payload)["rule"]) for ts, payload in rows]


async def run_to_end(db: Path, stops: list[int]) -> None:
    """Run the replay on ``db``, stopping after each count of events in ``stops``, then to its end."""
    for count in stops:
        engine = Engine.from_config(config(), db, options=RunOptions(max_events=count))
        with anyio.fail_after(120):
            await engine.run()
    engine = Engine.from_config(config(), db)
    with anyio.fail_after(120):
        await engine.run()


async def test_stopping_and_resuming_anywhere_keeps_the_guards_fills(tmp_path: Path) -> None:
    straight = tmp_path / "straight.db"
    await run_to_end(straight, [])
    expected_fills, expected_guards = fills(straight), guard_events(straight)
    rules = {rule for _, rule in expected_guards}
    assert {"stop_loss_pct", "take_profit_pct", "trailing_stop_pct", "time_stop_candles"} <= rules
    # Cut points chosen where the guards' memory matters: the candle after each trigger (a latched or partial
    # exit in flight) and a few candles into each position (a peak and a count to rebuild).
    with Store.open_readonly(straight) as store:
        first_ns = store.db.execute("SELECT MIN(ts_ns) FROM equity").fetchone()[0]
    assert first_ns is not None
    minute = 60 * 10**9
    cuts = sorted({int((ts - first_ns) // minute) + k for ts, _ in expected_guards[:6] for k in (0, 1, 3)})
    cut_points = [c for c in cuts if 0 < c < 700][:8]
    assert len(cut_points) >= 4
    resumed = tmp_path / "resumed.db"
    # Each stop runs max_events more events from where the last one stopped.
    steps = [b - a for a, b in zip([0, *cut_points], cut_points, strict=False) if b > a]
    await run_to_end(resumed, steps)
    assert fills(resumed) == expected_fills
    assert guard_events(resumed) == expected_guards
    assert sum(1 for f in expected_fills if f[1] == "sell") >= 10


def limit_config() -> Config:
    """Guards on positions built by several partial fills of limit entries (their average entry moves)."""
    return config_from_mapping(
        {
            "quote_currency": "USDT",
            "market": {"speed": "max", "file": str(SAMPLE), "pair": "BTC/USDT"},
            "paper": {"starting_balances": {"USDT": "10000"}, "fee_volume_30d": "0", "volume_participation": "0.002"},
            "strategies": [
                {
                    "name": "guarded",
                    "kind": "ema_cross",
                    "pair": "BTC/USDT",
                    "params": {**GUARDS, "entry_limit_bps": "1", "entry_ttl_candles": 4, "entry_reprices": 2},
                }
            ],
        }
    )


async def test_positions_built_by_partial_fills_keep_their_guards_across_restarts(tmp_path: Path) -> None:
    straight = tmp_path / "straight.db"
    with anyio.fail_after(120):
        await Engine.from_config(limit_config(), straight).run()
    expected = fills(straight)
    with Store.open_readonly(straight) as store:
        orders = store.load_orders()
    partial = [o for o in orders if o.side.value == "buy" and 0 < o.filled_qty < o.qty]
    assert partial, "the case needs entries filled in parts"
    resumed = tmp_path / "resumed.db"
    with anyio.fail_after(240):
        for _ in range(0, 720, 37):  # a restart every 37 candles
            await Engine.from_config(limit_config(), resumed, options=RunOptions(max_events=37)).run()
        await Engine.from_config(limit_config(), resumed).run()
    assert fills(resumed) == expected
    assert guard_events(resumed) == guard_events(straight) and guard_events(straight)
