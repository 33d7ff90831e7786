"""The engine's control socket: another process of this user reads and steers the engine through it, as a client
(never the operator), with refusals kept whole, changes pushed, and reads admitted within a budget."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from engine.errors import InvalidRequest, NotAllowed, NotFound
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import config_from_mapping
from engine.runtime.control import ReadBudget, control_path_for
from engine.runtime.control_client import EngineGone, RemoteFacade
from engine.runtime.facade import EngineFacade
from engine.runtime.state_lock import StateLock

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def engine_and_remote(db: Path) -> AsyncIterator[tuple[Engine, EngineFacade, RemoteFacade]]:
    config = config_from_mapping({"market": {"speed": "max"}})
    engine = Engine.from_config(config, db, options=RunOptions(max_events=60, keep_alive=True))
    async with engine.serve() as local:
        with anyio.fail_after(30):
            await engine.done.wait()
        owner = StateLock.holder(db)
        assert owner is not None and owner.control is not None  # another process finds it in the lock
        async with RemoteFacade.connect(Path(owner.control)) as remote:
            yield engine, local, remote


async def test_reads_through_the_socket_are_the_engines_own(tmp_path: Path) -> None:
    async with engine_and_remote(tmp_path / "c.db") as (_engine, local, remote):
        assert (remote.mode, remote.venue) == (local.mode, local.venue)
        assert remote.pair_names() == local.pair_names() and remote.strategy_names() == local.strategy_names()
        here, there = await local.status(), await remote.status()
        assert there.model_copy(update={"uptime_s": 0}) == here.model_copy(update={"uptime_s": 0})
        assert await remote.balance() == await local.balance()
        assert await remote.positions() == await local.positions()
        assert await remote.orders(open_only=False, limit=5) == await local.orders(open_only=False, limit=5)
        assert await remote.trades(limit=5) == await local.trades(limit=5)
        assert await remote.risk() == await local.risk()
        assert await remote.strategies() == await local.strategies()
        assert await remote.market("BTC/USD") == await local.market("BTC/USD")
        assert await remote.performance(strategy="ema_cross") == await local.performance(strategy="ema_cross")
        steps: list[str] = []

        async def progress(done: float, total: float, note: str) -> None:
            steps.append(note)

        diagnosis = await remote.diagnose(progress)
        assert diagnosis.checks
        assert len(steps) == len(diagnosis.checks) + 1 and steps[-1] == "done"  # a step per check, then done


async def test_changes_and_refusals_keep_their_meaning_and_the_socket_is_never_the_operator(tmp_path: Path) -> None:
    async with engine_and_remote(tmp_path / "c.db") as (engine, local, remote):
        heard: list[set[str]] = []
        remote.subscribe_changes(heard.append)
        preview = await remote.tune_strategy("ema_cross", {"fast": 10}, preview=True, source="mcp:remote")
        assert not preview.applied and preview.changes[0].after == "10"
        with pytest.raises(InvalidRequest, match="not a plain decimal"):
            await remote.tune_strategy("ema_cross", {"fast": "1_0"}, preview=False, source="mcp:remote")
        with pytest.raises(NotFound, match="unknown strategy"):
            await remote.strategy("nope")
        await remote.set_risk_limits({"max_open_orders": 3}, source="mcp:remote")
        assert engine.risk.limits.max_open_orders == 3
        await local.emergency_stop(flatten=False, source="operator:cli", by="operator")
        with pytest.raises(NotAllowed, match="halted by the operator"):
            await remote.resume(source="mcp:remote")  # whatever the socket says, it is a client
        stop = await remote.emergency_stop(flatten=False, source="mcp:remote", reason="belt and braces")
        assert stop.already_halted and engine.risk.halted_by == "operator"
        with anyio.fail_after(10):
            while not any("status" in topics for topics in heard):
                await anyio.sleep(0.05)  # the engine publishes changes every 0.2 s
        sources = {(e.kind, e.source) for e in await remote.events(limit=30)}
        assert ("set_risk_limits", "mcp:remote") in sources and ("tune_strategy_preview", "mcp:remote") in sources


async def test_when_the_engine_stops_every_call_fails_plainly(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    config = config_from_mapping({"market": {"speed": "max"}})
    engine = Engine.from_config(config, db, options=RunOptions(max_events=20, keep_alive=True))
    running, stop = anyio.Event(), anyio.Event()

    async def run() -> None:
        async with engine.serve():
            await engine.done.wait()
            running.set()
            await stop.wait()

    path = control_path_for(db)
    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        with anyio.fail_after(30):
            await running.wait()
        async with RemoteFacade.connect(path) as remote:
            await remote.status()
            stop.set()  # the engine stops while this client holds its connection
            with anyio.fail_after(10):
                await remote.closed.wait()
            with pytest.raises(EngineGone):
                await remote.status()
    assert not path.exists()  # the socket file goes with the engine
    with pytest.raises(EngineGone, match="no engine answers"):
        async with RemoteFacade.connect(path):
            pass


async def test_a_peer_that_speaks_nonsense_is_dropped_and_the_engine_goes_on(tmp_path: Path) -> None:
    async with engine_and_remote(tmp_path / "c.db") as (engine, _local, remote):
        path = control_path_for(tmp_path / "c.db")
        async with await anyio.connect_unix(path) as rogue:
            await rogue.receive()  # the greeting
            await rogue.send(b"this is not json\n")
            with anyio.fail_after(5):
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    while True:
                        await rogue.receive()
        async with await anyio.connect_unix(path) as rogue:
            await rogue.receive()
            await rogue.send(b'{"id": 1, "call": "resume", "args": {"source": "x", "by": "operator"}}\n')
            answer = await rogue.receive()
            assert b"unknown argument(s) by" in answer  # no way to claim the operator's authority
        assert (await remote.status()).events_processed == engine.state.cursor


def test_the_read_budget_holds_reads_to_their_share_of_the_loop() -> None:
    now = [0.0]
    budget = ReadBudget(share=0.1, window_s=1.0, clock=lambda: now[0])
    assert budget.delay() == 0  # a single read never waits
    budget.charge(0.05)
    budget.charge(0.05)
    assert budget.delay() == 0  # 0.1 s of reads in the last second: the share, not more
    budget.charge(0.02)
    assert budget.delay() == pytest.approx(1.0)  # over: until the first charge leaves the window
    now[0] = 0.5
    assert budget.delay() == pytest.approx(0.5)
    now[0] = 1.0
    assert budget.delay() == 0


async def test_identical_reads_share_one_call_and_a_change_is_seen_at_once(tmp_path: Path) -> None:
    """The gateway's reads are coalesced and reused for a tenth of a second, but never across a change."""
    async with engine_and_remote(tmp_path / "c.db") as (engine, _local, remote):
        server = engine.control
        assert server is not None
        before = server.calls
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(remote.status)
        await remote.status()  # within 0.1 s of the others: the same answer again
        assert server.calls - before == 1
        assert (await remote.status()).trading_state == "active"
        await remote.pause(source="mcp:remote")  # this client's own change: its next read asks the engine
        assert (await remote.status()).trading_state == "paused"
        assert server.calls - before == 3
        remote.read_cache_s = 0.0  # with no reuse, every read is the engine's
        await remote.risk()
        await remote.risk()
        assert server.calls - before == 5
