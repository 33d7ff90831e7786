"""``run --mcp-http`` serves MCP from a gateway process of its own (niced, so trading runs first), and ``serve`` on
a state file in use attaches to the engine running there instead of starting a second one."""

import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from fakes.mcp_harness import ok
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from engine.persistence import Store
from engine.runtime.state_lock import StateLock

pytestmark = [pytest.mark.anyio, pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX processes")]

REPO = Path(__file__).resolve().parents[2]
TOKEN = "gateway-test-token-0123456789"


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "TRADING_MCP_TOKEN": TOKEN}


def children_of(pid: int) -> list[tuple[int, str, int]]:
    """(pid, command line, niceness) of the processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append((int(entry.name), cmdline, int(fields[16])))
    return found


@asynccontextmanager
async def engine_process(db: Path, *extra: str) -> AsyncIterator[tuple[Process, BufferedByteReceiveStream]]:
    """``trading-mcp run`` on ``db`` (slow pace: it keeps running), stopped with SIGINT at the end."""
    command = [sys.executable, "-m", "trading_mcp", "run", "--speed", "5", "--quiet", "--db", str(db), *extra]
    process = await anyio.open_process(command, env=env(), cwd=REPO)
    assert process.stderr is not None
    try:
        yield process, BufferedByteReceiveStream(process.stderr)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        with anyio.fail_after(30):
            await process.aclose()  # waits, and closes the pipes (left open, they warn when collected later)


async def test_run_mcp_http_serves_from_a_niced_gateway_process(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    async with engine_process(db, "--mcp-http", "127.0.0.1:0") as (engine, stderr):
        with anyio.fail_after(30):
            line = (await stderr.receive_until(b"\n", 4096)).decode()
        url = re.search(r"http://127\.0\.0\.1:\d+/mcp", line)
        assert url is not None, line
        with anyio.fail_after(30):  # it lowers its priority once started: trading first on a busy machine
            while not (
                gateways := [c for c in children_of(engine.pid) if "trading_mcp.gateway" in c[1] and c[2] == 10]
            ):
                await anyio.sleep(0.05)
        [(gateway, cmdline, _niceness)] = gateways
        assert TOKEN not in cmdline  # the token travels in the environment, not in argv
        owner = StateLock.holder(db)
        assert owner is not None and owner.mcp_url == url.group(0)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        for mode in ("auto", "legacy"):
            with anyio.fail_after(60):
                async with (
                    httpx2.AsyncClient(headers=headers, timeout=30) as http,
                    Client(streamable_http_client(url.group(0), http_client=http), mode=mode) as client,
                ):
                    status = ok(await client.call_tool("get_status", {}))
                    assert status["mode"] == "paper" and status["events_processed"] >= 0
                    first = ok(await client.call_tool("emergency_stop", {"reason": "gateway test"}))
                    token = first["confirmation_token"]
                    stopped = ok(
                        await client.call_tool(
                            "emergency_stop", {"reason": "gateway test", "confirmation_token": token}
                        )
                    )
                    assert stopped["stop"]["trading_state"] == "halted"
        engine.send_signal(signal.SIGINT)
        with anyio.fail_after(30):
            assert await engine.wait() == 0
    with Store.open_readonly(db) as store:
        assert store.get_kv("trading_state") == "halted"  # the gateway's stop reached the engine
    assert not Path(f"/proc/{gateway}").exists() or "trading_mcp.gateway" not in Path(
        f"/proc/{gateway}/cmdline"
    ).read_bytes().decode(errors="replace")


async def test_serve_on_a_state_in_use_attaches_to_the_running_engine(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    async with engine_process(db) as (engine, _stderr):
        with anyio.fail_after(30):
            while (owner := StateLock.holder(db)) is None or owner.control is None:
                await anyio.sleep(0.05)
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "trading_mcp", "serve", "--db", str(db), "--speed", "max"],
            env={"PYTHONPATH": str(REPO)},
            cwd=REPO,
        )
        with anyio.fail_after(60):
            async with Client(params) as client:
                status = ok(await client.call_tool("get_status", {}))
                paused = ok(await client.call_tool("pause_trading", {"reason": "attached test"}))
        assert status["data_source"].startswith("replay kraken_xbtusdt_1m_ohlc.json")
        assert paused["trading_state"] == "paused"
        with Store.open_readonly(db) as store:
            assert store.get_kv("trading_state") == "paused"  # the running engine paused, not a second one
        assert engine.returncode is None
