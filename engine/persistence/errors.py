"""The persistence layer's exceptions (the tree is drawn in :mod:`engine.persistence`)."""

__all__ = [
    "CodecError",
    "DuplicateRecord",
    "FlushTimeout",
    "SchemaError",
    "StoreError",
    "WriterClosed",
    "WriterError",
]


class StoreError(Exception):
    """Base of every error raised by the persistence layer."""


class DuplicateRecord(StoreError):
    """A record with this key was stored before (e.g. a replayed trade id); nothing was written."""


class CodecError(StoreError):
    """A value cannot be stored exactly (a float, NaN, an infinity, an unknown type): a caller bug."""


class SchemaError(StoreError):
    """The database file is missing, not a store, or behind the code's migrations (read-only open)."""


class WriterError(StoreError):
    """Base of the background writer's own errors."""


class WriterClosed(WriterError):
    """The writer is not running (never started, stopped, or its thread died)."""


class FlushTimeout(WriterError):
    """The writer did not confirm a flush within the time allowed; durability is unknown."""
