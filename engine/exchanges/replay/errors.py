"""Errors raised by replay sources, classified by what the caller should do about them.

Exceptions::

    Exception
     └── ReplayError                    anything the replay package refuses
          ├── ReplayConfigError       (also ValueError) a bad argument: interval <= 0, speed <= 0, index
          │                           out of range; fix the caller or its configuration
          └── ReplayFormatError       (also ValueError) the data is unusable: fix or replace the file;
               │                      carries ``source`` and the 1-based ``line`` (CSV) or ``row`` (JSON)
               └── ReplayOrderError   timestamps go backwards

Files that cannot be opened raise the usual :class:`OSError` (``FileNotFoundError``...), untouched.
"""

__all__ = ["ReplayConfigError", "ReplayError", "ReplayFormatError", "ReplayOrderError"]


class ReplayError(Exception):
    """Base of every error the replay package raises on purpose."""


class ReplayConfigError(ReplayError, ValueError):
    """An argument is invalid; the data was not looked at or is not to blame."""


class ReplayFormatError(ReplayError, ValueError):
    """The data cannot be read as market events.

    Attributes:
        source: the file (or ``<text>`` / ``<events>``) the data came from.
        line: the 1-based line number of the bad CSV row, when there is one.
        row: the 1-based index of the bad JSON row or in-memory event, when there is one.
        detail: what is wrong, without the location.
    """

    def __init__(self, source: str, detail: str, *, line: int | None = None, row: int | None = None) -> None:
        self.source = source
        self.line = line
        self.row = row
        self.detail = detail
        if line is not None:
            where = f"{source}:{line}"
        elif row is not None:
            where = f"{source}: row {row}"
        else:
            where = source
        super().__init__(f"{where}: {detail}")


class ReplayOrderError(ReplayFormatError):
    """Timestamps are not in time order (candles must strictly increase, trades must not decrease)."""
