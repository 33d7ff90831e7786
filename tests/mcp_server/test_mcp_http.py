"""Streamable HTTP on a real uvicorn (loopback, free port): bearer token, Host checking, both protocol eras."""

import stat
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from fakes.mcp_harness import ok, running_engine
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import ResourceUpdatedNotification

from engine.runtime.facade import EngineFacade
from trading_mcp.http import TOKEN_FILE, resolve_token, serve_http

pytestmark = pytest.mark.anyio

TOKEN = "test-token-0123456789abcdef"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@asynccontextmanager
async def http_server(facade: EngineFacade, *, read_only: bool = False) -> AsyncIterator[str]:
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(20):
            url: str = await tg.start(
                lambda task_status: serve_http(
                    facade, "127.0.0.1", 0, TOKEN, read_only=read_only, task_status=task_status
                )
            )
        yield url
        tg.cancel_scope.cancel()


@asynccontextmanager
async def authed_client(url: str, mode: str = "auto", **kwargs: object) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode, **kwargs) as client:  # type: ignore[arg-type]
            yield client


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_with_the_token_both_protocol_versions_work(facade: EngineFacade, mode: str) -> None:
    async with http_server(facade) as url:
        with anyio.fail_after(30):
            async with authed_client(url, mode=mode) as client:
                status = ok(await client.call_tool("get_status", {}))
                balance = await client.read_resource("bot://balance")
                paused = ok(await client.call_tool("pause_trading", {"reason": "http test"}))
    assert status["mode"] == "paper" and balance.contents
    assert paused["trading_state"] == "paused"
    (event,) = await facade.events(kind="pause_trading")
    assert event.source == "mcp:mcp"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": TOKEN}])
async def test_without_the_right_token_the_answer_is_401(facade: EngineFacade, headers: dict[str, str]) -> None:
    async with http_server(facade) as url, httpx2.AsyncClient() as http:
        with anyio.fail_after(20):
            response = await http.post(url, json=INIT, headers={**ACCEPT, **headers})
            metadata = await http.get(url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in response.text
    assert metadata.status_code == 200 and metadata.json()["resource"] == url


async def test_a_foreign_host_header_gets_421(facade: EngineFacade) -> None:
    async with http_server(facade) as url, httpx2.AsyncClient() as http:
        with anyio.fail_after(20):
            good = await http.post(url, json=INIT, headers={**ACCEPT, "Authorization": f"Bearer {TOKEN}"})
            bad = await http.post(
                url, json=INIT, headers={**ACCEPT, "Authorization": f"Bearer {TOKEN}", "Host": "evil.example:80"}
            )
    assert good.status_code == 200
    assert bad.status_code == 421


async def test_read_only_http_server_has_no_write_tools(facade: EngineFacade) -> None:
    async with http_server(facade, read_only=True) as url:
        with anyio.fail_after(30):
            async with authed_client(url) as client:
                names = {t.name for t in (await client.list_tools()).tools}
    assert "get_status" in names and "emergency_stop" not in names


async def test_legacy_subscriber_over_http_hears_updates(facade: EngineFacade) -> None:
    seen: list[str] = []
    arrived = anyio.Event()

    async def handler(message: IncomingMessage) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            seen.append(message.params.uri)
            arrived.set()

    async with http_server(facade) as url:
        with anyio.fail_after(30):
            async with authed_client(url, mode="legacy", message_handler=handler) as client:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", MCPDeprecationWarning)
                    await client.session.subscribe_resource("bot://status")
                ok(await client.call_tool("pause_trading", {}))
                await arrived.wait()
    assert seen[0] == "bot://status"


async def test_cancelling_serve_http_frees_the_port() -> None:
    async with running_engine(max_events=5) as (_engine, facade):
        async with http_server(facade) as url:
            pass
        async with httpx2.AsyncClient() as http:
            with anyio.fail_after(20), pytest.raises(httpx2.ConnectError):
                await http.post(url, json=INIT, headers=ACCEPT)


def test_token_from_the_environment_wins(tmp_path: Path) -> None:
    token, where = resolve_token(tmp_path, env={"TRADING_MCP_TOKEN": "from-env-token"})
    assert token == "from-env-token" and "TRADING_MCP_TOKEN" in where and token not in where
    assert not (tmp_path / TOKEN_FILE).exists()
    other, _ = resolve_token(tmp_path, env_var="MY_TOKEN", env={"MY_TOKEN": "mine"})
    assert other == "mine"


def test_token_is_generated_once_into_a_0600_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    token, where = resolve_token(data_dir, env={})
    path = data_dir / TOKEN_FILE
    assert len(token) >= 40 and token not in where and str(path) in where
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, _ = resolve_token(data_dir, env={})
    assert again == token


def test_a_loosened_token_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / TOKEN_FILE
    path.write_text("abc-token\n")
    path.chmod(0o644)
    token, _ = resolve_token(tmp_path, env={})
    assert token == "abc-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_a_departed_subscriber_does_not_break_notifications_for_others(facade: EngineFacade) -> None:
    seen: list[str] = []
    arrived = anyio.Event()

    async def handler(message: IncomingMessage) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            seen.append(message.params.uri)
            arrived.set()

    async with http_server(facade) as url:
        with anyio.fail_after(30):
            async with authed_client(url, mode="legacy") as gone:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", MCPDeprecationWarning)
                    await gone.session.subscribe_resource("bot://status")
            async with authed_client(url, mode="legacy", message_handler=handler) as staying:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", MCPDeprecationWarning)
                    await staying.session.subscribe_resource("bot://status")
                ok(await staying.call_tool("pause_trading", {}))
                await arrived.wait()
                ok(await staying.call_tool("resume_trading", {}))
                status = ok(await staying.call_tool("get_status", {}))
    assert seen[0] == "bot://status" and status["trading_state"] == "active"
