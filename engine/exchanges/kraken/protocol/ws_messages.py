"""Typed WebSocket v2 messages, as :func:`engine.exchanges.kraken.protocol.ws_codec.decode` returns them.

Market data is converted to the engine's domain values (Ticker, TradeTick, Candle) named with the engine pair
(or the WS symbol when no mapping is given). Amounts are Decimal; timestamps are integer UNIX nanoseconds.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from engine.domain.market_data import Candle, Ticker, TradeTick
from engine.exchanges.kraken.protocol.errors import KrakenError, classify

__all__ = [
    "AssetBalanceMsg",
    "BalancesMsg",
    "BookData",
    "BookMsg",
    "ExecutionReport",
    "ExecutionsMsg",
    "Fee",
    "Heartbeat",
    "InstrumentMsg",
    "LedgerEntry",
    "MethodResponse",
    "OhlcMsg",
    "Pong",
    "Status",
    "SubscribeAck",
    "TickerMsg",
    "TradeMsg",
    "UnknownMessage",
    "Wallet",
    "WsAsset",
    "WsMessage",
    "WsPair",
]

MsgType = Literal["snapshot", "update"]
PriceQty = tuple[Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class Status:
    """The ``status`` channel: ``system`` is ``online``, ``maintenance``, ``cancel_only`` or ``post_only``."""

    system: str
    api_version: str
    connection_id: int | None
    version: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Sent about once a second when no other channel message is."""


@dataclass(frozen=True, slots=True)
class Pong:
    req_id: int | None
    time_in_ns: int | None
    time_out_ns: int | None


def _error_of(success: bool, error: str | None) -> KrakenError | None:
    if success:
        return None
    return classify([error or "request failed without an error message"])


@dataclass(frozen=True, slots=True)
class SubscribeAck:
    """An acknowledgement of ``subscribe``/``unsubscribe`` (one per symbol)."""

    method: Literal["subscribe", "unsubscribe"]
    success: bool
    channel: str | None
    symbol: str | None
    req_id: int | None
    error: str | None
    result: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def exception(self) -> KrakenError | None:
        """The classified error when the request failed, else None."""
        return _error_of(self.success, self.error)


@dataclass(frozen=True, slots=True)
class MethodResponse:
    """The answer to a trading method (``add_order``, ``cancel_order``, ...). ``result`` is an object or,
    for ``batch_add``, an array."""

    method: str
    success: bool
    result: Any
    error: str | None
    req_id: int | None
    time_in_ns: int | None = None
    time_out_ns: int | None = None
    warnings: tuple[str, ...] = ()

    def exception(self) -> KrakenError | None:
        """The classified error when the request failed, else None."""
        return _error_of(self.success, self.error)


@dataclass(frozen=True, slots=True)
class TickerMsg:
    type: MsgType
    tickers: tuple[Ticker, ...]


@dataclass(frozen=True, slots=True)
class BookData:
    """One symbol's book snapshot or update: (price, qty) levels, ``checksum`` of the book after applying."""

    symbol: str
    bids: list[PriceQty]
    asks: list[PriceQty]
    checksum: int
    ts_ns: int | None


@dataclass(frozen=True, slots=True)
class BookMsg:
    type: MsgType
    books: tuple[BookData, ...]


@dataclass(frozen=True, slots=True)
class TradeMsg:
    type: MsgType
    trades: tuple[TradeTick, ...]


@dataclass(frozen=True, slots=True)
class OhlcMsg:
    """Candles of the current interval as they build (an update repeats ``ts_ns`` until the interval ends)."""

    type: MsgType
    candles: tuple[Candle, ...]


@dataclass(frozen=True, slots=True)
class WsPair:
    """A pair of the ``instrument`` channel; the precisions drive the book checksum."""

    symbol: str
    base: str
    quote: str
    status: str
    price_precision: int
    qty_precision: int
    cost_precision: int | None
    price_increment: Decimal
    qty_increment: Decimal
    qty_min: Decimal
    cost_min: Decimal | None
    marginable: bool | None


@dataclass(frozen=True, slots=True)
class WsAsset:
    id: str
    status: str
    precision: int | None
    precision_display: int | None


@dataclass(frozen=True, slots=True)
class InstrumentMsg:
    type: MsgType
    pairs: tuple[WsPair, ...]
    assets: tuple[WsAsset, ...]


@dataclass(frozen=True, slots=True)
class Fee:
    asset: str
    qty: Decimal


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """One report of the ``executions`` channel; fields Kraken left out are None.

    ``exec_type`` is pending_new, new, trade, filled, iceberg_refill, canceled, expired, amended, restated or
    status; ``order_status`` pending_new, new, partially_filled, filled, canceled or expired.
    """

    order_id: str
    exec_type: str | None = None
    order_status: str | None = None
    cl_ord_id: str | None = None
    order_userref: int | None = None
    exec_id: str | None = None
    trade_id: int | None = None
    symbol: str | None = None
    side: Literal["buy", "sell"] | None = None
    order_type: str | None = None
    order_qty: Decimal | None = None
    limit_price: Decimal | None = None
    last_qty: Decimal | None = None
    last_price: Decimal | None = None
    liquidity_ind: str | None = None
    cost: Decimal | None = None
    cum_qty: Decimal | None = None
    cum_cost: Decimal | None = None
    avg_price: Decimal | None = None
    fees: tuple[Fee, ...] = ()
    fee_usd_equiv: Decimal | None = None
    time_in_force: str | None = None
    reason: str | None = None
    ts_ns: int | None = None


@dataclass(frozen=True, slots=True)
class ExecutionsMsg:
    """``sequence`` increases by one per message on the connection; a gap means messages were lost."""

    type: MsgType
    sequence: int | None
    reports: tuple[ExecutionReport, ...]


@dataclass(frozen=True, slots=True)
class Wallet:
    type: str
    id: str
    balance: Decimal


@dataclass(frozen=True, slots=True)
class AssetBalanceMsg:
    """A snapshot entry: the total ``balance`` of ``asset`` across ``wallets``."""

    asset: str
    balance: Decimal
    wallets: tuple[Wallet, ...] = ()


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """An update entry: one ledger transaction and the resulting ``balance``."""

    ledger_id: str
    ref_id: str
    ts_ns: int
    type: str
    asset: str
    amount: Decimal
    fee: Decimal
    balance: Decimal
    category: str | None = None
    wallet_type: str | None = None
    wallet_id: str | None = None


@dataclass(frozen=True, slots=True)
class BalancesMsg:
    """A snapshot fills ``balances``; an update fills ``ledger``."""

    type: MsgType
    sequence: int | None
    balances: tuple[AssetBalanceMsg, ...] = ()
    ledger: tuple[LedgerEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A well-formed message of a channel or method this codec does not model; ``raw`` is the decoded JSON."""

    raw: Mapping[str, Any]


WsMessage = (
    Status
    | Heartbeat
    | Pong
    | SubscribeAck
    | MethodResponse
    | TickerMsg
    | BookMsg
    | TradeMsg
    | OhlcMsg
    | InstrumentMsg
    | ExecutionsMsg
    | BalancesMsg
    | UnknownMessage
)
