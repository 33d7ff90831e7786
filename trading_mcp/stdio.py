"""MCP over stdio: the host starts us and speaks JSON-RPC on our stdin and stdout.

Nothing but protocol messages may reach stdout. The SDK's ``stdio_server`` serves the wire from private
duplicates of fds 0 and 1 and points fd 1 at stderr while it runs, so a stray ``print`` (ours, a library's,
a child's) lands on stderr instead of corrupting the stream; logging must be configured to stderr by the
caller (the CLI does).
"""

import logging

from trading_mcp.ports import Facade
from trading_mcp.server import build_server

__all__ = ["serve_stdio"]

logger = logging.getLogger(__name__)


async def serve_stdio(facade: Facade, *, read_only: bool = False) -> None:
    """Serve one MCP client over stdin/stdout until it closes stdin.

    Args:
        facade: the engine's facade.
        read_only: register only read-only tools.
    """
    mcp = build_server(facade, read_only=read_only)
    logger.info("MCP over stdio (%s mode%s)", facade.mode, ", read-only" if read_only else "")
    await mcp.run_stdio_async()
