"""Tool registration with clean descriptions: a docstring wrapped for the source reads as one paragraph."""

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

__all__ = ["describe", "tool"]

F = TypeVar("F", bound=Callable[..., Any])


def describe(fn: Callable[..., Any]) -> str:
    """``fn``'s docstring as one line of text (what a model reads as the tool's description)."""
    return " ".join(inspect.cleandoc(fn.__doc__ or "").split())


def tool(mcp: MCPServer[Any], *, title: str, annotations: ToolAnnotations) -> Callable[[F], F]:
    """Like ``@mcp.tool(...)``, with the description taken from the docstring, unwrapped."""

    def register(fn: F) -> F:
        mcp.add_tool(fn, title=title, description=describe(fn), annotations=annotations)
        return fn

    return register
