"""The facade's refusals (defined in :mod:`engine.errors` so services can raise them too)."""

from engine.errors import FacadeError, InvalidRequest, LimitExceeded, NotAllowed, NotFound

__all__ = ["FacadeError", "InvalidRequest", "LimitExceeded", "NotAllowed", "NotFound"]
