"""stdio-to-HTTP bridge: a stdio-only host (Claude Desktop) talks to an engine serving MCP over HTTP.

The host starts ``trading-mcp attach --url ...``; we relay JSON-RPC messages unchanged between our
stdin/stdout and the HTTP endpoint, reusing the SDK's two transports: ``stdio_server`` on the host side and
``streamable_http_client`` (bearer token in the ``Authorization`` header) on the engine side. The transport
keeps the session id; :class:`HeaderStamper` adds the per-message headers a client session would
(``MCP-Protocol-Version``; for 2026-07-28 requests also ``Mcp-Method`` and ``Mcp-Name``), learning a
handshake's version from its response. Our stdout carries protocol messages only; diagnostics go to stderr.
"""

import logging
import os
import queue
import sys
import threading
from collections.abc import Mapping
from typing import Any

import anyio
import httpx2
from mcp.client.streamable_http import streamable_http_client
from mcp.server.stdio import stdio_server
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    NAME_BEARING_METHODS,
    encode_header_value,
)
from mcp.shared.message import ClientMessageMetadata, SessionMessage
from mcp_types import (
    CONNECTION_CLOSED,
    PROTOCOL_VERSION_META_KEY,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCRequest,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)

__all__ = ["REFUSED_WAIT_S", "HeaderStamper", "attach", "preflight", "refusal_reply", "relay"]

logger = logging.getLogger(__name__)

_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
REFUSED_WAIT_S = 10.0  # how long a bridge that cannot reach the engine waits for the host's first request


class HeaderStamper:
    """Computes the HTTP headers for each message from the host (sans-I/O: fed messages, returns dicts)."""

    def __init__(self) -> None:
        self.negotiated: str | None = None
        self._initialize_ids: set[str | int] = set()

    def outbound(self, message: JSONRPCMessage) -> dict[str, str]:
        """Headers for a message going to the server."""
        if not isinstance(message, JSONRPCRequest):
            return {MCP_PROTOCOL_VERSION_HEADER: self.negotiated} if self.negotiated else {}
        params: Mapping[str, Any] = message.params or {}
        meta = params.get("_meta")
        modern = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, Mapping) else None
        if message.method == "initialize":
            self._initialize_ids.add(message.id)
            return {}
        if isinstance(modern, str):
            headers = {MCP_PROTOCOL_VERSION_HEADER: modern, MCP_METHOD_HEADER: message.method}
            name_key = NAME_BEARING_METHODS.get(message.method)
            name = params.get(name_key) if name_key is not None else None
            if isinstance(name, str):
                headers[MCP_NAME_HEADER] = encode_header_value(name)
            return headers
        return {MCP_PROTOCOL_VERSION_HEADER: self.negotiated} if self.negotiated else {}

    def inbound(self, message: JSONRPCMessage) -> None:
        """Learn from a message coming back from the server (the handshake's negotiated version)."""
        if isinstance(message, JSONRPCResponse) and message.id in self._initialize_ids:
            self._initialize_ids.discard(message.id)
            version = (message.result or {}).get("protocolVersion")
            if isinstance(version, str):
                self.negotiated = version


async def relay(
    host_read: ReadStream[SessionMessage | Exception],
    host_write: WriteStream[SessionMessage],
    server_read: ReadStream[SessionMessage | Exception],
    server_write: WriteStream[SessionMessage],
) -> None:
    """Copy messages both ways until the host closes its side (or the server's side ends)."""
    stamper = HeaderStamper()

    async def host_to_server() -> None:
        async for item in host_read:
            if isinstance(item, Exception):
                logger.warning("dropped an unreadable message from the host: %s", type(item).__name__)
                continue
            headers = stamper.outbound(item.message)
            await server_write.send(SessionMessage(item.message, ClientMessageMetadata(headers=headers or None)))

    async def server_to_host() -> None:
        async for item in server_read:
            if isinstance(item, Exception):
                logger.warning("transport error from the server: %s", item)
                continue
            stamper.inbound(item.message)
            await host_write.send(SessionMessage(item.message))

    async with anyio.create_task_group() as tg:

        async def run_then_stop(pump: Any) -> None:
            try:
                await pump()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                logger.info("bridge stream closed")
            tg.cancel_scope.cancel()

        tg.start_soon(run_then_stop, host_to_server)
        tg.start_soon(run_then_stop, server_to_host)


async def preflight(http: httpx2.AsyncClient, url: str) -> str | None:
    """A problem the operator should know about before the host's first message, or ``None``.

    Sends a request the server refuses harmlessly without a session; only the HTTP status matters.
    """
    try:
        response = await http.post(
            url,
            json={"jsonrpc": "2.0", "id": "bridge-preflight", "method": "ping"},
            headers={"Accept": "application/json, text/event-stream"},
        )
    except httpx2.HTTPError as exc:
        return f"cannot reach {url}: {type(exc).__name__}; is the engine running with --mcp-http?"
    if response.status_code == 401:
        return f"{url} refused the bearer token (401): check TRADING_MCP_TOKEN or --token-file"
    if response.status_code == 421:
        return f"{url} refused the Host header (421): use the address the engine binds (127.0.0.1)"
    return None


def refusal_reply(line: bytes, problem: str) -> bytes | None:
    """The JSON-RPC error line answering one line from the host when the engine cannot be used, or ``None`` for a
    line that is not a request (a notification, or not JSON-RPC at all: a host gets no answer to those)."""
    try:
        message = jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValueError:
        return None
    if not isinstance(message, JSONRPCRequest):
        return None
    error = ErrorData(code=CONNECTION_CLOSED, message=f"trading-mcp attach: {problem}")
    reply = JSONRPCError(jsonrpc="2.0", id=message.id, error=error)
    return reply.model_dump_json(by_alias=True, exclude_none=True).encode() + b"\n"


def _read_lines(into: "queue.SimpleQueue[bytes]") -> None:
    # os.read on the descriptor, not sys.stdin: a daemon thread blocked inside the buffered reader would hold its
    # lock when the interpreter shuts down (a fatal error), a plain read holds nothing.
    pending = b""
    while block := os.read(sys.stdin.fileno(), 65536):
        *lines, pending = (pending + block).split(b"\n")
        for line in lines:
            into.put(line + b"\n")
    into.put(b"")  # the host closed stdin


async def _refuse_host(problem: str, wait_s: float) -> None:
    # stdin is read by a daemon thread, which does not keep the process alive: the SDK's stdio transport would
    # wait for stdin to close, and a host that keeps it open would keep the bridge alive. The waits for a line are
    # short, so no worker thread is left blocked when the bridge returns.
    lines: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    threading.Thread(target=_read_lines, args=(lines,), name="attach-stdin", daemon=True).start()
    deadline = anyio.current_time() + wait_s
    while (left := deadline - anyio.current_time()) > 0:
        try:
            line = await anyio.to_thread.run_sync(lines.get, True, min(left, 0.25))
        except queue.Empty:
            continue
        if not line:
            return
        reply = refusal_reply(line, problem)
        if reply is not None:
            sys.stdout.buffer.write(reply)
            sys.stdout.buffer.flush()
            return


async def attach(url: str, token: str, refused_wait_s: float = REFUSED_WAIT_S) -> int:
    """Bridge this process's stdin/stdout to the MCP server at ``url`` until the host closes stdin.

    When the engine cannot be used (unreachable, wrong token, wrong Host), nothing is relayed: the problem is one
    line on stderr and the JSON-RPC error answering the host's first request, and the bridge exits (status 1)
    after that answer, or after ``refused_wait_s`` seconds without a request, instead of outliving its host.

    Args:
        url: the engine's endpoint, e.g. ``http://127.0.0.1:8765/mcp``.
        token: the bearer token the engine's HTTP server requires.

    Returns:
        0 after relaying until the host closed stdin; 1 when the engine could not be used.
    """
    logger.info("bridging stdio to %s", url)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=_TIMEOUT) as http:
        problem = await preflight(http, url)
        if problem is None:
            await _bridge(http, url)
            return 0
    logger.error("trading-mcp attach: %s", problem)
    await _refuse_host(problem, refused_wait_s)
    return 1


async def _bridge(http: httpx2.AsyncClient, url: str) -> None:
    async with (
        streamable_http_client(url, http_client=http) as (server_read, server_write),
        stdio_server() as (host_read, host_write),
    ):
        await relay(host_read, host_write, server_read, server_write)
