"""Plain records for the tables that have no domain type of their own."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["EventRecord", "FillValueRow", "RoundTripRow", "StrategyParamsRecord"]

# The default of RoundTripRow's value fields: "the quote figures themselves" (a NaN, never a storable value;
# recognised by identity and replaced in __post_init__).
_SAME_AS_QUOTE = Decimal("NaN")


@dataclass(frozen=True, slots=True)
class RoundTripRow:
    """One closed trade (the fields of ``engine.portfolio.performance.ClosedTrade``); ``id`` is assigned by the store.

    ``pnl`` (net of ``fees``), ``fees`` and the prices are in the pair's quote asset; ``pnl_value`` and
    ``fees_value`` are the same figures in ``value_currency`` (the account currency), each fill valued when it was
    booked. Both values None: unknown (a fill could not be priced then, or a row stored before migration m003
    whose pair is not quoted in the account currency). Left out, the values are ``pnl`` and ``fees`` themselves.
    ``value_currency`` None: not stated (rows stored before m003 that were not valued since).
    """

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
    pnl_value: Decimal | None = _SAME_AS_QUOTE
    fees_value: Decimal | None = _SAME_AS_QUOTE
    value_currency: str | None = None

    def __post_init__(self) -> None:
        if self.pnl_value is _SAME_AS_QUOTE:
            object.__setattr__(self, "pnl_value", self.pnl)
        if self.fees_value is _SAME_AS_QUOTE:
            object.__setattr__(self, "fees_value", self.fees)


@dataclass(frozen=True, slots=True)
class FillValueRow:
    """A fill's fee and realized PnL (gross) in ``value_currency`` (the account currency), valued when it was
    booked; None: that amount could not be valued then.

    Stored only for fills that needed a conversion (a pair not quoted in the account currency, or a fee in another
    asset). Read back by :meth:`engine.persistence.Store.load_fill_values` for every fill, with all three None
    when nothing was stored.
    """

    trade_id: str
    fee_value: Decimal | None
    realized_value: Decimal | None
    value_currency: str | None


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
    """One audit event. Decimals inside ``payload`` come back as strings.

    ``ts_ns``: the engine's clock (in a replay, the replayed market's time); ``wall_ts_ns``: the wall clock when
    it was written (None for events written before migration m004).
    """

    id: int
    ts_ns: int
    kind: str
    source: str
    payload: dict[str, Any]
    wall_ts_ns: int | None = None
