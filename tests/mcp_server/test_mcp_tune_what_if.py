"""``tune_strategy`` with ``preview=true``: the what-if of the proposed parameters against the current ones on the
engine's recent candles, equal to a plain backtest of a file holding those same candles; apply is unchanged."""

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from fakes.mcp_harness import cli_backtest, ok, paper_config, running_engine
from mcp import Client

from engine.domain.market_data import Candle
from engine.research.space import show_value
from engine.runtime.app import Engine
from engine.runtime.control_client import RemoteFacade
from engine.runtime.facade import EngineFacade
from engine.runtime.views import TuneResultView, WhatIfSideView
from trading_mcp.server import build_server

pytestmark = pytest.mark.anyio

BOUND_S = 60
HELD = 400  # candles the engine replays (and so holds) before the preview


@pytest.fixture
async def warm() -> AsyncIterator[tuple[Engine, EngineFacade]]:
    async with running_engine(paper_config(), max_events=HELD) as running:
        yield running


def write_csv(path: Path, candles: list[Candle]) -> Path:
    """The candles as a Kraken OHLCVT CSV (time, open, high, low, close, volume, count)."""
    path.write_text(
        "".join(f"{c.ts_ns // 10**9},{c.open},{c.high},{c.low},{c.close},{c.volume},{c.trades}\n" for c in candles)
    )
    return path


def same_figures(side: WhatIfSideView, cli: dict[str, Any]) -> None:
    metrics = cli["metrics"]
    assert side.trades == len(cli["trades"]) and side.fills == len(cli["fills"])
    assert side.net_pnl == Decimal(cli["final_equity"]) - Decimal(metrics["start_equity"])
    assert side.fees == Decimal(metrics["fees_paid"])
    assert side.return_pct == Decimal(metrics["total_return"]) * 100
    assert side.max_drawdown_pct == Decimal(metrics["max_drawdown"]) * 100


async def test_preview_backtests_both_parameter_sets_on_the_candles_the_engine_holds(
    warm: tuple[Engine, EngineFacade], tmp_path: Path, mode: str
) -> None:
    engine, facade = warm
    slot = engine.slots[0]
    candles = list(slot.history)
    assert len(candles) == HELD
    before = dict(slot.strategy.values)
    with anyio.fail_after(BOUND_S):
        async with Client(build_server(facade), mode=mode) as client:
            args = {"name": slot.name, "params": {"fast": 5}, "preview": True}
            view = TuneResultView.model_validate(ok(await client.call_tool("tune_strategy", args)))
    assert not view.applied and slot.strategy.values == before and view.version == slot.version  # nothing applied
    what_if = view.what_if
    assert what_if is not None and view.what_if_note is None
    assert what_if.window.candles == HELD and what_if.pair == slot.pair
    # Another route to the same figures: the CLI's backtest of a file holding exactly those candles.
    data = write_csv(tmp_path / "recent.csv", candles)
    base = ["--data", str(data), "--strategy", slot.strategy.kind, "--pair", slot.pair]
    # The parameters that differ from their defaults (the CLI refuses a bool given as text: a separate bug).
    shown = slot.strategy.shown_values()
    current = [arg for k, v in shown.items() for arg in ("--param", f"{k}={show_value(v)}")]
    proposed = [*current, "--param", "fast=5"]
    now = await anyio.to_thread.run_sync(cli_backtest, base + current)
    then = await anyio.to_thread.run_sync(cli_backtest, base + proposed)
    assert (what_if.window.start, what_if.window.end) == (now["window"]["start"], now["window"]["end"])
    same_figures(what_if.current, now)
    same_figures(what_if.proposed, then)
    assert now["trades"] and what_if.current != what_if.proposed  # both traded, differently
    assert what_if.proposed.params["fast"] == "5" and what_if.current.params["fast"] == str(before["fast"])


async def test_apply_is_unchanged_and_runs_no_what_if(warm: tuple[Engine, EngineFacade]) -> None:
    engine, facade = warm
    slot = engine.slots[0]
    applied = await facade.tune_strategy(slot.name, {"fast": 5}, preview=False, source="test")
    assert applied.applied and applied.what_if is None and applied.what_if_note is None
    assert slot.strategy.values["fast"] == 5 and applied.changes[0].after == "5"


async def test_too_few_candles_give_no_what_if_and_say_why(facade: EngineFacade) -> None:
    with anyio.fail_after(BOUND_S):
        view = await facade.tune_strategy("ema_cross", {"fast": 5}, preview=True, source="test")
    assert view.what_if is None and view.changes
    assert view.what_if_note is not None and "holds 60 recent candles" in view.what_if_note


async def test_the_what_if_reaches_a_server_attached_through_the_control_socket(tmp_path: Path) -> None:
    from engine.runtime.app import RunOptions
    from engine.runtime.state_lock import StateLock

    db = tmp_path / "c.db"
    engine = Engine.from_config(paper_config(), db, options=RunOptions(max_events=HELD, keep_alive=True))
    with anyio.fail_after(BOUND_S):
        async with engine.serve() as local:
            await engine.done.wait()
            owner = StateLock.holder(db)
            assert owner is not None and owner.control is not None
            async with RemoteFacade.connect(Path(owner.control)) as remote:
                far = await remote.tune_strategy("ema_cross", {"fast": 5}, preview=True, source="test")
            near = await local.tune_strategy("ema_cross", {"fast": 5}, preview=True, source="test")
    assert far.what_if is not None and far.what_if == near.what_if
