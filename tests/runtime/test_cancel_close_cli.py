"""``trading-mcp cancel`` and ``trading-mcp close``: the operator's shell acts on the engine using the state file,
with the operator's authority, and says in one line what happened; with no engine running a cancel waits for the
next start and a close is refused."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from engine.runtime.app import Engine, RunOptions
from engine.runtime.cli import main
from engine.runtime.config import config_from_mapping
from engine.runtime.facade import EngineFacade

pytestmark = pytest.mark.anyio
CONFIG = config_from_mapping({"market": {"speed": "max"}})


@asynccontextmanager
async def engine_on(db: Path, events: int = 60) -> AsyncIterator[tuple[Engine, EngineFacade]]:
    engine = Engine.from_config(CONFIG, db, options=RunOptions(max_events=events, keep_alive=True))
    async with engine.serve() as facade:
        with anyio.fail_after(30):
            await engine.done.wait()
        yield engine, facade


async def cli(*argv: str) -> int:
    with anyio.fail_after(30):
        return await anyio.to_thread.run_sync(main, list(argv))


async def rest_buy(facade: EngineFacade) -> str:
    last = (await facade.market("BTC/USD")).last
    assert last is not None
    order = await facade.submit_order(
        "BTC/USD", "buy", Decimal("0.0001"), (last / 2).quantize(Decimal("1")), source="t"
    )
    return order.client_id


async def test_cancel_and_close_reach_the_running_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    async with engine_on(db) as (engine, facade):
        keep, drop = await rest_buy(facade), await rest_buy(facade)
        assert await cli("cancel", drop, "--db", str(db)) == 0
        assert capsys.readouterr().out.strip() == f"cancel: order {drop} is canceled"
        assert engine.oms.open_ids == {keep}
        assert await cli("cancel", drop, "--db", str(db)) == 2
        err = capsys.readouterr().err.strip()
        assert err == (
            f"trading-mcp cancel: refused by the engine: order {drop} is canceled, not open: there is nothing to "
            "cancel; nothing was changed"
        )
        # The operator's close goes through even under the operator's own halt.
        await facade.emergency_stop(flatten=False, source="operator:cli", by="operator")
        (position,) = (await facade.positions()).positions
        assert await cli("close", "xbtusd", "--strategy", position.strategy, "--db", str(db)) == 0
        out = capsys.readouterr().out.strip()
        assert out.startswith("close: sent market sell ") and out.endswith(f"of {position.qty} BTC/USD for ema_cross")
        (order,) = [engine.oms.orders[cid] for cid in engine.oms.open_ids]
        assert (order.side.value, order.qty) == ("sell", position.qty)
        assert await cli("close", "ETH/USD", "--db", str(db)) == 2
        assert "no open position in ETH/USD for any strategy" in capsys.readouterr().err
        sources = {(e.kind, e.source) for e in await facade.events(limit=50)}
        assert {("cancel_order", "operator:cli"), ("close_position", "operator:cli")} <= sources
        assert ("operator_request_refused", "operator:cli") in sources
    assert sorted(p.name for p in tmp_path.iterdir() if "operator-order" in p.name) == []  # nothing left behind


async def test_with_no_engine_a_cancel_waits_for_the_next_start_and_a_close_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    async with engine_on(db) as (_engine, facade):
        keep, drop = await rest_buy(facade), await rest_buy(facade)
    assert await cli("cancel", drop, "--db", str(db)) == 0
    assert "no engine is running" in capsys.readouterr().out
    assert await cli("cancel", "nope", "--db", str(db)) == 2
    assert "no order 'nope' is known" in capsys.readouterr().err
    assert await cli("close", "BTC/USD", "--db", str(db)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("trading-mcp close: no engine is running on") and "nothing was sold" in err
    async with engine_on(db, events=1) as (engine, facade):
        assert engine.oms.open_ids == {keep}  # cancelled at start, before trading
        (event,) = await facade.events(kind="cancel_order", limit=5)
        assert event.source == "operator:cli"
