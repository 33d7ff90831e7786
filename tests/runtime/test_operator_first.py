"""Operator first: the operator's halt outranks the MCP client, acknowledged changes are durable before the answer,
one engine per state file, and a state file follows one data source."""

import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from anyio import wait_all_tasks_blocked

from engine.errors import NotAllowed
from engine.persistence import Store
from engine.runtime.app import Engine, EngineError, RunOptions
from engine.runtime.cli import main
from engine.runtime.config import Config, config_from_mapping
from engine.runtime.facade import EngineFacade
from engine.runtime.state_lock import StateInUse, StateLock

pytestmark = pytest.mark.anyio
SAMPLE = Path(__file__).resolve().parents[2] / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
TRADES = Path(__file__).resolve().parents[2] / "engine" / "data" / "kraken_xbtusdt_trades.json"


def config(**overrides: Any) -> Config:
    return config_from_mapping({"market": {"speed": "max"}, **overrides})


@asynccontextmanager
async def engine_on(db: Path, cfg: Config | None = None, events: int = 30) -> AsyncIterator[EngineFacade]:
    """A paper engine on the state file ``db`` that replayed ``events`` candles and holds still."""
    engine = Engine.from_config(cfg or config(), db, options=RunOptions(max_events=events, keep_alive=True))
    async with engine.serve() as facade:
        with anyio.fail_after(30):
            await engine.done.wait()
        yield facade


def saved(db: Path, key: str) -> object:
    """A value as another process would read it now: its own connection to the file."""
    with Store.open_readonly(db) as store:
        return store.get_kv(key)


async def test_an_mcp_client_cannot_lift_the_operators_halt_but_the_operator_can(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    async with engine_on(db) as facade:
        await facade.emergency_stop(flatten=False, source="operator:cli", reason="maintenance", by="operator")
        # The MCP client's own emergency stop on top keeps it the operator's halt.
        await facade.emergency_stop(flatten=False, source="mcp:claude")
        with pytest.raises(NotAllowed, match="only `trading-mcp resume`"):
            await facade.resume(source="mcp:claude")
        assert (await facade.status()).trading_state == "halted"
        await facade.resume(source="operator:cli", by="operator")
        assert (await facade.status()).trading_state == "active"
        # The client pauses, and resumes its own pause.
        await facade.pause(source="mcp:claude", reason="looking into it")
        await facade.resume(source="mcp:claude")
        assert (await facade.status()).trading_state == "active"
        kinds = [(e.kind, e.source) for e in await facade.events(limit=20)]
        assert ("tool_refused", "mcp:claude") not in kinds  # the refusal above was the facade's, audited by MCP
        assert ("resume_trading", "operator:cli") in kinds


async def test_the_operators_halt_outlives_a_restart_and_a_setting_can_let_the_client_lift_it(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    async with engine_on(db) as facade:
        await facade.emergency_stop(flatten=False, source="operator:cli", by="operator")
    async with engine_on(db) as facade:
        with pytest.raises(NotAllowed):
            await facade.resume(source="mcp:claude")
    allowing = config(risk={"mcp_may_resume_operator_halt": True})
    async with engine_on(db, allowing) as facade:
        await facade.resume(source="mcp:claude")
        assert (await facade.status()).trading_state == "active"


async def test_a_change_is_acknowledged_only_once_it_is_on_disk(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    async with engine_on(db) as facade:
        engine = facade._engine
        gate = threading.Event()
        engine.writer.submit(lambda store: gate.wait(10))  # the writer is busy: nothing reaches the disk
        answered = anyio.Event()

        async def pause() -> None:
            await facade.pause(source="mcp:claude", reason="durability test")
            answered.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(pause)
            await wait_all_tasks_blocked()
            assert not answered.is_set()  # the answer waits for the write
            assert saved(db, "trading_state") != "paused"
            gate.set()
            with anyio.fail_after(10):
                await answered.wait()
        assert saved(db, "trading_state") == "paused"  # as soon as the answer is out, a crash cannot lose it


async def test_one_engine_per_state_file_and_the_refusal_names_the_holder(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    async with engine_on(db):
        holder = StateLock.holder(db)
        assert holder is not None and holder.pid > 0
        second = Engine.from_config(config(), db, options=RunOptions(max_events=5))
        with pytest.raises(StateInUse, match=f"in use by process {holder.pid} .*use --db with another file"):
            async with second.serve():
                pass
        # --reset would delete the state under the running engine: refused too.
        code = await anyio.to_thread.run_sync(main, ["run", "--reset", "--quiet", "--db", str(db)])
        assert code == 2 and db.exists()
    assert StateLock.holder(db) is None  # released when the engine stopped
    async with engine_on(db, events=1):
        pass


async def test_a_state_file_follows_one_data_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    async with engine_on(db, events=5):
        pass
    # Another file: refused in one line that names the way to a fresh state file; the state is untouched.
    before = sqlite3.connect(db).execute("SELECT COUNT(*) FROM events").fetchone()
    code = await anyio.to_thread.run_sync(
        main, ["run", "--speed", "max", "--quiet", "--db", str(db), "--data", str(TRADES)]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "follows replay kraken_xbtusdt_1m_ohlc.json" in err and "--db" in err and "--reset" in err
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM events").fetchone() == before
    # The same history under another path is the same source.
    copy = tmp_path / SAMPLE.name
    copy.write_bytes(SAMPLE.read_bytes())
    async with engine_on(db, config(market={"speed": "max", "file": str(copy)}), events=5):
        pass
    # A live feed on a replay's state: refused before anything is written.
    kraken = config(market={"source": "kraken"})
    with pytest.raises(EngineError, match=r"follows replay .* this run is kraken live feed"):
        from engine.runtime.live import build_kraken_engine

        async with build_kraken_engine(kraken, db, RunOptions(max_events=1)).serve():
            pass
