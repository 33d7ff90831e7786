"""The MCP supervisor: an LLM client reads and steers a running engine through its facade.

Thin by design: it validates input, calls :class:`engine.runtime.facade.EngineFacade` and returns typed models.
"""

from trading_mcp.bridge import attach
from trading_mcp.http import resolve_token, serve_http
from trading_mcp.server import build_server
from trading_mcp.stdio import serve_stdio

__all__ = ["attach", "build_server", "resolve_token", "serve_http", "serve_stdio"]
