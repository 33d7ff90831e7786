"""Tool registration: clean descriptions, strict argument models, refusals in one sentence.

Tools are collected in a :class:`ToolSet` and handed to ``MCPServer(tools=...)``: building each ``Tool`` here
(the SDK's public ``Tool.from_function``) is what lets its argument model be made strict before the server
ever sees it (``arguments.strict_tool``).
"""

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations

from trading_mcp.arguments import refusal, strict_tool

__all__ = ["ToolSet", "describe"]

F = TypeVar("F", bound=Callable[..., Any])


def describe(fn: Callable[..., Any]) -> str:
    """``fn``'s docstring as one line of text (what a model reads as the tool's description)."""
    return " ".join(inspect.cleandoc(fn.__doc__ or "").split())


class ToolSet:
    """The tools of one server, each with a strict argument model."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def tool(self, *, title: str, annotations: ToolAnnotations) -> Callable[[F], F]:
        """Like ``@mcp.tool(...)``, with the description taken from the docstring, unwrapped.

        Raises:
            ValueError: a tool of that name is already in the set.
        """

        def register(fn: F) -> F:
            built = Tool.from_function(fn, title=title, description=describe(fn), annotations=annotations)
            if built.name in self._tools:
                raise ValueError(f"tool {built.name!r} is registered twice")
            self._tools[built.name] = strict_tool(built)
            return fn

        return register

    def tools(self) -> list[Tool]:
        """Every tool, in registration order (for ``MCPServer(tools=...)``)."""
        return list(self._tools.values())

    def names(self) -> list[str]:
        return list(self._tools)

    def refusal(self, name: object, arguments: object) -> str | None:
        """The one-sentence refusal of a call to ``name`` with ``arguments``, None if its arguments are fine.

        Unknown tools and calls whose arguments pass are the SDK's to answer (None).
        """
        tool = self._tools.get(name) if isinstance(name, str) else None
        if tool is None:
            return None
        return refusal(tool, arguments if isinstance(arguments, Mapping) else {})
