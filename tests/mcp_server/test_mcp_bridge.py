"""``trading-mcp attach``: a stdio host reaches a running engine's HTTP endpoint through the bridge."""

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from fakes.mcp_harness import ok
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp_types import (
    PROTOCOL_VERSION_META_KEY,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
)

from engine.runtime.facade import EngineFacade
from trading_mcp.bridge import HeaderStamper, preflight
from trading_mcp.http import serve_http

REPO = Path(__file__).resolve().parents[2]
TOKEN = "bridge-token-0123456789abcdef"


@asynccontextmanager
async def http_server(facade: EngineFacade) -> AsyncIterator[str]:
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(20):
            url: str = await tg.start(
                lambda task_status: serve_http(facade, "127.0.0.1", 0, TOKEN, task_status=task_status)
            )
        yield url
        tg.cancel_scope.cancel()


def attach_params(url: str, token: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "trading_mcp", "attach", "--url", url],
        env={"PYTHONPATH": str(REPO), "TRADING_MCP_TOKEN": token},
        cwd=REPO,
    )


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_stdio_host_drives_the_http_engine_through_the_bridge(facade: EngineFacade, mode: str) -> None:
    async with http_server(facade) as url:
        with anyio.fail_after(60):
            async with Client(attach_params(url, TOKEN), mode=mode) as client:
                tools = {t.name for t in (await client.list_tools()).tools}
                status = ok(await client.call_tool("get_status", {}))
                strategy = await client.read_resource("bot://strategies/ema_cross")
                paused = ok(await client.call_tool("pause_trading", {"reason": "via bridge"}))
    assert "emergency_stop" in tools and status["mode"] == "paper" and strategy.contents
    assert paused["trading_state"] == "paused"
    assert (await facade.status()).trading_state == "paused"


@pytest.mark.anyio
async def test_a_wrong_token_is_an_error_not_a_hang(facade: EngineFacade) -> None:
    async with http_server(facade) as url:
        with anyio.fail_after(60), pytest.raises(ExceptionGroup) as caught:
            async with Client(attach_params(url, "wrong-token"), mode="legacy") as client:
                await client.list_tools()
    # The SDK's own client shows the host the bridge's answer to its initialize: what is wrong and what to check.
    assert caught.group_contains(
        MCPError, match=r"refused the bearer token \(401\): check TRADING_MCP_TOKEN", depth=None
    )


def test_stamper_mirrors_modern_envelopes_into_headers() -> None:
    stamper = HeaderStamper()
    request = JSONRPCRequest(
        jsonrpc="2.0",
        id=7,
        method="tools/call",
        params={"name": "get_status", "arguments": {}, "_meta": {PROTOCOL_VERSION_META_KEY: "2026-07-28"}},
    )
    assert stamper.outbound(request) == {
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "get_status",
    }


def test_stamper_learns_the_handshake_version() -> None:
    stamper = HeaderStamper()
    init = JSONRPCRequest(jsonrpc="2.0", id=1, method="initialize", params={"protocolVersion": "2025-11-25"})
    assert stamper.outbound(init) == {}
    stamper.inbound(JSONRPCResponse(jsonrpc="2.0", id=1, result={"protocolVersion": "2025-11-25"}))
    later = JSONRPCRequest(jsonrpc="2.0", id=2, method="tools/list", params={})
    note = JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized")
    assert stamper.outbound(later) == {"mcp-protocol-version": "2025-11-25"}
    assert stamper.outbound(note) == {"mcp-protocol-version": "2025-11-25"}


@pytest.mark.anyio
async def test_preflight_names_the_problem(facade: EngineFacade) -> None:
    async with http_server(facade) as url:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as good:
            assert await preflight(good, url) is None
        async with httpx2.AsyncClient(headers={"Authorization": "Bearer nope"}) as bad:
            assert "401" in (await preflight(bad, url) or "")
    async with httpx2.AsyncClient() as http:
        assert "cannot reach" in (await preflight(http, url) or "")


async def refused_attach(url: str, token: str, first_line: bytes | None) -> tuple[int, list[dict[str, Any]], str]:
    """Run ``trading-mcp attach`` as a host would, send it ``first_line`` (or nothing), and return its exit status,
    the JSON-RPC messages it wrote and its stderr."""
    env = {"PYTHONPATH": str(REPO), "TRADING_MCP_TOKEN": token, "PATH": os.environ.get("PATH", "")}
    argv = [sys.executable, "-m", "trading_mcp", "attach", "--url", url]
    with anyio.fail_after(60):
        async with await anyio.open_process(argv, env=env, cwd=REPO) as process:
            assert process.stdin is not None and process.stdout is not None and process.stderr is not None
            if first_line is not None:
                await process.stdin.send(first_line + b"\n")
            out = b"".join([chunk async for chunk in process.stdout])
            err = b"".join([chunk async for chunk in process.stderr])
            status = await process.wait()
    return status, [json.loads(line) for line in out.splitlines() if line.strip()], err.decode()


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 7,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "host", "version": "1"}},
}


@pytest.mark.anyio
async def test_attach_to_no_engine_answers_the_host_with_an_error_and_exits(facade: EngineFacade) -> None:
    async with http_server(facade) as url:
        pass  # the port is free again: nothing listens there
    status, messages, err = await refused_attach(url, TOKEN, json.dumps(INITIALIZE).encode())
    assert status == 1
    assert len(messages) == 1 and messages[0]["id"] == 7 and messages[0]["error"]["code"] == -32000
    assert "cannot reach" in messages[0]["error"]["message"] and "--mcp-http" in messages[0]["error"]["message"]
    assert "Traceback" not in err and err.strip().splitlines() == [
        f"trading-mcp attach: {err.split(': ', 1)[1].strip()}"
    ]


@pytest.mark.anyio
async def test_attach_with_a_wrong_token_says_so_to_the_host_and_exits(facade: EngineFacade) -> None:
    async with http_server(facade) as url:
        status, messages, err = await refused_attach(url, "wrong-token-0123456789", json.dumps(INITIALIZE).encode())
        # A host that sends nothing and keeps stdin open is not waited for forever either (REFUSED_WAIT_S).
        silent, nothing, _ = await refused_attach(url, "wrong-token-0123456789", None)
    assert status == 1 and "401" in messages[0]["error"]["message"] and "TRADING_MCP_TOKEN" in err
    assert "wrong-token" not in err + json.dumps(messages)  # the token is never shown
    assert "Traceback" not in err
    assert (silent, nothing) == (1, [])
