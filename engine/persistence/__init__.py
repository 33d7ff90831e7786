"""Persistence: the engine's state in one SQLite file, written by a single background thread.

Modules: :mod:`~engine.persistence.schema` (versioned migrations), :mod:`~engine.persistence.codec` (exact
Decimal/JSON encodings, rows <-> domain), :mod:`~engine.persistence.store` (the synchronous :class:`Store`),
:mod:`~engine.persistence.writer` (:class:`StoreWriter`, the one writer, kept off the event loop),
:mod:`~engine.persistence.rows` and :mod:`~engine.persistence.bulk` (pre-encoded rows written in one statement).

Exceptions, by how the caller should respond::

    StoreError                    anything from this package
    ├── DuplicateRecord           the key is stored already: an idempotent replay, treat as "already done"
    ├── CodecError                a float/NaN/unknown type reached the store: a bug, fix the caller
    ├── SchemaError               missing/foreign/outdated database: operator action (path, upgrade)
    ├── PartialWrite              a bulk write (backtests) stored some rows and refused others: see .errors
    └── WriterError               the background writer itself
        ├── WriterClosed          submitted while not running: a lifecycle bug
        └── FlushTimeout          durability unknown: do not send the order; halt or retry the flush

sqlite3 errors (disk full, I/O) pass through unchanged; from the writer they surface on the next flush.
"""

from engine.persistence.bulk import PartialWrite
from engine.persistence.errors import (
    CodecError,
    DuplicateRecord,
    FlushTimeout,
    SchemaError,
    StoreError,
    WriterClosed,
    WriterError,
)
from engine.persistence.reader import StoreReader
from engine.persistence.records import EventRecord, FillValueRow, RoundTripRow, StrategyParamsRecord
from engine.persistence.schema import MIGRATIONS, applied_migrations, migrate, pending_migrations
from engine.persistence.store import TABLES, Store
from engine.persistence.writer import StoreWriter, WriterStats

__all__ = [
    "MIGRATIONS",
    "TABLES",
    "CodecError",
    "DuplicateRecord",
    "EventRecord",
    "FillValueRow",
    "FlushTimeout",
    "PartialWrite",
    "RoundTripRow",
    "SchemaError",
    "Store",
    "StoreError",
    "StoreReader",
    "StoreWriter",
    "StrategyParamsRecord",
    "WriterClosed",
    "WriterError",
    "WriterStats",
    "applied_migrations",
    "migrate",
    "pending_migrations",
]
