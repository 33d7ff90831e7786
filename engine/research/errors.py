"""The research package's one user-facing error."""

__all__ = ["OptimizeError"]


class OptimizeError(Exception):
    """A mistake in an optimisation's arguments (a bad range, an unknown parameter, too few candles): the message
    is one sentence, shown as is, and nothing was run or saved."""
