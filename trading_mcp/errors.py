"""The one place where refusals become MCP errors, and where secrets are kept out of what we return or record.

Errors of this package, by how the caller should respond::

    TradingMcpError
    ├── InvalidInput          an argument is malformed (empty, too many, not finite): fix it and retry
    │   └── UnknownName       no pair (or other named thing) by that name: pick one the message lists
    ├── ConfirmationRefused   the confirmation token is unknown, used, expired, for other arguments or another
    │                         client, or this client failed too often: call again without a token (or later)
    └── BindRefused           the HTTP server may not listen as asked (a non-loopback address without
                              --allow-remote, no allowed host for every interface): fix the command line

Engine refusals (``engine.runtime.errors.FacadeError`` and its subclasses) and ours are translated by
:func:`tool_errors` into the SDK's ``ToolError`` (an ``is_error`` result the model can read and correct) and
by :func:`resource_errors` into the SDK's resource errors. Nothing else is caught: an unexpected exception
stays a crash, which the SDK reports without its text.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError

from engine.redaction import Redactor
from engine.runtime.errors import FacadeError, InvalidRequest, LimitExceeded, NotAllowed, NotFound

__all__ = [
    "BindRefused",
    "ConfirmationRefused",
    "InvalidInput",
    "Redactor",
    "TradingMcpError",
    "UnknownName",
    "describe_refusal",
    "resource_errors",
    "tool_errors",
]


class TradingMcpError(Exception):
    """Base of this package's own errors."""


class InvalidInput(TradingMcpError):
    """An argument from the client is malformed; nothing was sent to the engine."""


class UnknownName(InvalidInput):
    """The client named something (a pair) that does not exist."""


class ConfirmationRefused(TradingMcpError):
    """A confirmation token was unknown to this client, already used, expired, or issued for other arguments; or
    the client is locked out after too many failed attempts."""


class BindRefused(TradingMcpError):
    """The MCP HTTP server may not listen where it was asked to; nothing was bound."""


def describe_refusal(exc: FacadeError) -> str:
    """Say what kind of refusal ``exc`` is, then what the engine said."""
    if isinstance(exc, NotFound):
        kind = "Not found"
    elif isinstance(exc, InvalidRequest):
        kind = "Invalid request"
    elif isinstance(exc, LimitExceeded):
        kind = "Beyond the operator's limits"
    elif isinstance(exc, NotAllowed):
        kind = "Not allowed now"
    else:
        kind = "Refused"
    return f"{kind}: {exc}. Nothing was changed."


@contextmanager
def tool_errors() -> Iterator[None]:
    """Turn engine refusals, our input checks and confirmation refusals into ``ToolError``.

    Raises:
        ToolError: with a message that says what was wrong and that nothing changed.
    """
    try:
        yield
    except FacadeError as exc:
        raise ToolError(describe_refusal(exc)) from exc
    except ConfirmationRefused as exc:
        raise ToolError(f"Confirmation refused: {exc}. Nothing was done.") from exc
    except UnknownName as exc:
        raise ToolError(f"Not found: {exc}. Nothing was changed.") from exc
    except InvalidInput as exc:
        raise ToolError(f"Invalid request: {exc}. Nothing was changed.") from exc


@contextmanager
def resource_errors() -> Iterator[None]:
    """Turn engine refusals and input checks into the SDK's resource errors.

    Raises:
        ResourceNotFoundError: for an unknown strategy or pair.
        ResourceError: for any other refusal or malformed input.
    """
    try:
        yield
    except (NotFound, UnknownName) as exc:
        raise ResourceNotFoundError(f"Not found: {exc}") from exc
    except FacadeError as exc:
        raise ResourceError(describe_refusal(exc)) from exc
    except InvalidInput as exc:
        raise ResourceError(f"Invalid request: {exc}") from exc
