"""cancel_order and close_position over the real SDK client, in both protocol eras: confirmed by a human like the
emergency stop (elicitation, else a token bound to the client and to every argument), refused in one sentence,
absent in read-only mode."""

import os
import re
import signal
import sys
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx2
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from fakes.mcp_harness import ok, rest_buy_orders, text_of
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ElicitRequestParams, ElicitResult

from engine.persistence import Store
from engine.runtime.facade import EngineFacade
from trading_mcp.server import build_server

pytestmark = pytest.mark.anyio


class Human:
    def __init__(self, action: Literal["accept", "decline", "cancel"], content: dict[str, Any] | None = None) -> None:
        self.action = action
        self.content = content
        self.asked: list[str] = []

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params.message)
        return ElicitResult(action=self.action, content=self.content)


async def open_ids(facade: EngineFacade) -> list[str]:
    return [o.client_id for o in (await facade.orders()).orders]


async def test_an_accepted_elicitation_cancels_that_order_only(facade: EngineFacade, mode: str) -> None:
    await rest_buy_orders(facade, 2)
    first, second = await open_ids(facade)
    human = Human("accept", {"confirm": True})
    async with Client(build_server(facade), mode=mode, elicitation_callback=human) as client:
        result = ok(await client.call_tool("cancel_order", {"order_id": second}))
    assert result["status"] == "done" and result["mode"] == "paper"
    assert [o["status"] for o in result["orders"]] == ["canceled"]
    assert human.asked == [f"CANCEL ORDER {second} (PAPER on paper). Confirm?"]
    assert await open_ids(facade) == [first]
    (event,) = await facade.events(kind="cancel_order")
    assert event.source.startswith("mcp:")


@pytest.mark.parametrize(("action", "content"), [("decline", None), ("accept", {"confirm": False})])
async def test_a_refused_elicitation_changes_nothing(
    facade: EngineFacade, mode: str, action: Literal["accept", "decline"], content: dict[str, Any] | None
) -> None:
    await rest_buy_orders(facade, 1)
    before = await open_ids(facade)
    positions = await facade.positions()
    async with Client(build_server(facade), mode=mode, elicitation_callback=Human(action, content)) as client:
        cancel = await client.call_tool("cancel_order", {"order_id": before[0]})
        close = await client.call_tool("close_position", {"pair": "BTC/USD"})
    assert cancel.is_error and close.is_error and "Nothing was done" in text_of(close)
    assert await open_ids(facade) == before and await facade.positions() == positions


async def test_without_elicitation_a_token_bound_to_the_arguments_closes_the_position(
    facade: EngineFacade, mode: str
) -> None:
    (position,) = (await facade.positions()).positions
    async with Client(build_server(facade), mode=mode) as client:
        first = ok(await client.call_tool("close_position", {"pair": "xbtusd"}))
        assert first["status"] == "confirmation_required" and first["orders"] == []
        assert "market sell" in first["message"] and await open_ids(facade) == []
        token = first["confirmation_token"]
        # A token is for exactly the arguments it was issued for: another strategy, another spelling, another tool.
        other = await client.call_tool(
            "close_position", {"pair": "xbtusd", "strategy": "ema_cross", "confirmation_token": token}
        )
        assert other.is_error and await open_ids(facade) == []
        second = ok(await client.call_tool("close_position", {"pair": "xbtusd"}))
        elsewhere = await client.call_tool(
            "cancel_order", {"order_id": "x", "confirmation_token": second["confirmation_token"]}
        )
        assert elsewhere.is_error and await open_ids(facade) == []
        third = ok(await client.call_tool("close_position", {"pair": "xbtusd"}))
        done = ok(
            await client.call_tool(
                "close_position", {"pair": "xbtusd", "confirmation_token": third["confirmation_token"]}
            )
        )
    (order,) = done["orders"]
    assert (order["side"], order["order_type"], order["qty"], order["strategy"]) == (
        "sell",
        "market",
        str(position.qty),
        position.strategy,
    )
    assert await open_ids(facade) == [order["client_id"]]


async def test_confirmed_refusals_are_one_sentence_and_change_nothing(facade: EngineFacade, mode: str) -> None:
    human = Human("accept", {"confirm": True})
    async with Client(build_server(facade), mode=mode, elicitation_callback=human) as client:
        unknown = await client.call_tool("cancel_order", {"order_id": "nope"})
        flat = await client.call_tool("close_position", {"pair": "ETH/USD"})
        extra = await client.call_tool("cancel_order", {"order_id": "nope", "force": True})
    assert unknown.is_error and "no order 'nope' is known" in text_of(unknown)
    assert flat.is_error and "no open position in ETH/USD" in text_of(flat)
    assert extra.is_error and "unknown argument 'force'" in text_of(extra)
    for result in (unknown, flat):
        text = text_of(result)
        assert "\n" not in text and text.endswith("Nothing was changed."), text
    assert await open_ids(facade) == [] and len((await facade.positions()).positions) == 1
    assert {e.payload["tool"] for e in await facade.events(kind="tool_refused")} == {"cancel_order", "close_position"}


async def test_the_client_cannot_close_while_the_operators_halt_stands(facade: EngineFacade, mode: str) -> None:
    await facade.emergency_stop(flatten=False, source="operator:cli", by="operator")
    human = Human("accept", {"confirm": True})
    async with Client(build_server(facade), mode=mode, elicitation_callback=human) as client:
        refused = await client.call_tool("close_position", {"pair": "BTC/USD"})
    assert refused.is_error and "halted by the operator" in text_of(refused)
    assert await open_ids(facade) == []


async def test_read_only_mode_offers_neither(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade, read_only=True), mode=mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert "get_orders" in names and not names & {"cancel_order", "close_position"}


REPO = Path(__file__).resolve().parents[2]
TOKEN = "cancel-close-gateway-token-0123456789"


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32", reason="POSIX processes")
async def test_the_http_gateway_serves_both_through_the_control_socket(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    command = [sys.executable, "-m", "trading_mcp", "run", "--speed", "max", "--quiet", "--db", str(db)]
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TRADING_MCP_TOKEN": TOKEN}
    process = await anyio.open_process([*command, "--mcp-http", "127.0.0.1:0"], env=environment, cwd=REPO)
    assert process.stderr is not None
    try:
        with anyio.fail_after(30):
            line = (await BufferedByteReceiveStream(process.stderr).receive_until(b"\n", 4096)).decode()
        url = re.search(r"http://127\.0\.0\.1:\d+/mcp", line)
        assert url is not None, line
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with anyio.fail_after(90):
            async with (
                httpx2.AsyncClient(headers=headers, timeout=30) as http,
                Client(streamable_http_client(url.group(0), http_client=http), mode="legacy") as client,
            ):
                while ok(await client.call_tool("get_status", {}))["progress"] != "1.0000":  # the whole sample replayed
                    await anyio.sleep(0.1)
                (position,) = ok(await client.call_tool("get_positions", {}))["positions"]
                first = ok(await client.call_tool("close_position", {"pair": "BTC/USD"}))
                token = first["confirmation_token"]
                done = ok(await client.call_tool("close_position", {"pair": "BTC/USD", "confirmation_token": token}))
                (sell,) = done["orders"]
                assert (sell["side"], sell["qty"]) == ("sell", position["qty"])
                again = ok(await client.call_tool("cancel_order", {"order_id": sell["client_id"]}))
                canceled = ok(
                    await client.call_tool(
                        "cancel_order",
                        {"order_id": sell["client_id"], "confirmation_token": again["confirmation_token"]},
                    )
                )
                assert [o["status"] for o in canceled["orders"]] == ["canceled"]
    finally:
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(30):
            await process.aclose()  # waits, and closes the pipes (left open, they warn when collected later)
    with Store.open_readonly(db) as store:
        kinds = {(e.kind, e.source.split(":")[0]) for e in store.tail_events(50)}
    assert {("close_position", "mcp"), ("cancel_order", "mcp")} <= kinds
