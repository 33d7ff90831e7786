"""Errors the engine's facade raises for requests it refuses. Each message is meant for the caller (a person on
the CLI or an LLM over MCP): it says what was wrong and leaves the engine unchanged.

    FacadeError
    ├── NotFound            unknown strategy, parameter, pair or order
    ├── InvalidRequest      wrong type, out of range, NaN, negative, a combination refused
    ├── LimitExceeded       a change beyond what the operator's configuration allows
    └── NotAllowed          not in the current state (e.g. resume without a halt, a stale confirmation token)
"""

__all__ = ["FacadeError", "InvalidRequest", "LimitExceeded", "NotAllowed", "NotFound"]


class FacadeError(Exception):
    """Base of refusals from the engine facade."""


class NotFound(FacadeError):
    """The named strategy, parameter, pair or order does not exist."""


class InvalidRequest(FacadeError):
    """The request is malformed or out of range."""


class LimitExceeded(FacadeError):
    """The request goes beyond the operator's caps."""


class NotAllowed(FacadeError):
    """The request is not allowed in the engine's current state."""
