"""A backtest's journal stages its writes and hands them over in bulk; what ends up stored is exactly what the
unstaged (durable, one write per event) path stores."""

import sqlite3
from pathlib import Path

import anyio
import pytest

from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import config_from_mapping

pytestmark = pytest.mark.anyio

TABLES = ("orders", "fills", "positions", "balances", "equity", "round_trips", "kv")


async def _run(db: Path, *, durable: bool) -> dict[str, list[tuple[object, ...]]]:
    config = config_from_mapping({"market": {"speed": "max"}})
    options = RunOptions(durable_intents=durable, record_every_candle=False, id_prefix="t")
    engine = Engine.from_config(config, db, options=options)
    assert engine.options.durable_intents is durable
    with anyio.fail_after(120):
        await engine.run()
    assert engine.journal.staging is not durable
    with sqlite3.connect(db) as conn:
        rows = {t: conn.execute(f"SELECT * FROM [{t}] ORDER BY rowid").fetchall() for t in TABLES}
        rows["events"] = conn.execute("SELECT ts_ns, kind, source, payload FROM events ORDER BY id").fetchall()
    return rows


async def test_staged_and_unstaged_runs_store_the_same_rows(tmp_path: Path) -> None:
    staged = await _run(tmp_path / "staged.sqlite", durable=False)
    unstaged = await _run(tmp_path / "unstaged.sqlite", durable=True)
    assert staged["fills"] and staged["round_trips"] and len(staged["equity"]) == 720
    assert staged == unstaged
