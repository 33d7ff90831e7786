"""Research tools: ``backtest``, one strategy over a data file on a simulated account of its own.

A backtest changes nothing in the account (it runs in a worker process against an in-memory store of its own; the
live engine's state is neither read nor written), so it is registered with the read tools, in read-only mode too.
The engine checks every argument (the strategy kind against the registry, the parameters against the strategy's
declared schema, the window, and a data file named ``sample`` or inside its data folder, never a path leading out
of it) and bounds the run in time; this layer only converts the parameters and returns the summary.

The tool needs the engine's own facade (``EngineFacade``): a server attached to an engine in another process
(``RemoteFacade``, through the control socket) does not offer it.
"""

from collections.abc import Mapping
from typing import Annotated, Protocol, runtime_checkable

from mcp_types import ToolAnnotations
from pydantic import Field

from engine.runtime.views import BacktestView
from engine.strategies import REGISTRY
from trading_mcp.arguments import ScalarValue
from trading_mcp.errors import tool_errors
from trading_mcp.models import engine_values
from trading_mcp.registry import ToolSet

__all__ = ["RESEARCH_TOOLS", "BacktestFacade", "register_research_tools"]

RESEARCH_TOOLS = ("backtest",)

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


def register_research_tools(tools: ToolSet, facade: BacktestFacade) -> None:
    """Add ``backtest`` to ``tools``."""

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
