"""``trading-mcp serve`` as a subprocess: both protocol eras over stdio, and nothing but protocol on stdout."""

import json
import os
import sys
from pathlib import Path

import anyio
import pytest
from fakes.mcp_harness import ok
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
FAKE_KEY = "kraken-key-that-must-never-show-1234"
FAKE_SECRET = "kraken-secret-that-must-never-show-5678"


def serve_params(db: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "trading_mcp", "serve", "--db", str(db), "--speed", "max"],
        env={
            "PYTHONPATH": str(REPO),
            "KRAKEN_API_KEY": FAKE_KEY,
            "KRAKEN_API_SECRET": FAKE_SECRET,
            "PYTHONWARNINGS": "error::DeprecationWarning:trading_mcp",
        },
        cwd=REPO,
    )


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_serve_over_stdio_on_both_protocol_versions(tmp_path: Path, mode: str) -> None:
    with anyio.fail_after(60):
        async with Client(serve_params(tmp_path / "engine.db"), mode=mode) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            status = ok(await client.call_tool("get_status", {}))
            preview = ok(
                await client.call_tool("tune_strategy", {"name": "ema_cross", "params": {"slow": 30}, "preview": True})
            )
            events = await client.read_resource("bot://events")
    assert {"get_status", "emergency_stop"} <= tools
    assert status["mode"] == "paper"
    assert preview["applied"] is False
    assert FAKE_KEY not in str(events) and FAKE_SECRET not in str(events)


async def test_stdout_carries_only_protocol_messages(tmp_path: Path) -> None:
    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get_status", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "diagnose_system", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 4, "method": "resources/read", "params": {"uri": "bot://balance"}},
    ]
    params = serve_params(tmp_path / "engine.db")
    env = {**os.environ, **(params.env or {})}
    lines: list[str] = []
    with anyio.fail_after(60):
        async with await anyio.open_process([params.command, *params.args], env=env, cwd=REPO) as process:
            assert process.stdin is not None and process.stdout is not None and process.stderr is not None
            for request in requests:
                await process.stdin.send((json.dumps(request) + "\n").encode())
            buffer = b""
            async for chunk in process.stdout:
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    lines.append(line.decode())
                if {1, 2, 3, 4} <= {json.loads(line).get("id") for line in lines}:
                    break
            await process.stdin.aclose()
            stderr = b"".join([chunk async for chunk in process.stderr]).decode()
            assert await process.wait() == 0
    messages = [json.loads(line) for line in lines]  # every stdout line is JSON...
    assert all(m.get("jsonrpc") == "2.0" for m in messages)  # ...and JSON-RPC
    assert sorted(m["id"] for m in messages if "id" in m) == [1, 2, 3, 4]
    assert all("error" not in m for m in messages)
    assert FAKE_KEY not in stderr and FAKE_SECRET not in stderr
    assert FAKE_KEY not in "\n".join(lines) and FAKE_SECRET not in "\n".join(lines)
