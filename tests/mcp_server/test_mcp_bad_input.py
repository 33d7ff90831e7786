"""Bad input gets a clear tool error, changes nothing, and (for write tools) is written to the event log."""

from typing import Any

import pytest
from fakes.mcp_harness import snapshot, text_of
from mcp import Client

from engine.runtime.facade import EngineFacade
from trading_mcp.server import build_server
from trading_mcp.tools_write import WRITE_TOOLS

pytestmark = pytest.mark.anyio

BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("tune_strategy", {"name": "nope", "params": {"fast": 10}}, "unknown strategy"),
    ("tune_strategy", {"name": "ema_cross", "params": {"turbo": 1}}, "turbo"),
    ("tune_strategy", {"name": "ema_cross", "params": {"fast": 0}}, "minimum"),
    ("tune_strategy", {"name": "ema_cross", "params": {"fast": 10**9}}, "maximum"),
    ("tune_strategy", {"name": "ema_cross", "params": {"fast": "abc"}}, "fast"),
    ("tune_strategy", {"name": "ema_cross", "params": {"fast": True}}, "fast"),
    ("tune_strategy", {"name": "ema_cross", "params": {"fast": 10.5}}, "whole"),
    ("tune_strategy", {"name": "ema_cross", "params": {"fast": float("nan")}}, "fast"),
    ("tune_strategy", {"name": "ema_cross", "params": {"fast": "NaN"}}, "plain decimal"),
    ("tune_strategy", {"name": "ema_cross", "params": {"fast": "Infinity"}}, "plain decimal"),
    ("tune_strategy", {"name": "ema_cross", "params": {}}, "no parameters"),
    ("tune_strategy", {"name": "ema_cross", "params": {f"p{i}": 1 for i in range(40)}}, "too many"),
    ("tune_strategy", {"name": "ema_cross", "params": {"fast": 10}, "preview": "maybe"}, "preview"),
    ("tune_strategy", {"name": "x" * 500, "params": {"fast": 10}}, "name"),
    ("enable_strategy", {"name": "nope"}, "unknown strategy"),
    ("disable_strategy", {"name": ""}, "name"),
    ("set_risk_limits", {"changes": {"max_order_qty": -1}}, "max_order_qty"),
    ("set_risk_limits", {"changes": {"max_order_qty": 0}}, "max_order_qty"),
    ("set_risk_limits", {"changes": {"max_order_qty": "1e30"}}, "plain decimal"),
    ("set_risk_limits", {"changes": {"max_order_notional": 1e300}}, "cap"),
    ("set_risk_limits", {"changes": {"max_order_qty": "NaN"}}, "max_order_qty"),
    ("set_risk_limits", {"changes": {"max_open_orders": 2.5}}, "max_open_orders"),
    ("set_risk_limits", {"changes": {"leverage": 10}}, "leverage"),
    ("set_risk_limits", {"changes": "max_order_qty=1"}, "changes"),
    ("emergency_stop", {"confirmation_token": "guessed-token"}, "unknown"),
    ("emergency_stop", {"flatten": "sometimes"}, "flatten"),
    ("resume_trading", {}, "already active"),
    ("get_market", {"pair": "DOGEEUR"}, "unknown pair"),
    ("get_performance", {"strategy": "nope"}, "unknown strategy"),
    ("get_orders", {"limit": 0}, "limit"),
    ("get_trades", {"limit": 10**6}, "limit"),
    ("list_strategies", {"name": "nope"}, "unknown strategy"),
    ("no_such_tool", {}, "no_such_tool"),
]


@pytest.mark.parametrize(("tool", "args", "says"), BAD_CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_CALLS)])
async def test_bad_input_is_refused_and_changes_nothing(
    facade: EngineFacade, mode: str, tool: str, args: dict[str, Any], says: str
) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        before = await snapshot(client)
        result = await client.call_tool(tool, args)
        after = await snapshot(client)
    assert result.is_error
    assert says.lower() in text_of(result).lower()
    assert after == before
    refusals = await facade.events(kind="tool_refused")
    if tool in WRITE_TOOLS:
        assert refusals and refusals[-1].payload["tool"] == tool
        assert refusals[-1].source == "mcp:mcp"
    else:
        assert refusals == []


async def test_refusal_log_never_holds_the_confirmation_token(facade: EngineFacade) -> None:
    async with Client(build_server(facade)) as client:
        first = await client.call_tool("emergency_stop", {})
        token = first.structured_content["confirmation_token"] if first.structured_content else None
        assert token
        await client.call_tool("emergency_stop", {"confirmation_token": token, "flatten": True})
    (refusal,) = await facade.events(kind="tool_refused")
    assert token not in str(refusal.payload)
    assert "different arguments" in str(refusal.payload["error"])
    assert (await facade.status()).trading_state == "active"
