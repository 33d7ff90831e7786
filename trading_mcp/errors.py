"""The one place where refusals become MCP errors, and where secrets are kept out of what we return or record.

Errors of this package, by how the caller should respond::

    TradingMcpError
    ├── InvalidInput          an argument is malformed (empty, too many, not finite): fix it and retry
    │   └── UnknownName       no pair (or other named thing) by that name: pick one the message lists
    └── ConfirmationRefused   the confirmation token is unknown, used, expired or for other arguments:
                              call again without a token to get a fresh one

Engine refusals (``engine.runtime.errors.FacadeError`` and its subclasses) and ours are translated by
:func:`tool_errors` into the SDK's ``ToolError`` (an ``is_error`` result the model can read and correct) and
by :func:`resource_errors` into the SDK's resource errors. Nothing else is caught: an unexpected exception
stays a crash, which the SDK reports without its text.
"""

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError

from engine.runtime.errors import FacadeError, InvalidRequest, LimitExceeded, NotAllowed, NotFound

__all__ = [
    "ConfirmationRefused",
    "InvalidInput",
    "Redactor",
    "TradingMcpError",
    "UnknownName",
    "describe_refusal",
    "resource_errors",
    "tool_errors",
]

SECRET_ENV_VARS = ("KRAKEN_API_KEY", "KRAKEN_API_SECRET", "TRADING_MCP_TOKEN")
_SECRET_KEY = re.compile(r"secret|api[_-]?key|password|authorization|bearer|token", re.IGNORECASE)
_REDACTED = "[redacted]"


class TradingMcpError(Exception):
    """Base of this package's own errors."""


class InvalidInput(TradingMcpError):
    """An argument from the client is malformed; nothing was sent to the engine."""


class UnknownName(InvalidInput):
    """The client named something (a pair) that does not exist."""


class ConfirmationRefused(TradingMcpError):
    """A confirmation token was unknown, already used, expired, or issued for other arguments."""


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


class Redactor:
    """Masks secret values (and values under secret-looking keys) in payloads before they leave the server.

    Args:
        secrets: literal values never to repeat; empty strings are ignored. By default the values of
            ``KRAKEN_API_KEY``, ``KRAKEN_API_SECRET`` and ``TRADING_MCP_TOKEN`` in the environment.
    """

    def __init__(self, secrets: Iterable[str] | None = None) -> None:
        values = secrets if secrets is not None else (os.environ.get(name, "") for name in SECRET_ENV_VARS)
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)

    def add(self, secret: str) -> None:
        """Also mask ``secret`` (for example the HTTP bearer token, known only once resolved)."""
        if len(secret) >= 4 and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def text(self, value: str) -> str:
        """``value`` with every known secret masked."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, _REDACTED)
        return value

    def payload(self, value: object) -> object:
        """A JSON-like ``value`` with secret values masked and values under secret-looking keys replaced."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                str(k): _REDACTED if _SECRET_KEY.search(str(k)) and v not in (None, "") else self.payload(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.payload(v) for v in value]
        return value
