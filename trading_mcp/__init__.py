"""The MCP supervisor: an LLM client reads and steers a running engine through its facade.

Thin by design: it validates input, calls :class:`engine.runtime.facade.EngineFacade` and returns typed models.

The names below are imported when first used, not with the package: ``trading-mcp backtest`` (and every other
command that serves no MCP client) then never loads the MCP SDK, which took ~0.8 s of its start-up.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trading_mcp.bridge import attach
    from trading_mcp.http import resolve_token, serve_http
    from trading_mcp.server import build_server
    from trading_mcp.stdio import serve_stdio

__all__ = ["attach", "build_server", "resolve_token", "serve_http", "serve_stdio"]

_HOMES = {
    "attach": "trading_mcp.bridge",
    "build_server": "trading_mcp.server",
    "resolve_token": "trading_mcp.http",
    "serve_http": "trading_mcp.http",
    "serve_stdio": "trading_mcp.stdio",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(home), name)
