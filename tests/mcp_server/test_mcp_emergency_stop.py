"""emergency_stop: confirmed by elicitation where the client supports it, else by a single-use, short-lived token."""

from typing import Any, Literal

import pytest
from fakes.mcp_harness import ok, rest_buy_orders, text_of
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp_types import ElicitRequestParams, ElicitResult, Implementation

from engine.runtime.facade import EngineFacade
from trading_mcp.confirm import ConfirmationStore
from trading_mcp.server import build_server

pytestmark = pytest.mark.anyio

ME = Implementation(name="desk", version="1")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Human:
    """An elicitation callback that always gives the same answer and remembers what it was asked."""

    def __init__(self, action: Literal["accept", "decline", "cancel"], content: dict[str, Any] | None = None) -> None:
        self.action = action
        self.content = content
        self.asked: list[str] = []

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params.message)
        return ElicitResult(action=self.action, content=self.content)


def answering(action: Literal["accept", "decline", "cancel"], content: dict[str, Any] | None = None) -> Human:
    return Human(action, content)


async def test_elicitation_accepted_cancels_every_order_and_halts(facade: EngineFacade, mode: str) -> None:
    await rest_buy_orders(facade, 3)
    assert (await facade.status()).open_orders == 3
    callback = answering("accept", {"confirm": True})
    async with Client(build_server(facade), mode=mode, elicitation_callback=callback, client_info=ME) as client:
        result = ok(await client.call_tool("emergency_stop", {"reason": "drill"}))
        status = ok(await client.call_tool("get_status", {}))
    assert len(callback.asked) == 1 and "PAPER" in callback.asked[0]
    assert result["status"] == "stopped" and result["mode"] == "paper"
    stop = result["stop"]
    assert stop["canceled_orders"] == 3 and stop["open_orders_after"] == 0
    assert stop["trading_state"] == "halted" and stop["already_halted"] is False
    assert status["trading_state"] == "halted" and status["open_orders"] == 0
    (event,) = await facade.events(kind="emergency_stop")
    assert event.source == "mcp:desk" and event.payload["args"] == {"flatten": False, "reason": "drill"}


async def test_elicitation_with_flatten_sends_a_closing_order_per_position(facade: EngineFacade, mode: str) -> None:
    open_positions = [p for p in (await facade.positions()).positions if p.qty > 0]
    assert open_positions, "the warm-up replay should have left a position open"
    callback = answering("accept", {"confirm": True})
    async with Client(build_server(facade), mode=mode, elicitation_callback=callback) as client:
        result = ok(await client.call_tool("emergency_stop", {"flatten": True}))
    stop = result["stop"]
    assert stop["trading_state"] == "halted"
    assert len(stop["flatten_orders"]) == len(open_positions)
    assert "close every position" in callback.asked[0]


@pytest.mark.parametrize(("action", "content"), [("decline", None), ("cancel", None), ("accept", {"confirm": False})])
async def test_elicitation_refused_changes_nothing(
    facade: EngineFacade, mode: str, action: Literal["accept", "decline", "cancel"], content: dict[str, Any] | None
) -> None:
    await rest_buy_orders(facade, 2)
    async with Client(build_server(facade), mode=mode, elicitation_callback=answering(action, content)) as client:
        result = await client.call_tool("emergency_stop", {})
    assert result.is_error and "Nothing was done" in text_of(result)
    status = await facade.status()
    assert status.trading_state == "active" and status.open_orders == 2
    assert await facade.events(kind="emergency_stop") == []
    (refusal,) = await facade.events(kind="tool_refused")
    assert refusal.payload["tool"] == "emergency_stop"


async def test_without_elicitation_a_token_confirms_the_second_call(facade: EngineFacade, mode: str) -> None:
    await rest_buy_orders(facade, 2)
    async with Client(build_server(facade), mode=mode) as client:
        first = ok(await client.call_tool("emergency_stop", {"flatten": False}))
        assert first["status"] == "confirmation_required" and first["stop"] is None
        assert "cancel every open order" in first["message"] and first["mode"] == "paper"
        assert (await facade.status()).trading_state == "active"
        assert (await facade.status()).open_orders == 2
        second = ok(
            await client.call_tool(
                "emergency_stop", {"flatten": False, "confirmation_token": first["confirmation_token"]}
            )
        )
    assert second["status"] == "stopped"
    assert second["stop"]["canceled_orders"] == 2 and second["stop"]["open_orders_after"] == 0
    assert (await facade.status()).trading_state == "halted"


async def test_a_used_token_is_refused_and_nothing_happens(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        token = ok(await client.call_tool("emergency_stop", {}))["confirmation_token"]
        ok(await client.call_tool("emergency_stop", {"confirmation_token": token}))
        ok(await client.call_tool("resume_trading", {}))
        await rest_buy_orders(facade, 1)
        reused = await client.call_tool("emergency_stop", {"confirmation_token": token})
    assert reused.is_error and "already used" in text_of(reused)
    status = await facade.status()
    assert status.trading_state == "active" and status.open_orders == 1


async def test_an_expired_token_is_refused_and_nothing_happens(facade: EngineFacade, mode: str) -> None:
    clock = FakeClock()
    store = ConfirmationStore(ttl_s=30, clock=clock)
    async with Client(build_server(facade, confirmations=store), mode=mode) as client:
        token = ok(await client.call_tool("emergency_stop", {}))["confirmation_token"]
        clock.now += 30
        expired = await client.call_tool("emergency_stop", {"confirmation_token": token})
    assert expired.is_error and "expired" in text_of(expired)
    assert (await facade.status()).trading_state == "active"


async def test_stop_is_idempotent_and_reports_state_re_read(facade: EngineFacade, mode: str) -> None:
    callback = answering("accept", {"confirm": True})
    async with Client(build_server(facade), mode=mode, elicitation_callback=callback) as client:
        first = ok(await client.call_tool("emergency_stop", {}))
        second = ok(await client.call_tool("emergency_stop", {}))
        paused = await client.call_tool("pause_trading", {})
        resumed = ok(await client.call_tool("resume_trading", {}))
    assert first["stop"]["already_halted"] is False
    assert second["stop"]["already_halted"] is True and second["stop"]["trading_state"] == "halted"
    assert paused.is_error and "halted" in text_of(paused)
    assert resumed["trading_state"] == "active"
