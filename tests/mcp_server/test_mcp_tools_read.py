"""Read-only tools on both protocol versions: listed with the right hints, structured results, progress."""

from decimal import ROUND_DOWN, Decimal
from typing import Any

import anyio
import pytest
from fakes.mcp_harness import ok
from mcp import Client
from pydantic import BaseModel

from engine.runtime.facade import EngineFacade
from engine.runtime.views import (
    BalanceView,
    DiagnosisView,
    MarketView,
    OrdersView,
    PerformanceView,
    PositionsView,
    RiskView,
    StatusView,
    StrategiesView,
    TradesView,
)
from trading_mcp.models import EventsView
from trading_mcp.server import build_server
from trading_mcp.tools_read import READ_TOOLS
from trading_mcp.tools_research import RESEARCH_TOOLS
from trading_mcp.tools_write import WRITE_TOOLS

pytestmark = pytest.mark.anyio

CALLS: list[tuple[str, dict[str, Any], type[BaseModel]]] = [
    ("get_status", {}, StatusView),
    ("get_balance", {}, BalanceView),
    ("get_positions", {}, PositionsView),
    ("get_orders", {"open_only": False, "limit": 5}, OrdersView),
    ("get_trades", {"limit": 5}, TradesView),
    ("get_performance", {}, PerformanceView),
    ("get_performance", {"strategy": "ema_cross"}, PerformanceView),
    ("get_performance", {"pair": "xbtusd"}, PerformanceView),
    ("list_strategies", {}, StrategiesView),
    ("list_strategies", {"name": "ema_cross"}, StrategiesView),
    ("get_risk", {}, RiskView),
    ("get_market", {"pair": "BTC/USD"}, MarketView),
    ("get_events", {"limit": 10}, EventsView),
    ("diagnose_system", {}, DiagnosisView),
]


async def test_tools_are_listed_with_honest_hints(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == set(READ_TOOLS) | set(RESEARCH_TOOLS) | set(WRITE_TOOLS)
    # About 10 to 20 (hosts struggle with many more); cancel_order, close_position, backtest and optimize, asked for
    # by name, make 23.
    assert 10 <= len(tools) <= 23
    for name in READ_TOOLS:
        annotations = tools[name].annotations
        assert annotations is not None and annotations.read_only_hint is True, name
        assert tools[name].output_schema is not None, name
    for name in WRITE_TOOLS:
        annotations = tools[name].annotations
        assert annotations is not None and annotations.read_only_hint is False, name
    stop = tools["emergency_stop"].annotations
    assert stop is not None and stop.destructive_hint is True
    assert "confirmed" not in tools["emergency_stop"].input_schema["properties"]


@pytest.mark.parametrize(("name", "args", "view"), CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CALLS)])
async def test_every_read_tool_returns_its_view(
    facade: EngineFacade, mode: str, name: str, args: dict[str, object], view: type[BaseModel]
) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        data = ok(await client.call_tool(name, args))
    parsed = view.model_validate(data)
    if hasattr(parsed, "mode"):
        assert parsed.mode == "paper"


async def test_list_strategies_shows_schema_and_values(facade: EngineFacade) -> None:
    async with Client(build_server(facade)) as client:
        data = ok(await client.call_tool("list_strategies", {"name": "ema_cross"}))
    (strategy,) = StrategiesView.model_validate(data).strategies
    fast = next(p for p in strategy.params if p.name == "fast")
    assert fast.type == "int" and fast.value == "12" and fast.minimum is not None


async def test_diagnose_reports_progress(facade: EngineFacade, mode: str) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with Client(build_server(facade), mode=mode) as client:
        with anyio.fail_after(20):
            data = ok(await client.call_tool("diagnose_system", {}, progress_callback=progress))
    assert DiagnosisView.model_validate(data).overall in ("ok", "warn", "fail")
    assert seen, "no progress notification arrived"
    assert seen[-1][0] == seen[-1][1]


async def test_status_is_reachable_as_resource_and_tool_alike(facade: EngineFacade) -> None:
    async with Client(build_server(facade)) as client:
        tool = StatusView.model_validate(ok(await client.call_tool("get_status", {})))
        listed = await client.list_resources()
    assert tool.mode == "paper"
    assert "bot://status" in {str(r.uri) for r in listed.resources}


async def test_instructions_state_paper_mode(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        text = client.instructions
    assert text is not None and "PAPER" in text


def generated_titles(schema: object, where: str = "") -> list[str]:
    """Where a schema still carries a ``title`` annotation (a property merely named "title" does not count)."""
    found: list[str] = []
    if isinstance(schema, list):
        for i, item in enumerate(schema):
            found += generated_titles(item, f"{where}[{i}]")
    elif isinstance(schema, dict):
        for key, value in schema.items():
            if key == "title" and isinstance(value, str):
                found.append(where or "/")
            elif key in ("properties", "$defs") and isinstance(value, dict):
                for name, sub in value.items():
                    found += generated_titles(sub, f"{where}/{key}/{name}")
            else:
                found += generated_titles(value, f"{where}/{key}")
    return found


async def test_the_tool_list_carries_no_generated_titles_and_results_still_validate(facade: EngineFacade) -> None:
    async with Client(build_server(facade), mode="legacy") as client:
        tools = (await client.list_tools()).tools
        status = await client.call_tool("get_status", {})
    for tool in tools:
        assert generated_titles(tool.input_schema) == [], tool.name
        assert generated_titles(tool.output_schema or {}) == [], tool.name
        assert tool.title  # the tool's own human title stays
    assert not status.is_error and StatusView.model_validate(status.structured_content)
    # The check finds what it looks for, and spares a property named "title".
    assert generated_titles({"title": "X", "properties": {"title": {"type": "string"}}}) == ["/"]


def floats_in(answer: object, where: str = "") -> list[str]:
    """Where a JSON answer holds a float (money and ratios travel as exact strings, counts as integers)."""
    if isinstance(answer, float):
        return [where or "/"]
    if isinstance(answer, dict):
        return [f for key, value in answer.items() for f in floats_in(value, f"{where}/{key}")]
    if isinstance(answer, list):
        return [f for i, value in enumerate(answer) for f in floats_in(value, f"{where}[{i}]")]
    return []


async def test_no_read_tool_answers_with_a_float(facade: EngineFacade) -> None:
    async with Client(build_server(facade), mode="legacy") as client:
        answers = {name: ok(await client.call_tool(name, args)) for name, args, _view in CALLS}
        stop = ok(await client.call_tool("emergency_stop", {}))  # the first call: a confirmation token to use
    assert {name: floats_in(answer) for name, answer in answers.items() if floats_in(answer)} == {}
    assert floats_in(stop) == [] and isinstance(stop["expires_in_s"], int)
    status = answers["get_status"]
    done = Decimal(status["events_processed"]) / status["events_total"]  # a fraction, cut to 4 decimals
    assert isinstance(status["uptime_s"], int) and status["progress"] == str(
        done.quantize(Decimal("0.0001"), ROUND_DOWN)
    )
    assert floats_in({"a": [1, {"b": 0.5}]}) == ["/a[1]/b"]  # the check finds what it looks for
