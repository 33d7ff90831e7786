"""State-changing tools on both protocol versions: they change the engine, say paper or live, and are audited."""

from typing import Any

import pytest
from fakes.mcp_harness import ok, snapshot, text_of
from mcp import Client
from mcp_types import Implementation

from engine.runtime.facade import EngineFacade
from trading_mcp.server import build_server
from trading_mcp.tools_read import READ_TOOLS
from trading_mcp.tools_research import RESEARCH_TOOLS

pytestmark = pytest.mark.anyio

ME = Implementation(name="claude-test", version="1.0")


async def test_tune_preview_changes_nothing_then_apply_records_before_and_after(
    facade: EngineFacade, mode: str
) -> None:
    async with Client(build_server(facade), mode=mode, client_info=ME) as client:
        before = await snapshot(client)
        preview = ok(
            await client.call_tool("tune_strategy", {"name": "ema_cross", "params": {"fast": 10}, "preview": True})
        )
        assert preview["applied"] is False and preview["mode"] == "paper"
        assert preview["changes"] == [{"name": "fast", "before": "12", "after": "10"}]
        assert await snapshot(client) == before

        applied = ok(await client.call_tool("tune_strategy", {"name": "ema_cross", "params": {"fast": 10}}))
        assert applied["applied"] is True and applied["version"] == preview["version"] + 1
        strategy = ok(await client.call_tool("list_strategies", {"name": "ema_cross"}))["strategies"][0]
        assert next(p for p in strategy["params"] if p["name"] == "fast")["value"] == "10"

    events = await facade.events(kind="tune_strategy")
    assert events[-1].source == "mcp:claude-test"
    assert events[-1].payload["args"] == {"strategy": "ema_cross", "params": {"fast": 10}}


async def test_decimal_parameters_arrive_as_decimals(facade: EngineFacade) -> None:
    async with Client(build_server(facade)) as client:
        strategy = ok(await client.call_tool("list_strategies", {"name": "mean_reversion"}))["strategies"][0]
        decimal_param = next((p for p in strategy["params"] if p["type"] == "decimal"), None)
        if decimal_param is None:
            pytest.skip("mean_reversion declares no decimal parameter")
        low = decimal_param["minimum"] or "0"
        result = ok(
            await client.call_tool(
                "tune_strategy", {"name": "mean_reversion", "params": {decimal_param["name"]: float(low) + 0.1}}
            )
        )
    assert result["applied"] is True or result["changes"] == []


async def test_disable_and_enable_a_strategy(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode, client_info=ME) as client:
        disabled = ok(await client.call_tool("disable_strategy", {"name": "mean_reversion"}))
        assert disabled["mode"] == "paper" and disabled["strategy"]["enabled"] is False
        status = ok(await client.call_tool("get_status", {}))
        assert status["strategies_running"] == ["ema_cross"]
        enabled = ok(await client.call_tool("enable_strategy", {"name": "mean_reversion"}))
        assert enabled["mode"] == "paper" and enabled["strategy"]["enabled"] is True
    kinds = [e.kind for e in await facade.events(limit=20)]
    assert "disable_strategy" in kinds and "enable_strategy" in kinds


async def test_pause_and_resume(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode, client_info=ME) as client:
        paused = ok(await client.call_tool("pause_trading", {"reason": "lunch"}))
        assert paused == {"mode": "paper", "trading_state": "paused", "halt_reason": "lunch"}
        assert ok(await client.call_tool("get_status", {}))["trading_state"] == "paused"
        resumed = ok(await client.call_tool("resume_trading", {}))
        assert resumed["trading_state"] == "active" and resumed["mode"] == "paper"
        again = await client.call_tool("resume_trading", {})
    assert again.is_error and "already active" in text_of(again)
    (pause_event,) = await facade.events(kind="pause_trading")
    assert pause_event.source == "mcp:claude-test" and pause_event.payload["args"] == {"reason": "lunch"}


async def test_risk_limits_tighten_freely_and_loosen_only_to_the_cap(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        tightened = ok(await client.call_tool("set_risk_limits", {"changes": {"max_order_qty": "0.5"}}))
        limits = {limit["name"]: limit for limit in tightened["limits"]}
        assert limits["max_order_qty"]["value"] == "0.5" and tightened["mode"] == "paper"
        loosened = ok(await client.call_tool("set_risk_limits", {"changes": {"max_order_qty": 5}}))
        assert {x["name"]: x["value"] for x in loosened["limits"]}["max_order_qty"] == "5"
        refused = await client.call_tool("set_risk_limits", {"changes": {"max_order_qty": 5.5}})
    assert refused.is_error and "cap" in text_of(refused)


async def test_read_only_mode_registers_no_write_tool(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade, read_only=True), mode=mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        refused = await client.call_tool("pause_trading", {})
        assert client.instructions is not None and "READ-ONLY" in client.instructions
    assert names == set(READ_TOOLS) | set(RESEARCH_TOOLS)  # a backtest changes nothing in the account
    assert refused.is_error
    assert (await facade.status()).trading_state == "active"
    (event,) = await facade.events(kind="tool_refused")
    assert event.payload["tool"] == "pause_trading" and event.payload["read_only"] is True


async def test_every_state_changing_result_states_the_mode(facade: EngineFacade, mode: str) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("tune_strategy", {"name": "ema_cross", "params": {"slow": 30}}),
        ("disable_strategy", {"name": "ema_cross"}),
        ("enable_strategy", {"name": "ema_cross"}),
        ("pause_trading", {}),
        ("resume_trading", {}),
        ("set_risk_limits", {"changes": {"max_open_orders": 10}}),
        ("emergency_stop", {}),
    ]
    async with Client(build_server(facade), mode=mode) as client:
        results = {name: ok(await client.call_tool(name, args)) for name, args in calls}
    assert {name: result["mode"] for name, result in results.items()} == {name: "paper" for name, _ in calls}
