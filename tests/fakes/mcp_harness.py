"""Helpers shared by the MCP tests (imported by name: the test directory is on ``sys.path``)."""

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, redirect_stdout
from decimal import Decimal
from io import StringIO
from typing import Any

import anyio
from mcp import Client
from mcp_types import CallToolResult, TextContent

from engine.domain.instrument import Instrument
from engine.runtime.app import Engine, RunOptions
from engine.runtime.cli import main
from engine.runtime.config import Config, config_from_mapping
from engine.runtime.facade import EngineFacade

WARM_EVENTS = 60


def paper_config(**overrides: Any) -> Config:
    """A paper config that replays the shipped sample as fast as possible."""
    base: dict[str, Any] = {"market": {"speed": "max"}}
    base.update(overrides)
    return config_from_mapping(base)


@asynccontextmanager
async def running_engine(
    config: Config | None = None,
    *,
    max_events: int | None = WARM_EVENTS,
    instruments: Mapping[str, Instrument] | None = None,
) -> AsyncIterator[tuple[Engine, EngineFacade]]:
    """A paper engine on an in-memory DB; with ``max_events`` it replays that many candles, then holds still."""
    options = RunOptions(max_events=max_events)
    engine = Engine.from_config(config or paper_config(), db_path=None, options=options, instruments=instruments)
    async with engine.serve() as facade:
        if max_events is not None:
            with anyio.fail_after(30):
                await engine.done.wait()
        yield engine, facade


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured result of a successful call (fails the test with the error text otherwise)."""
    assert not result.is_error, text_of(result)
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


def text_of(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


async def snapshot(client: Client) -> dict[str, Any]:
    """What a refused call must leave unchanged: trading state, strategies (params, enabled, version), limits."""
    status = ok(await client.call_tool("get_status", {}))
    strategies = ok(await client.call_tool("list_strategies", {}))
    risk = ok(await client.call_tool("get_risk", {}))
    return {
        "trading_state": status["trading_state"],
        "halt_reason": status["halt_reason"],
        "open_orders": status["open_orders"],
        "strategies": strategies,
        "limits": [(limit["name"], limit["value"]) for limit in risk["limits"]],
    }


async def rest_buy_orders(facade: EngineFacade, count: int) -> None:
    """Place ``count`` small limit buys far below the market, so they rest open on the paper venue."""
    last = (await facade.market("BTC/USD")).last
    assert last is not None, "the engine has no price yet"
    price = (last / 2).quantize(Decimal("0.1"))
    for _ in range(count):
        await facade.submit_order("BTC/USD", "buy", Decimal("0.0001"), price, source="test")


def cli_backtest(argv: list[str]) -> dict[str, Any]:
    """``trading-mcp backtest ... --json`` run in-process (in a thread: it runs its own event loop)."""
    out = StringIO()
    with redirect_stdout(out):
        assert main(["backtest", *argv, "--no-progress", "--json"]) == 0
    result: dict[str, Any] = json.loads(out.getvalue())
    return result
