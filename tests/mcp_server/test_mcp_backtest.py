"""The ``backtest`` tool: the figures of ``trading-mcp backtest --json`` for the same arguments, data only from the
engine's data folder (or the shipped sample), refusals in one sentence, and the live engine left as it was."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from fakes.mcp_harness import cli_backtest, ok, paper_config, rest_buy_orders, running_engine, snapshot, text_of
from mcp import Client

from engine.errors import InvalidRequest, NotAllowed
from engine.runtime.facade import EngineFacade
from engine.runtime.views import BacktestView
from trading_mcp.server import build_server

pytestmark = pytest.mark.anyio

SAMPLE = Path(__file__).resolve().parents[2] / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
BOUND_S = 60  # every wait here: a backtest of the sample takes about a second, the worker's start included


def sample_rows() -> list[list[Any]]:
    """The sample's closed candles, read here from the Kraken JSON (time, open, high, low, close, vwap, volume,
    count): those stamped at or before ``last`` (the one after it was still open)."""
    result = json.loads(SAMPLE.read_text())["result"]
    return [row for row in result["XBTUSDT"] if int(row[0]) <= int(result["last"])]


def iso(unix_s: int) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat().replace("+00:00", "Z")


def write_csv(path: Path, rows: list[list[Any]]) -> Path:
    """Rows as a Kraken OHLCVT CSV (time, open, high, low, close, volume, count)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{r[0]},{r[1]},{r[2]},{r[3]},{r[4]},{r[6]},{r[7]}\n" for r in rows))
    return path


def engine_sentence(text: str) -> str:
    """The engine's refusal inside the tool error: one sentence, nothing else."""
    assert text.startswith("Invalid request: ") and text.endswith(". Nothing was changed."), text
    sentence = text.removeprefix("Invalid request: ").removesuffix(". Nothing was changed.")
    assert "\n" not in sentence and ". " not in sentence and "Traceback" not in sentence, sentence
    return sentence


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The engine's data folder: two data files, a state file, a hidden file and links that lead out of it."""
    folder = tmp_path / "data"
    rows = sample_rows()
    write_csv(folder / "btc_1m.csv", rows)
    write_csv(folder / "kraken" / "btc_1m.csv", rows[:300])
    write_csv(tmp_path / "outside.csv", rows)
    (folder / "engine.db").write_bytes(b"SQLite format 3\x00")
    write_csv(folder / ".hidden.csv", rows)
    (folder / "link.csv").symlink_to(tmp_path / "outside.csv")
    (folder / "up").symlink_to(tmp_path, target_is_directory=True)
    return folder


@pytest.fixture
async def engine_in(data_dir: Path) -> AsyncIterator[EngineFacade]:
    async with running_engine(paper_config(data_dir=str(data_dir))) as (_engine, facade):
        yield facade


CASES = [
    # (tool arguments, CLI arguments): the same backtest both ways
    (
        {"strategy": "ema_cross", "pair": "BTC/USD", "params": {"fast": 5, "slow": "20"}},
        ["--data", str(SAMPLE), "--strategy", "ema_cross", "--param", "fast=5", "--param", "slow=20"],
    ),
    (
        {"strategy": "mean_reversion", "pair": "XBTUSD", "start": "2025-11-10T15:00Z", "end": "2025-11-10T21:30:00Z"},
        ["--data", str(SAMPLE), "--strategy", "mean_reversion", "--pair", "XBTUSD", "--start", "2025-11-10T15:00Z",
         "--end", "2025-11-10T21:30:00Z"],
    ),
]  # fmt: skip


@pytest.mark.parametrize(("tool_args", "cli_args"), CASES, ids=["whole sample", "a window"])
async def test_a_backtest_of_the_sample_gives_the_figures_of_the_cli(
    facade: EngineFacade, mode: str, tool_args: dict[str, Any], cli_args: list[str]
) -> None:
    with anyio.fail_after(BOUND_S):
        async with Client(build_server(facade), mode=mode) as client:
            view = BacktestView.model_validate(ok(await client.call_tool("backtest", tool_args)))
        cli = await anyio.to_thread.run_sync(cli_backtest, cli_args)
    assert view.metrics == cli["metrics"]
    assert format(view.final_equity, "f") == cli["final_equity"]
    assert (view.trades, view.fills) == (len(cli["trades"]), len(cli["fills"]))
    assert view.refusals == cli["refusals"]["by_rule"] and view.rejected_by_venue == len(cli["rejected_by_venue"])
    assert (view.guard_exits, view.breaker_trips) == (cli["guard_exits"], cli["breaker_trips"])
    assert view.window.model_dump() == cli["window"] and view.window.candles == cli["candles"]
    assert (view.params, view.pair, view.notes) == (cli["params"], cli["pair"], cli["notes"])
    assert view.fills > 0  # it traded: the comparison compares something
    # The window, counted here from the Kraken JSON itself: candles opening at or after the start, closing by the end.
    start = datetime.fromisoformat(tool_args.get("start", "1970-01-01T00:00Z")).timestamp()
    end = datetime.fromisoformat(tool_args.get("end", "2100-01-01T00:00Z")).timestamp()
    inside = [r for r in sample_rows() if int(r[0]) >= start and int(r[0]) + 60 <= end]
    assert view.window.candles == len(inside)
    assert (view.window.start, view.window.end) == (iso(inside[0][0]), iso(inside[-1][0] + 60))
    # Twelve hours of data: the annualised figures are n/a, and the result says why and on what sampling.
    metrics = view.metrics
    assert metrics["sharpe"] is None and metrics["sortino"] is None and metrics["cagr"] is None
    assert "under the 2 an annualised figure needs" in str(metrics["annualised_note"])
    assert (metrics["return_interval"], metrics["periods_per_year"]) == ("60s", "525600")


async def test_a_data_file_of_the_data_folder_runs(engine_in: EngineFacade) -> None:
    with anyio.fail_after(BOUND_S):
        async with Client(build_server(engine_in)) as client:
            args = {"strategy": "ema_cross", "pair": "BTC/USD", "data": "kraken/btc_1m.csv"}
            view = BacktestView.model_validate(ok(await client.call_tool("backtest", args)))
    assert view.data == "kraken/btc_1m.csv" and view.window.candles == 300


REFUSED_DATA = [
    ("/etc/passwd", "is a path"),
    ("{outside}", "is a path"),  # the absolute path of a real data file outside the folder
    ("../outside.csv", "'..'"),
    ("kraken/../../outside.csv", "'..'"),
    ("C:/data/btc.csv", "is a path"),
    ("kraken\\btc_1m.csv", "is a path"),
    ("link.csv", "leads outside the engine's data folder through a link"),
    ("up/outside.csv", "leads outside the engine's data folder through a link"),
    (".hidden.csv", "not a file name inside the engine's data folder"),
    ("btc 1m.csv", "not a file name inside the engine's data folder"),
    ("engine.db", "only .csv and .json files can be replayed"),
    ("missing.csv", "no data file 'missing.csv' in the engine's data folder (there: btc_1m.csv; or 'sample')"),
]


@pytest.mark.parametrize(("name", "says"), REFUSED_DATA, ids=[n for n, _ in REFUSED_DATA])
async def test_data_outside_the_data_folder_is_refused(
    engine_in: EngineFacade, data_dir: Path, name: str, says: str
) -> None:
    name = name.format(outside=data_dir.parent / "outside.csv")
    async with Client(build_server(engine_in)) as client:
        before = await snapshot(client)
        result = await client.call_tool("backtest", {"strategy": "ema_cross", "pair": "BTC/USD", "data": name})
        assert await snapshot(client) == before
    assert result.is_error
    sentence = engine_sentence(text_of(result))
    assert says in sentence
    assert str(data_dir) not in sentence  # the folder's own path is not the client's business


BAD_CALLS = [
    (
        {"strategy": "nope"},
        (
            "unknown strategy kind 'nope' (known: breakout, ema_cross, mean_reversion, micro_scalper, "
            "portfolio_rebalance, rsi_reversal)"
        ),
    ),
    ({"strategy": "ema_cross", "params": {"nope": 1}}, "unknown parameter 'nope' for ema_cross"),
    ({"strategy": "micro_scalper"}, "micro_scalper trades on the L2 book, which candle data does not carry"),
    ({"strategy": "ema_cross", "params": {"fast": 0}}, "fast: 0 is below the minimum 2"),
    ({"strategy": "ema_cross", "params": {"fast": 30, "slow": 10}}, "fast"),
    ({"strategy": "ema_cross", "start": "2025-11-11", "end": "2025-11-10"}, "is not before its end"),
    ({"strategy": "ema_cross", "start": "the 10th of May"}, "not an ISO date"),
    ({"strategy": "ema_cross", "start": "2030-01-01"}, "no candle of kraken_xbtusdt_1m_ohlc.json lies inside"),
]


@pytest.mark.parametrize(("args", "says"), BAD_CALLS, ids=[str(i) for i in range(len(BAD_CALLS))])
async def test_an_unknown_strategy_a_bad_param_or_window_is_refused_in_one_sentence(
    facade: EngineFacade, args: dict[str, Any], says: str
) -> None:
    with anyio.fail_after(BOUND_S):
        async with Client(build_server(facade)) as client:
            before = await snapshot(client)
            result = await client.call_tool("backtest", {"pair": "BTC/USD", **args})
            assert await snapshot(client) == before
    assert says in engine_sentence(text_of(result))


async def test_malformed_arguments_are_refused_by_the_strict_model(facade: EngineFacade) -> None:
    async with Client(build_server(facade)) as client:
        text = await client.call_tool(
            "backtest", {"strategy": "ema_cross", "pair": "BTC/USD", "params": {"fast": "1e3"}}
        )
        path = await client.call_tool("backtest", {"strategy": "ema_cross", "pair": "BTC/USD", "data": 7})
    assert "'params.fast' must be a plain decimal number" in text_of(text)
    assert "'data' must be a string" in text_of(path) and "nothing was changed" in text_of(path)


async def test_the_live_engine_is_untouched(engine_in: EngineFacade, data_dir: Path) -> None:
    await rest_buy_orders(engine_in, 2)  # the live engine has orders of its own
    files = sorted(data_dir.rglob("*"))

    async def state() -> tuple[object, ...]:
        status = await engine_in.status()
        orders = await engine_in.orders(open_only=False, limit=10000)
        events = await engine_in.events(limit=500)
        return (
            status.trades,
            status.open_orders,
            status.equity,
            status.events_processed,
            [(o.client_id, o.status, o.filled_qty) for o in orders.orders],
            len(events),
            (await engine_in.performance()).metrics,
        )

    before = await state()
    with anyio.fail_after(BOUND_S):
        async with Client(build_server(engine_in)) as client:
            view = BacktestView.model_validate(
                ok(
                    await client.call_tool(
                        "backtest", {"strategy": "ema_cross", "pair": "BTC/USD", "data": "btc_1m.csv"}
                    )
                )
            )
    assert view.fills > 0 and view.trades > 0  # the backtest did trade...
    assert await state() == before  # ...on an account of its own
    assert before[1] == 2  # the two resting orders (and whatever the live strategies did) are all still there
    assert sorted(data_dir.rglob("*")) == files  # and wrote no state file anywhere in the data folder


async def test_read_only_mode_offers_the_backtest(facade: EngineFacade) -> None:
    async with Client(build_server(facade, read_only=True)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    annotations = tools["backtest"].annotations
    assert annotations is not None and annotations.read_only_hint is True and annotations.destructive_hint is False
    assert tools["backtest"].output_schema is not None
    assert "pause_trading" not in tools


async def test_a_backtest_over_its_time_is_stopped_and_one_runs_at_a_time(facade: EngineFacade) -> None:
    with anyio.fail_after(BOUND_S):
        with pytest.raises(InvalidRequest, match=r"did not finish within 0\.001 s and was stopped"):
            await facade.backtest("ema_cross", {}, "BTC/USD", "sample", timeout_s=0.001)
        finished: list[BacktestView] = []

        async def first() -> None:
            finished.append(await facade.backtest("ema_cross", {}, "BTC/USD", "sample"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await anyio.wait_all_tasks_blocked()  # the first one holds its turn and waits for its worker
            with pytest.raises(NotAllowed, match="another backtest is running"):
                await facade.backtest("ema_cross", {}, "BTC/USD", "sample")
        assert len(finished) == 1 and finished[0].window.candles == len(sample_rows())
        again = await facade.backtest("ema_cross", {}, "BTC/USD", "sample")  # the turn was given back
    assert again == finished[0]
