"""Plain records for the tables that have no domain type of their own."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["EventRecord", "RoundTripRow", "StrategyParamsRecord"]


@dataclass(frozen=True, slots=True)
class RoundTripRow:
    """One closed trade. ``pnl`` is in quote currency, net of ``fees`` (the fields of
    ``engine.portfolio.performance.ClosedTrade``); ``id`` is assigned by the store."""

    pair: str
    strategy: str
    entry_ts_ns: int
    exit_ts_ns: int
    qty: Decimal
    entry_price: Decimal
    exit_price: Decimal
    pnl: Decimal
    fees: Decimal
    id: int | None = None


@dataclass(frozen=True, slots=True)
class StrategyParamsRecord:
    """One version of a strategy's parameters. Decimals inside ``params`` come back as strings."""

    strategy: str
    version: int
    params: dict[str, Any]
    enabled: bool
    ts_ns: int
    source: str
    note: str


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One audit event. Decimals inside ``payload`` come back as strings."""

    id: int
    ts_ns: int
    kind: str
    source: str
    payload: dict[str, Any]
