"""Kraken Spot REST, sans-I/O: parsing of private (account and trading) responses.

Amounts are Decimal, times are integer UNIX nanoseconds, asset codes are the engine's (``XXBT`` -> ``BTC``;
suffixed balances keep their suffix: ``XBT.M`` -> ``BTC.M``, ``ETH2.S`` stays ``ETH2.S``).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from engine.domain.instrument import normalize_asset
from engine.domain.money import ZERO
from engine.exchanges.kraken.protocol.errors import KrakenProtocolError
from engine.exchanges.kraken.protocol.fields import (
    get_decimal,
    get_int,
    get_mapping,
    get_str,
    opt_decimal,
    opt_int,
    opt_str,
    to_decimal,
    to_rfc3339_ns,
    to_seconds_ns,
)
from engine.exchanges.kraken.protocol.rest import Response, envelope_result

__all__ = [
    "AddOrderResult",
    "BalanceDetail",
    "CancelAllAfterResult",
    "CancelResult",
    "ClosedOrders",
    "KrakenOrder",
    "KrakenTrade",
    "TradeVolume",
    "TradesHistory",
    "WsToken",
    "normalize_balance_asset",
    "parse_add_order",
    "parse_balance",
    "parse_balance_ex",
    "parse_balance_ex_detail",
    "parse_cancel",
    "parse_cancel_all_after",
    "parse_closed_orders",
    "parse_open_orders",
    "parse_query_orders",
    "parse_trade_volume",
    "parse_trades_history",
    "parse_ws_token",
]


def normalize_balance_asset(code: str) -> str:
    """The engine's code for a balance key, keeping Kraken's wallet suffix (``.B .F .T .S .M``)."""
    base, dot, suffix = code.partition(".")
    return normalize_asset(base) + dot + suffix


def parse_balance(response: Response) -> dict[str, Decimal]:
    """Parse ``/0/private/Balance`` into total balance per asset.

    Two legacy codes of one asset (``XXBT``, ``XBT``) never appear together; if they did, they would add.
    """
    result = envelope_result(response, "Balance")
    balances: dict[str, Decimal] = {}
    for code, amount in result.items():
        asset = normalize_balance_asset(code)
        balances[asset] = balances.get(asset, ZERO) + to_decimal(amount, f"Balance.{code}")
    return balances


@dataclass(frozen=True, slots=True)
class BalanceDetail:
    """One asset of ``BalanceEx``: ``available = balance + credit - credit_used - hold_trade``."""

    balance: Decimal
    hold_trade: Decimal
    credit: Decimal = ZERO
    credit_used: Decimal = ZERO

    @property
    def available(self) -> Decimal:
        return self.balance + self.credit - self.credit_used - self.hold_trade


def parse_balance_ex_detail(response: Response) -> dict[str, BalanceDetail]:
    """Parse ``/0/private/BalanceEx`` keeping every field."""
    result = envelope_result(response, "BalanceEx")
    details: dict[str, BalanceDetail] = {}
    for code, entry in result.items():
        where = f"BalanceEx.{code}"
        if not isinstance(entry, Mapping):
            raise KrakenProtocolError(f"{where}: expected an object")
        details[normalize_balance_asset(code)] = BalanceDetail(
            balance=get_decimal(entry, "balance", where),
            hold_trade=opt_decimal(entry, "hold_trade", where) or ZERO,
            credit=opt_decimal(entry, "credit", where) or ZERO,
            credit_used=opt_decimal(entry, "credit_used", where) or ZERO,
        )
    return details


def parse_balance_ex(response: Response) -> dict[str, Decimal]:
    """Parse ``/0/private/BalanceEx`` into the *available* amount per asset (what new orders may use)."""
    return {asset: detail.available for asset, detail in parse_balance_ex_detail(response).items()}


@dataclass(frozen=True, slots=True)
class AddOrderResult:
    """``txids`` is empty for a ``validate=true`` call; ``descr_close`` is set for a close order."""

    txids: tuple[str, ...]
    descr_order: str
    descr_close: str | None = None


def parse_add_order(response: Response) -> AddOrderResult:
    """Parse ``/0/private/AddOrder`` (also ``EditOrder``'s ``txid`` shape)."""
    result = envelope_result(response, "AddOrder")
    descr = get_mapping(result, "descr", "AddOrder")
    raw_txids = result.get("txid", [])
    if isinstance(raw_txids, str):
        raw_txids = [raw_txids]
    if not isinstance(raw_txids, list) or not all(isinstance(t, str) for t in raw_txids):
        raise KrakenProtocolError(f"AddOrder.txid: expected a list of strings, got {raw_txids!r}")
    return AddOrderResult(
        tuple(raw_txids),
        get_str(descr, "order", "AddOrder.descr"),
        opt_str(descr, "close", "AddOrder.descr") or None,
    )


@dataclass(frozen=True, slots=True)
class CancelResult:
    """How many orders were canceled, and whether the cancellation is still pending."""

    count: int
    pending: bool = False


def parse_cancel(response: Response) -> CancelResult:
    """Parse ``/0/private/CancelOrder`` and ``/0/private/CancelAll``."""
    result = envelope_result(response, "CancelOrder")
    pending = result.get("pending", False)
    return CancelResult(get_int(result, "count", "CancelOrder"), bool(pending))


@dataclass(frozen=True, slots=True)
class CancelAllAfterResult:
    """The server's time and when it will cancel everything (None when the switch is disabled)."""

    current_time_ns: int
    trigger_time_ns: int | None


def parse_cancel_all_after(response: Response) -> CancelAllAfterResult:
    """Parse ``/0/private/CancelAllOrdersAfter``."""
    result = envelope_result(response, "CancelAllOrdersAfter")
    current = to_rfc3339_ns(result.get("currentTime"), "CancelAllOrdersAfter.currentTime")
    trigger_raw = result.get("triggerTime")
    # Disabling the switch (timeout=0) answers with triggerTime "0".
    trigger = None if trigger_raw in (None, "0", 0) else to_rfc3339_ns(trigger_raw, "CancelAllOrdersAfter.triggerTime")
    return CancelAllAfterResult(current, trigger)


@dataclass(frozen=True, slots=True)
class WsToken:
    """A WebSocket auth token; use it within ``expires_s`` seconds."""

    token: str
    expires_s: int


def parse_ws_token(response: Response) -> WsToken:
    """Parse ``/0/private/GetWebSocketsToken``."""
    result = envelope_result(response, "GetWebSocketsToken")
    return WsToken(get_str(result, "token", "GetWebSocketsToken"), get_int(result, "expires", "GetWebSocketsToken"))


Side = Literal["buy", "sell"]


def _side(value: object, where: str) -> Side:
    if value == "buy":
        return "buy"
    if value == "sell":
        return "sell"
    raise KrakenProtocolError(f"{where}: expected 'buy' or 'sell', got {value!r}")


@dataclass(frozen=True, slots=True)
class KrakenOrder:
    """An order as OpenOrders/ClosedOrders/QueryOrders report it.

    ``price`` is the order's limit (primary) price from ``descr``; ``avg_price`` is the average fill price
    (Kraken's top-level ``price``). ``pair`` is Kraken's altname (``XBTUSD``). Times are UNIX nanoseconds.
    """

    txid: str
    status: str
    pair: str
    side: Side
    ordertype: str
    price: Decimal
    price2: Decimal
    vol: Decimal
    vol_exec: Decimal
    cost: Decimal
    fee: Decimal
    avg_price: Decimal
    opentm_ns: int
    closetm_ns: int | None
    cl_ord_id: str | None
    userref: int | None
    reason: str | None
    oflags: str
    trades: tuple[str, ...]
    descr_order: str
    expiretm_ns: int | None = None
    """A good-till-date order's expiry (Kraken's ``expiretm``; 0 there, None here: none)."""


def _order(txid: str, raw: object, where: str) -> KrakenOrder:
    if not isinstance(raw, Mapping):
        raise KrakenProtocolError(f"{where}: expected an object")
    descr = get_mapping(raw, "descr", where)
    dwhere = f"{where}.descr"
    closetm = raw.get("closetm")
    expiretm = raw.get("expiretm")
    trades = raw.get("trades") or []
    if not isinstance(trades, list) or not all(isinstance(t, str) for t in trades):
        raise KrakenProtocolError(f"{where}.trades: expected a list of strings, got {trades!r}")
    return KrakenOrder(
        txid=txid,
        status=get_str(raw, "status", where),
        pair=get_str(descr, "pair", dwhere),
        side=_side(descr.get("type"), f"{dwhere}.type"),
        ordertype=get_str(descr, "ordertype", dwhere),
        price=opt_decimal(descr, "price", dwhere) or ZERO,
        price2=opt_decimal(descr, "price2", dwhere) or ZERO,
        vol=get_decimal(raw, "vol", where),
        vol_exec=get_decimal(raw, "vol_exec", where),
        cost=get_decimal(raw, "cost", where),
        fee=get_decimal(raw, "fee", where),
        avg_price=opt_decimal(raw, "price", where) or ZERO,
        opentm_ns=to_seconds_ns(raw.get("opentm"), f"{where}.opentm"),
        closetm_ns=None if closetm in (None, 0) else to_seconds_ns(closetm, f"{where}.closetm"),
        cl_ord_id=opt_str(raw, "cl_ord_id", where),
        userref=opt_int(raw, "userref", where),
        reason=opt_str(raw, "reason", where),
        oflags=opt_str(raw, "oflags", where) or "",
        trades=tuple(trades),
        descr_order=opt_str(descr, "order", dwhere) or "",
        expiretm_ns=(to_seconds_ns(expiretm, f"{where}.expiretm") or None) if expiretm is not None else None,
    )


def _orders(entries: object, where: str) -> dict[str, KrakenOrder]:
    if not isinstance(entries, Mapping):
        raise KrakenProtocolError(f"{where}: expected an object keyed by txid")
    return {txid: _order(txid, raw, f"{where}[{txid}]") for txid, raw in entries.items()}


def parse_open_orders(response: Response) -> dict[str, KrakenOrder]:
    """Parse ``/0/private/OpenOrders`` into orders keyed by txid."""
    result = envelope_result(response, "OpenOrders")
    return _orders(result.get("open"), "OpenOrders.open")


@dataclass(frozen=True, slots=True)
class ClosedOrders:
    """One page (≤ 50) of closed orders and the total ``count`` matching the query."""

    orders: dict[str, KrakenOrder]
    count: int


def parse_closed_orders(response: Response) -> ClosedOrders:
    """Parse ``/0/private/ClosedOrders``."""
    result = envelope_result(response, "ClosedOrders")
    orders = _orders(result.get("closed"), "ClosedOrders.closed")
    count = opt_int(result, "count", "ClosedOrders")
    return ClosedOrders(orders, len(orders) if count is None else count)


def parse_query_orders(response: Response) -> dict[str, KrakenOrder]:
    """Parse ``/0/private/QueryOrders`` into orders keyed by txid."""
    return _orders(envelope_result(response, "QueryOrders"), "QueryOrders")


@dataclass(frozen=True, slots=True)
class KrakenTrade:
    """One of the account's fills. ``pair`` is Kraken's REST key (``XXBTZUSD``); ``time_ns`` UNIX ns."""

    txid: str
    ordertxid: str
    pair: str
    time_ns: int
    side: Side
    ordertype: str
    price: Decimal
    cost: Decimal
    fee: Decimal
    vol: Decimal
    maker: bool | None
    trade_id: int | None
    postxid: str | None = None


def _trade(txid: str, raw: object, where: str) -> KrakenTrade:
    if not isinstance(raw, Mapping):
        raise KrakenProtocolError(f"{where}: expected an object")
    maker = raw.get("maker")
    if maker is not None and not isinstance(maker, bool):
        raise KrakenProtocolError(f"{where}.maker: expected true/false, got {maker!r}")
    return KrakenTrade(
        txid=txid,
        ordertxid=get_str(raw, "ordertxid", where),
        pair=get_str(raw, "pair", where),
        time_ns=to_seconds_ns(raw.get("time"), f"{where}.time"),
        side=_side(raw.get("type"), f"{where}.type"),
        ordertype=get_str(raw, "ordertype", where),
        price=get_decimal(raw, "price", where),
        cost=get_decimal(raw, "cost", where),
        fee=get_decimal(raw, "fee", where),
        vol=get_decimal(raw, "vol", where),
        maker=maker,
        trade_id=opt_int(raw, "trade_id", where),
        postxid=opt_str(raw, "postxid", where),
    )


@dataclass(frozen=True, slots=True)
class TradesHistory:
    """One page (≤ 50) of fills keyed by trade txid and the total ``count``."""

    trades: dict[str, KrakenTrade]
    count: int


def parse_trades_history(response: Response) -> TradesHistory:
    """Parse ``/0/private/TradesHistory``."""
    result: Mapping[str, Any] = envelope_result(response, "TradesHistory")
    entries = result.get("trades")
    if not isinstance(entries, Mapping):
        raise KrakenProtocolError("TradesHistory.trades: expected an object keyed by trade txid")
    trades = {txid: _trade(txid, raw, f"TradesHistory.trades[{txid}]") for txid, raw in entries.items()}
    count = opt_int(result, "count", "TradesHistory")
    return TradesHistory(trades, len(trades) if count is None else count)


@dataclass(frozen=True, slots=True)
class TradeVolume:
    """``/0/private/TradeVolume``: the account's 30-day fee volume (USD) and, per pair asked for, the fee it pays
    now in percent (taker and maker), keyed by the name Kraken answers with (its REST key)."""

    volume: Decimal
    fees: Mapping[str, Decimal]
    fees_maker: Mapping[str, Decimal]


def parse_trade_volume(response: Response) -> TradeVolume:
    """Parse ``/0/private/TradeVolume``."""
    result = envelope_result(response, "TradeVolume")
    volume = to_decimal(result.get("volume", "0"), "TradeVolume.volume")

    def fees(key: str) -> dict[str, Decimal]:
        table = result.get(key) or {}
        if not isinstance(table, Mapping):
            raise KrakenProtocolError(f"TradeVolume.{key}: expected an object")
        out = {}
        for pair, info in table.items():
            if not isinstance(info, Mapping):
                raise KrakenProtocolError(f"TradeVolume.{key}.{pair}: expected an object")
            out[str(pair)] = to_decimal(info.get("fee"), f"TradeVolume.{key}.{pair}.fee")
        return out

    return TradeVolume(volume, fees("fees"), fees("fees_maker"))
