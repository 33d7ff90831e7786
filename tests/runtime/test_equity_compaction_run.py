"""The run loop thins its equity curve (engine.portfolio.curve_compaction) and nothing a user reads changes.

Against the same replay with compaction off: the portfolio's performance figures are equal, in a backtest (the
curve written in chunks) and in a resumable paper run (a point per candle), also when the paper run is stopped at
several points and resumed from its state file; the curve in memory and in the state file is smaller.
"""

import random
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from engine.persistence import Store
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import Config, config_from_mapping
from engine.runtime.facade import EngineFacade

pytestmark = pytest.mark.anyio
HOUR_S = 3_600
NEVER = 10**12


def hourly_file(folder: Path, hours: int = 24 * 40) -> Path:
    """A Kraken OHLCVT file of hourly candles: a seeded random walk around 30,000 USD."""
    rng = random.Random(7)
    price = 30_000.0
    rows = []
    start = 1_700_006_400  # a UTC midnight
    for i in range(hours):
        open_ = price
        price = max(1_000.0, price * (1 + rng.gauss(0, 0.01)))
        high = max(open_, price) * (1 + rng.random() * 0.003)
        low = min(open_, price) * (1 - rng.random() * 0.003)
        volume = rng.random() * 5
        rows.append(f"{start + i * HOUR_S},{open_:.1f},{high:.1f},{low:.1f},{price:.1f},{volume:.8f},{i % 50}")
    path = folder / "XBTUSD_60.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def config(data: Path) -> Config:
    return config_from_mapping(
        {
            "market": {"speed": "max", "file": str(data)},
            "strategies": [{"name": "ema", "kind": "ema_cross", "pair": "XBTUSD", "params": {"fast": 5, "slow": 20}}],
        }
    )


async def run(db: Path, data: Path, *, every: int, per_candle: bool, stops: tuple[int, ...] = ()) -> Engine:
    for count in (*stops, None):
        engine = Engine.from_config(
            config(data),
            db,
            options=RunOptions(record_every_candle=per_candle, max_events=count, equity_compact_every=every),
        )
        with anyio.fail_after(120):
            await engine.run()
    return engine


def equity_rows(db: Path) -> list[tuple[int, str]]:
    with Store.open_readonly(db) as store:
        return [tuple(r) for r in store.db.execute("SELECT ts_ns, equity FROM equity ORDER BY ts_ns, id")]


async def figures(engine: Engine) -> dict[str, object]:
    metrics: dict[str, object] = dict((await EngineFacade(engine).performance()).metrics)
    assert metrics["trade_count"], "the replay must trade for the comparison to mean something"
    return metrics


@pytest.mark.parametrize("per_candle", [False, True], ids=["backtest-chunks", "paper-every-candle"])
async def test_compaction_leaves_every_figure_as_it_was(tmp_path: Path, per_candle: bool) -> None:
    data = hourly_file(tmp_path)
    full = await run(tmp_path / "full.db", data, every=NEVER, per_candle=per_candle)
    thin = await run(tmp_path / "thin.db", data, every=100, per_candle=per_candle)
    assert await figures(thin) == await figures(full)
    assert thin.portfolio.equity() == full.portfolio.equity()
    assert len(full.equity_curve) == 24 * 40
    assert len(thin.equity_curve) < len(full.equity_curve) / 2
    stored_full, stored_thin = equity_rows(tmp_path / "full.db"), equity_rows(tmp_path / "thin.db")
    assert len(stored_full) == 24 * 40
    assert len(stored_thin) < len(stored_full) / 2
    # Every point the thin state file keeps is one of the full curve's points.
    assert set(stored_thin) <= set(stored_full)


async def test_a_resumed_paper_run_compacts_and_reports_the_same(tmp_path: Path) -> None:
    data = hourly_file(tmp_path)
    full = await run(tmp_path / "full.db", data, every=NEVER, per_candle=True)
    resumed = await run(tmp_path / "resumed.db", data, every=150, per_candle=True, stops=(170, 400, 401, 650))
    assert await figures(resumed) == await figures(full)
    assert resumed.portfolio.equity() == full.portfolio.equity()
    # A fresh engine on the resumed state file restores the thinned curve and reports the same again.
    reopened = Engine.from_config(config(data), tmp_path / "resumed.db", options=RunOptions(max_events=0))
    with anyio.fail_after(60):
        await reopened.run()
    assert await figures(reopened) == await figures(full)
    assert Decimal(str((await figures(full))["max_drawdown"])) > 0
