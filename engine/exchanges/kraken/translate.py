"""Kraken records to engine domain values, and back (pure functions).

Identity: the engine's client order id is sent as Kraken's ``cl_ord_id`` when Kraken accepts it as is (up to 18
printable ASCII characters); a longer one is sent as a 32-hex short UUID derived from it (:func:`cl_ord_id_for`),
so the mapping is stable across restarts. A fill's trade id is Kraken's trade txid (``exec_id`` on WebSocket,
the key of ``TradesHistory`` on REST), so the same fill seen both ways has one id and is applied once.
"""

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from engine.domain.instrument import Instrument, normalize_asset
from engine.domain.money import ZERO
from engine.domain.orders import (
    ClientOrderId,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    TradeId,
    VenueOrderId,
)
from engine.exchanges.kraken.protocol.rest_account import KrakenOrder, KrakenTrade
from engine.exchanges.kraken.protocol.ws_messages import ExecutionReport
from engine.exchanges.port import VenueOrder

__all__ = [
    "EXTERNAL_STRATEGY",
    "InstrumentIndex",
    "adopted_order",
    "cl_ord_id_for",
    "fill_from_report",
    "fill_from_trade",
    "kraken_status",
    "venue_order",
]

EXTERNAL_STRATEGY = "external"
"""The strategy name given to orders placed outside the engine and adopted at reconciliation."""

_NAMESPACE = uuid.UUID("6f1e3a52-7d2c-4b8e-9a41-1c2d3e4f5a6b")


def cl_ord_id_for(client_id: str) -> str:
    """The ``cl_ord_id`` Kraken gets for an engine client order id."""
    if len(client_id) <= 18 and client_id.isascii() and client_id.isprintable():
        return client_id
    return uuid.uuid5(_NAMESPACE, client_id).hex


@dataclass(frozen=True, slots=True)
class InstrumentIndex:
    """Instruments by engine pair (``BTC/USD``), REST key (``XXBTZUSD``), WS symbol (``BTC/USD``) and altname
    (``XBTUSD``, what REST order descriptions and trades carry)."""

    by_pair: Mapping[str, Instrument]
    by_rest: Mapping[str, Instrument]
    by_symbol: Mapping[str, Instrument]
    by_alt: Mapping[str, Instrument]

    @classmethod
    def of(cls, instruments: Iterable[Instrument]) -> "InstrumentIndex":
        items = list(instruments)
        return cls(
            {i.pair: i for i in items},
            {i.rest_name: i for i in items},
            {i.ws_symbol: i for i in items},
            {i.altname: i for i in items if i.altname},
        )

    def find(self, name: str | None) -> Instrument | None:
        if name is None:
            return None
        return self.by_pair.get(name) or self.by_rest.get(name) or self.by_symbol.get(name) or self.by_alt.get(name)


def fill_from_trade(trade: KrakenTrade, client_id: ClientOrderId, strategy: str, instrument: Instrument) -> Fill:
    """A REST ``TradesHistory`` row as an engine fill."""
    return Fill(
        trade_id=TradeId(trade.txid),
        client_id=client_id,
        pair=instrument.pair,
        side=OrderSide(trade.side),
        qty=trade.vol,
        price=trade.price,
        fee=trade.fee,
        fee_asset=instrument.quote,
        ts_ns=trade.time_ns,
        liquidity="maker" if trade.maker else "taker",
        strategy=strategy,
        venue_order_id=VenueOrderId(trade.ordertxid),
    )


def fill_from_report(
    report: ExecutionReport,
    client_id: ClientOrderId,
    side: OrderSide,
    strategy: str,
    instrument: Instrument,
    now_ns: int,
) -> Fill | None:
    """A WS ``executions`` trade report as an engine fill (None when it lacks a quantity or price)."""
    if report.last_qty is None or report.last_price is None or report.last_qty <= 0:
        return None
    fee_asset = normalize_asset(report.fees[0].asset) if report.fees else instrument.quote
    fee = sum((f.qty for f in report.fees if normalize_asset(f.asset) == fee_asset), ZERO)
    trade_id = report.exec_id or (str(report.trade_id) if report.trade_id is not None else None)
    if trade_id is None:
        return None
    return Fill(
        trade_id=TradeId(trade_id),
        client_id=client_id,
        pair=instrument.pair,
        side=side,
        qty=report.last_qty,
        price=report.last_price,
        fee=fee,
        fee_asset=fee_asset,
        ts_ns=report.ts_ns or now_ns,
        liquidity="maker" if report.liquidity_ind == "m" else "taker",
        strategy=strategy,
        venue_order_id=VenueOrderId(report.order_id),
    )


def kraken_status(order: KrakenOrder) -> OrderStatus:
    """Kraken's order status in the engine's terms."""
    if order.status in ("pending", "open"):
        return OrderStatus.PARTIALLY_FILLED if order.vol_exec > 0 else OrderStatus.NEW
    if order.status == "expired":
        return OrderStatus.EXPIRED
    if order.status == "closed" and order.vol_exec >= order.vol:
        return OrderStatus.FILLED
    return OrderStatus.CANCELED


def venue_order(order: KrakenOrder, client_id: ClientOrderId | None, instrument: Instrument | None) -> VenueOrder:
    return VenueOrder(
        client_id=client_id,
        venue_order_id=VenueOrderId(order.txid),
        pair=instrument.pair if instrument is not None else order.pair,
        side=OrderSide(order.side),
        order_type=OrderType.LIMIT if order.ordertype == "limit" else OrderType.MARKET,
        qty=order.vol,
        filled_qty=order.vol_exec,
        limit_price=order.price if order.ordertype == "limit" else None,
        status=kraken_status(order),
    )


def adopted_order(order: KrakenOrder, instrument: Instrument | None) -> Order:
    """An engine order for a Kraken order the engine did not place (fills are applied afterwards)."""
    client_id = ClientOrderId(order.cl_ord_id or f"kraken-{order.txid}")
    return Order(
        client_id=client_id,
        pair=instrument.pair if instrument is not None else order.pair,
        side=OrderSide(order.side),
        order_type=OrderType.LIMIT if order.ordertype == "limit" else OrderType.MARKET,
        qty=order.vol,
        limit_price=order.price if order.ordertype == "limit" else None,
        created_ts_ns=order.opentm_ns,
        strategy=EXTERNAL_STRATEGY,
        status=OrderStatus.NEW,
        venue_order_id=VenueOrderId(order.txid),
        updated_ts_ns=order.opentm_ns,
        expires_ns=order.expiretm_ns,
    )
