"""The ``optimize`` tool: a summary whose best trial is what a plain ``backtest`` of its parameters gives, progress
per trial, a cancellation that kills the worker and saves nothing, one run at a time, and refusals that change
nothing."""

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fakes.mcp_harness import ok, paper_config, running_engine, snapshot, text_of
from mcp import Client

from engine.errors import InvalidRequest, NotAllowed
from engine.persistence import Store
from engine.persistence.optimize_runs import list_runs, load_run
from engine.runtime.facade import EngineFacade
from engine.runtime.views import BacktestView, OptimizeView
from trading_mcp.server import build_server

pytestmark = pytest.mark.anyio

BOUND_S = (
    120  # every wait here: a few trials over the 720-candle sample take a second or two, the worker's start included
)
WINDOW = {"start": "2025-11-10T14:00Z", "end": "2025-11-10T22:00Z"}
RANGES = {"fast": "3:10", "slow": "12:40:2"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (tmp_path / "outside.csv").write_text("1762783020,1,1,1,1,1,1\n")
    return folder


@pytest.fixture
async def engine_in(data_dir: Path) -> AsyncIterator[EngineFacade]:
    async with running_engine(paper_config(data_dir=str(data_dir))) as (_engine, facade):
        yield facade


def saved_runs(data_dir: Path) -> list[Any]:
    db = data_dir / "optimize.db"
    if not db.is_file():
        return []
    with Store.open(db) as store:
        return list_runs(store)


def children() -> set[int]:
    """This process's live child processes (Linux: /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        text = (task / "children").read_text()
        found.update(int(pid) for pid in text.split())
    return found


async def test_the_best_trial_is_what_a_plain_backtest_of_its_params_gives(
    engine_in: EngineFacade, data_dir: Path, mode: str
) -> None:
    heard: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        heard.append((progress, total, message))

    args = {"strategy": "ema_cross", "pair": "BTC/USD", "ranges": RANGES, "trials": 6, "objective": "return", **WINDOW}
    with anyio.fail_after(BOUND_S):
        async with Client(build_server(engine_in), mode=mode) as client:
            view = OptimizeView.model_validate(
                ok(await client.call_tool("optimize", args, progress_callback=on_progress))
            )
            assert view.best is not None and view.best_params is not None
            plain = {"strategy": "ema_cross", "pair": "BTC/USD", "params": view.best_params, **WINDOW}
            backtest = BacktestView.model_validate(ok(await client.call_tool("backtest", plain)))
    # The independent check: the best trial's figures are the backtest's, on the same window.
    for name in ("total_return", "max_drawdown", "trade_count", "fees_paid", "sharpe", "win_rate"):
        assert view.best.metrics[name] == backtest.metrics[name], name
    assert view.best.objective == backtest.metrics["total_return"]
    assert backtest.trades > 0  # it traded: the comparison compares something
    assert view.window.model_dump() == backtest.window.model_dump()
    assert view.trials == 6 and sum(view.trial_states.values()) == 6
    assert 1 <= len(view.top_trials) <= 5 and view.top_trials[0] == view.best
    assert view.deflated_sharpe is not None and view.warnings  # six trials on half a day: not significant
    # Progress: one notification a trial, monotonic, out of the planned total.
    assert [p for p, _t, _m in heard] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert {t for _p, t, _m in heard} == {6.0}
    assert all(m and m.startswith(f"trial {int(p)} of 6") for p, _t, m in heard)
    # Saved whole, where trading-mcp optimize --list finds it.
    (run,) = saved_runs(data_dir)
    assert view.run_id == run.id and run.trials == 6 and run.best_params == view.best_params


async def test_walk_forward_reports_each_fold_in_and_out_of_sample(engine_in: EngineFacade) -> None:
    with anyio.fail_after(BOUND_S):
        view = await engine_in.optimize(
            "ema_cross", ["fast=3:8", "slow=12:30"], "BTC/USD", "sample", trials=3, objective="return", walk_forward=2
        )
    assert [f.fold for f in view.folds] == [1, 2] and view.trials == 6
    for fold in view.folds:
        assert fold.out_of_sample is not None and fold.in_sample.end <= fold.out_of_sample.start  # no look-ahead
        assert fold.trials == 3
    assert view.best_params == (view.folds[-1].in_sample_best.params if view.folds[-1].in_sample_best else None)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads child processes from /proc")
async def test_a_cancelled_optimize_kills_its_worker_saves_nothing_and_one_runs_at_a_time(
    engine_in: EngineFacade, data_dir: Path
) -> None:
    before = children()
    started = anyio.Event()
    workers: set[int] = set()

    async def on_progress(_done: float, _total: float, _message: str) -> None:
        if not started.is_set():
            workers.update(children() - before)
            started.set()

    with anyio.fail_after(BOUND_S):
        async with anyio.create_task_group() as tg:

            async def long_search() -> None:
                await engine_in.optimize(
                    "ema_cross", ["fast=2:40", "slow=10:200"], "BTC/USD", "sample", trials=200, progress=on_progress
                )

            tg.start_soon(long_search)
            await started.wait()
            with pytest.raises(NotAllowed, match="another optimisation is running"):
                await engine_in.optimize("ema_cross", ["fast=3:5"], "BTC/USD", "sample", trials=2)
            tg.cancel_scope.cancel()
    assert workers  # the search ran in a process of its own...
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)  # ...killed and reaped on cancellation
    assert saved_runs(data_dir) == []  # and nothing half-written
    with anyio.fail_after(BOUND_S):  # its turn was given back
        again = await engine_in.optimize("ema_cross", ["fast=3:5"], "BTC/USD", "sample", trials=2, objective="return")
    assert again.trials == 2 and [r.id for r in saved_runs(data_dir)] == [again.run_id]


async def test_an_optimize_over_its_time_is_stopped_and_saves_nothing(engine_in: EngineFacade, data_dir: Path) -> None:
    with anyio.fail_after(BOUND_S):
        with pytest.raises(InvalidRequest, match=r"did not finish within 0\.001 s and was stopped; nothing was saved"):
            await engine_in.optimize("ema_cross", ["fast=3:5"], "BTC/USD", "sample", trials=2, timeout_s=0.001)
    assert saved_runs(data_dir) == []


BAD_CALLS = [
    ({"strategy": "nope"}, "unknown strategy kind 'nope'"),
    ({"ranges": {"fast": "50:5"}}, "range 'fast=50:5': the low end 50 is above the high end"),
    ({"ranges": {"nope": "1:5"}}, "unknown parameter 'nope' for ema_cross"),
    ({"ranges": {"fast": "5"}}, "nothing to search"),
    ({"data": "../outside.csv"}, "climbs out of the engine's data folder"),
    ({"data": "/etc/passwd"}, "is a path"),
    ({"start": "2030-01-01"}, "no candle of kraken_xbtusdt_1m_ohlc.json lies inside the window"),
    ({"walk_forward": 5, "start": "2025-11-10T23:00Z"}, "walk_forward 5 cuts 77 candles into blocks of 12"),
]


@pytest.mark.parametrize(("args", "says"), BAD_CALLS, ids=[str(i) for i in range(len(BAD_CALLS))])
async def test_bad_input_is_refused_in_one_sentence_and_changes_nothing(
    engine_in: EngineFacade, data_dir: Path, args: dict[str, Any], says: str
) -> None:
    call = {"strategy": "ema_cross", "pair": "BTC/USD", "ranges": RANGES, "trials": 3, **args}
    with anyio.fail_after(BOUND_S):
        async with Client(build_server(engine_in)) as client:
            before = await snapshot(client)
            result = await client.call_tool("optimize", call)
            assert await snapshot(client) == before
    assert result.is_error
    text = text_of(result)
    assert says in text and "Traceback" not in text and str(data_dir) not in text, text
    assert saved_runs(data_dir) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [({"trials": 201}, "'trials'"), ({"walk_forward": 6}, "'walk_forward'"), ({"sampler": "cmaes"}, "'sampler'")],
)
async def test_too_many_trials_or_folds_are_refused_by_the_strict_model(
    engine_in: EngineFacade, data_dir: Path, args: dict[str, Any], says: str
) -> None:
    async with Client(build_server(engine_in)) as client:
        result = await client.call_tool(
            "optimize", {"strategy": "ema_cross", "pair": "BTC/USD", "ranges": RANGES, **args}
        )
    assert result.is_error and says in text_of(result)
    assert saved_runs(data_dir) == []
    with pytest.raises(InvalidRequest, match="trials 500: give 1 to 200"):  # the engine checks it too
        await engine_in.optimize("ema_cross", ["fast=3:5"], "BTC/USD", "sample", trials=500)


async def test_read_only_mode_offers_optimize_and_saves_no_run(engine_in: EngineFacade, data_dir: Path) -> None:
    with anyio.fail_after(BOUND_S):
        async with Client(build_server(engine_in, read_only=True)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            args = {"strategy": "ema_cross", "pair": "BTC/USD", "ranges": {"fast": "3:5"}, "trials": 2}
            view = OptimizeView.model_validate(ok(await client.call_tool("optimize", {**args, "objective": "return"})))
    annotations = tools["optimize"].annotations
    assert annotations is not None and annotations.read_only_hint is True and annotations.destructive_hint is False
    assert tools["optimize"].output_schema is not None
    assert view.run_id is None and saved_runs(data_dir) == []


async def test_a_saved_run_reruns_from_the_cli_with_the_same_best(engine_in: EngineFacade, data_dir: Path) -> None:
    with anyio.fail_after(BOUND_S):
        view = await engine_in.optimize("ema_cross", ["fast=3:6"], "BTC/USD", "sample", trials=3, objective="return")
    with Store.open(data_dir / "optimize.db") as store:
        saved = load_run(store, view.run_id or 0)
    assert saved is not None and saved.args["base"]["data_dir"] == str(data_dir)  # the engine's configuration
    assert saved.best_params == view.best_params


class Watched(EngineFacade):
    """The engine's facade, telling the test when an optimize call has ended (however it ended)."""

    ended: anyio.Event

    async def optimize(self, *args: Any, **kwargs: Any) -> OptimizeView:
        try:
            return await super().optimize(*args, **kwargs)
        finally:
            self.ended.set()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads child processes from /proc")
async def test_a_client_cancelling_the_call_kills_the_worker_and_saves_nothing(data_dir: Path, mode: str) -> None:
    async with running_engine(paper_config(data_dir=str(data_dir))) as (engine, _facade):
        watched = Watched(engine)
        watched.ended = anyio.Event()
        before = children()
        started = anyio.Event()
        workers: set[int] = set()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            if not started.is_set():
                workers.update(children() - before)
                started.set()

        args = {"strategy": "ema_cross", "pair": "BTC/USD", "ranges": {"fast": "2:40", "slow": "10:200"}, "trials": 200}
        with anyio.fail_after(BOUND_S):
            async with Client(build_server(watched), mode=mode) as client:
                async with anyio.create_task_group() as tg:

                    async def call() -> None:
                        await client.call_tool("optimize", args, progress_callback=on_progress)

                    tg.start_soon(call)
                    await started.wait()
                    tg.cancel_scope.cancel()  # the client gives up: notifications/cancelled reaches the server
                await watched.ended.wait()
    assert workers and not any(Path(f"/proc/{pid}").exists() for pid in workers)
    assert saved_runs(data_dir) == []
