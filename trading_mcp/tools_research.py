"""Research tools: ``backtest``, one strategy over a data file on a simulated account of its own, and ``optimize``,
a search of its parameters (``trading-mcp optimize``'s) answered with a summary.

Neither changes anything in the account (they run in a worker process against in-memory stores of their own; the
live engine's state is neither read nor written), so they are registered with the read tools, in read-only mode
too. A finished optimisation is saved beside the state (``<data_dir>/optimize.db``, with the CLI's runs), except
in read-only mode, where nothing is written.
The engine checks every argument (the strategy kind against the registry, the parameters against the strategy's
declared schema, the window, and a data file named ``sample`` or inside its data folder, never a path leading out
of it) and bounds the run in time; this layer only converts the parameters and returns the summary.

``optimize`` reports each finished trial as MCP progress; a cancelled call (or a client gone) kills its worker
process, and nothing is saved. One runs at a time, for ten minutes at most.

The tools need the engine's own facade (``EngineFacade``): a server attached to an engine in another process
(``RemoteFacade``, through the control socket) does not offer them.
"""

from collections.abc import Mapping, Sequence
from typing import Annotated, Literal, Protocol, runtime_checkable

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations
from pydantic import Field

from engine.runtime.facade import ProgressCallback
from engine.runtime.views import BacktestView, OptimizeView
from engine.strategies import REGISTRY
from trading_mcp.arguments import ScalarValue
from trading_mcp.errors import tool_errors
from trading_mcp.models import engine_values
from trading_mcp.registry import ToolSet

__all__ = ["RESEARCH_TOOLS", "BacktestFacade", "OptimizeFacade", "register_research_tools"]

RESEARCH_TOOLS = ("backtest", "optimize")

# It reads files of the engine's own data folder and changes nothing: read-only, and the same answer each time.
_RESEARCH = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

Kind = Annotated[
    str,
    Field(min_length=1, max_length=64, description=f"Strategy kind: {', '.join(sorted(REGISTRY))}."),
]
Params = Annotated[
    dict[str, ScalarValue] | None,
    Field(
        max_length=32,
        description='Parameter name -> value, e.g. {"fast": 5, "slow": 20}; the others keep their defaults '
        "(list_strategies shows each one's type, bounds and default).",
    ),
]
Pair = Annotated[str, Field(min_length=1, max_length=32, description="Pair the data is traded as, e.g. BTC/USD.")]
DataName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="'sample' (the shipped Kraken one-minute capture, BTC/USDT, 12 hours) or a .csv / .json file "
        "name inside the engine's data folder (e.g. XBTUSD_60.csv); never a path outside it.",
    ),
]
When = Annotated[
    str,
    Field(
        min_length=10,
        max_length=40,
        description="ISO date or date-time, UTC (2024-01-31 or 2024-01-31T12:00Z); a date is the whole day.",
    ),
]

Ranges = Annotated[
    dict[
        Annotated[str, Field(min_length=1, max_length=64)],
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9.:-]+$")],
    ],
    Field(
        min_length=1,
        max_length=32,
        description='Parameter name -> "LOW:HIGH" or "LOW:HIGH:STEP" to search (inclusive), or "VALUE" to fix, '
        'as trading-mcp optimize --param: {"fast": "5:50", "slow": "20:200:10"}; bools search as "false:true". '
        "Unnamed parameters keep their defaults.",
    ),
]
Trials = Annotated[int, Field(ge=1, le=200, description="Trials per search (per fold with walk_forward).")]
Folds = Annotated[
    int,
    Field(ge=0, le=5, description="Anchored walk-forward folds, each tested out of sample (0: one search)."),
]
Objective = Annotated[
    Literal["sharpe", "sortino", "calmar", "return"],
    Field(description="What to maximise; sharpe and sortino are undefined under two days of data: use return."),
]
Sampler = Annotated[Literal["tpe", "grid", "random"], Field(description="Optuna's sampler.")]
Seed = Annotated[int, Field(ge=0, le=2**31 - 1, description="The sampler's seed (same seed, same trials).")]


@runtime_checkable
class BacktestFacade(Protocol):
    """The facade method the tool calls (``EngineFacade.backtest``)."""

    async def backtest(
        self,
        kind: str,
        params: Mapping[str, object],
        pair: str,
        data: str,
        start: str | None = None,
        end: str | None = None,
    ) -> BacktestView: ...


@runtime_checkable
class OptimizeFacade(Protocol):
    """The facade method ``optimize`` calls (``EngineFacade.optimize``)."""

    async def optimize(
        self,
        kind: str,
        ranges: Sequence[str],
        pair: str,
        data: str,
        start: str | None = None,
        end: str | None = None,
        *,
        trials: int = 50,
        objective: str = "sharpe",
        walk_forward: int = 0,
        sampler: str = "tpe",
        seed: int = 1,
        save: bool = True,
        progress: ProgressCallback | None = None,
        timeout_s: float | None = None,
    ) -> OptimizeView: ...


def register_research_tools(tools: ToolSet, facade: BacktestFacade, *, read_only: bool = False) -> None:
    """Add ``backtest`` to ``tools``, and ``optimize`` when the facade has it (in read-only mode, its runs are not
    saved)."""

    @tools.tool(title="Backtest a strategy", annotations=_RESEARCH)
    async def backtest(
        strategy: Kind,
        pair: Pair,
        data: DataName = "sample",
        params: Params = None,
        start: When | None = None,
        end: When | None = None,
    ) -> BacktestView:
        """Backtest one strategy over a data file on a simulated account of its own (paper balances, fees and
        account rules of this engine's configuration, no size limits); the live account is not touched. Returns
        a summary: metrics (Sharpe, Sortino and CAGR are null under two days or 30 returns, with the reason in
        annualised_note), trade and fill counts, refusals by rule, guard exits, final equity and the window of
        candles used (start: first candle opening at or after it, end: last closing at or before it). Runs up
        to two minutes; one at a time. The same figures as `trading-mcp backtest --json`.
        """
        with tool_errors():
            values = engine_values(params, what="parameters") if params else {}
            return await facade.backtest(strategy, values, pair, data, start, end)

    if not isinstance(facade, OptimizeFacade):
        return
    searcher: OptimizeFacade = facade

    @tools.tool(title="Optimise a strategy's parameters", annotations=_RESEARCH)
    async def optimize(
        strategy: Kind,
        pair: Pair,
        ranges: Ranges,
        ctx: Context,
        data: DataName = "sample",
        start: When | None = None,
        end: When | None = None,
        trials: Trials = 50,
        objective: Objective = "sharpe",
        walk_forward: Folds = 0,
        sampler: Sampler = "tpe",
        seed: Seed = 1,
    ) -> OptimizeView:
        """Search a strategy's parameters over a data file (trading-mcp optimize's search: Optuna, walk-forward
        folds, deflated Sharpe ratio) on simulated accounts of its own; the live account is not touched. Reports
        progress per trial; cancelling the call stops it and saves nothing; one at a time, ten minutes at most.
        Returns a summary: the best parameters and their figures, each fold's in-sample and out-of-sample
        figures, the deflated Sharpe ratio with an overfitting warning, trial counts, the 5 best trials and the
        duration. A finished run is saved (run_id; trading-mcp optimize --list shows it) unless read-only.
        """

        async def progress(done: float, total: float, message: str) -> None:
            await ctx.report_progress(done, total, message)

        with tool_errors():
            specs = [f"{name}={text}" for name, text in ranges.items()]
            return await searcher.optimize(
                strategy,
                specs,
                pair,
                data,
                start,
                end,
                trials=trials,
                objective=objective,
                walk_forward=walk_forward,
                sampler=sampler,
                seed=seed,
                save=not read_only,
                progress=progress,
            )
