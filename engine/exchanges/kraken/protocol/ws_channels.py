"""Decoders of the WebSocket v2 channels other than ``book`` (which :mod:`ws_codec` decodes on its hot path).

Each decoder takes the parsed message and a symbol -> engine pair mapping and returns a typed message from
:mod:`engine.exchanges.kraken.protocol.ws_messages`, raising
:class:`~engine.exchanges.kraken.protocol.errors.KrakenProtocolError` that names a missing or malformed field.
"""

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Literal

from engine.domain.market_data import Candle, Ticker, TradeTick
from engine.exchanges.kraken.protocol.errors import KrakenProtocolError
from engine.exchanges.kraken.protocol.fields import (
    get_decimal,
    get_int,
    get_str,
    opt_decimal,
    opt_int,
    opt_str,
    to_rfc3339_ns,
)
from engine.exchanges.kraken.protocol.ws_messages import (
    AssetBalanceMsg,
    BalancesMsg,
    ExecutionReport,
    ExecutionsMsg,
    Fee,
    Heartbeat,
    InstrumentMsg,
    LedgerEntry,
    MsgType,
    OhlcMsg,
    Status,
    TickerMsg,
    TradeMsg,
    Wallet,
    WsAsset,
    WsMessage,
    WsPair,
)

__all__ = ["CHANNEL_DECODERS", "Names", "opt_ts"]

Names = Mapping[str, str]


def _type(obj: Mapping[str, Any], where: str) -> MsgType:
    kind = obj.get("type")
    if kind == "snapshot":
        return "snapshot"
    if kind == "update":
        return "update"
    raise KrakenProtocolError(f"{where}.type: expected 'snapshot' or 'update', got {kind!r}")


def _data_list(obj: Mapping[str, Any], where: str) -> list[Any]:
    data = obj.get("data")
    if not isinstance(data, list) or not all(isinstance(item, Mapping) for item in data):
        raise KrakenProtocolError(f"{where}.data: expected an array of objects")
    return data


def _side(value: object, where: str) -> Literal["buy", "sell"]:
    if value == "buy":
        return "buy"
    if value == "sell":
        return "sell"
    raise KrakenProtocolError(f"{where}: expected 'buy' or 'sell', got {value!r}")


def _status(obj: Mapping[str, Any], _names: Names) -> Status:
    data = _data_list(obj, "status")
    if not data:
        raise KrakenProtocolError("status.data: empty")
    entry = data[0]
    return Status(
        system=get_str(entry, "system", "status"),
        api_version=opt_str(entry, "api_version", "status") or "",
        connection_id=opt_int(entry, "connection_id", "status"),
        version=opt_str(entry, "version", "status") or "",
    )


def _heartbeat(_obj: Mapping[str, Any], _names: Names) -> Heartbeat:
    return Heartbeat()


def opt_ts(entry: Mapping[str, Any], key: str, where: str) -> int | None:
    """An optional RFC3339 field as UNIX nanoseconds (None when absent)."""
    value = entry.get(key)
    return None if value is None else to_rfc3339_ns(value, f"{where}.{key}")


def _ticker(obj: Mapping[str, Any], names: Names) -> TickerMsg:
    tickers = []
    for entry in _data_list(obj, "ticker"):
        symbol = get_str(entry, "symbol", "ticker")
        where = f"ticker[{symbol}]"
        tickers.append(
            Ticker(
                pair=names.get(symbol, symbol),
                # Kraken added the timestamp to ticker in 2024; 0 marks its absence.
                ts_ns=opt_ts(entry, "timestamp", where) or 0,
                bid=get_decimal(entry, "bid", where),
                bid_qty=get_decimal(entry, "bid_qty", where),
                ask=get_decimal(entry, "ask", where),
                ask_qty=get_decimal(entry, "ask_qty", where),
                last=get_decimal(entry, "last", where),
            )
        )
    return TickerMsg(_type(obj, "ticker"), tuple(tickers))


def _trade(obj: Mapping[str, Any], names: Names) -> TradeMsg:
    trades = []
    for entry in _data_list(obj, "trade"):
        symbol = get_str(entry, "symbol", "trade")
        where = f"trade[{symbol}]"
        trades.append(
            TradeTick(
                pair=names.get(symbol, symbol),
                ts_ns=to_rfc3339_ns(entry.get("timestamp"), f"{where}.timestamp"),
                price=get_decimal(entry, "price", where),
                qty=get_decimal(entry, "qty", where),
                side=_side(entry.get("side"), f"{where}.side"),
                trade_id=opt_int(entry, "trade_id", where),
            )
        )
    return TradeMsg(_type(obj, "trade"), tuple(trades))


def _ohlc(obj: Mapping[str, Any], names: Names) -> OhlcMsg:
    candles = []
    for entry in _data_list(obj, "ohlc"):
        symbol = get_str(entry, "symbol", "ohlc")
        where = f"ohlc[{symbol}]"
        candles.append(
            Candle(
                pair=names.get(symbol, symbol),
                ts_ns=to_rfc3339_ns(entry.get("interval_begin"), f"{where}.interval_begin"),
                interval_s=get_int(entry, "interval", where) * 60,
                open=get_decimal(entry, "open", where),
                high=get_decimal(entry, "high", where),
                low=get_decimal(entry, "low", where),
                close=get_decimal(entry, "close", where),
                volume=get_decimal(entry, "volume", where),
                trades=opt_int(entry, "trades", where) or 0,
            )
        )
    return OhlcMsg(_type(obj, "ohlc"), tuple(candles))


def _opt_bool(entry: Mapping[str, Any], key: str) -> bool | None:
    value = entry.get(key)
    return value if isinstance(value, bool) else None


def _instrument(obj: Mapping[str, Any], _names: Names) -> InstrumentMsg:
    data = obj.get("data")
    if not isinstance(data, Mapping):
        raise KrakenProtocolError("instrument.data: expected an object with assets and pairs")
    pairs = []
    for entry in data.get("pairs") or []:
        symbol = get_str(entry, "symbol", "instrument.pairs")
        where = f"instrument.pairs[{symbol}]"
        pairs.append(
            WsPair(
                symbol=symbol,
                base=get_str(entry, "base", where),
                quote=get_str(entry, "quote", where),
                status=get_str(entry, "status", where),
                price_precision=get_int(entry, "price_precision", where),
                qty_precision=get_int(entry, "qty_precision", where),
                cost_precision=opt_int(entry, "cost_precision", where),
                price_increment=get_decimal(entry, "price_increment", where),
                qty_increment=get_decimal(entry, "qty_increment", where),
                qty_min=get_decimal(entry, "qty_min", where),
                cost_min=opt_decimal(entry, "cost_min", where),
                marginable=_opt_bool(entry, "marginable"),
            )
        )
    assets = []
    for entry in data.get("assets") or []:
        asset_id = get_str(entry, "id", "instrument.assets")
        where = f"instrument.assets[{asset_id}]"
        assets.append(
            WsAsset(
                id=asset_id,
                status=opt_str(entry, "status", where) or "",
                precision=opt_int(entry, "precision", where),
                precision_display=opt_int(entry, "precision_display", where),
            )
        )
    return InstrumentMsg(_type(obj, "instrument"), tuple(pairs), tuple(assets))


def _fees(raw: object, where: str) -> tuple[Fee, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise KrakenProtocolError(f"{where}: expected an array")
    return tuple(Fee(get_str(f, "asset", where), get_decimal(f, "qty", where)) for f in raw)


def _report(entry: Mapping[str, Any], where: str) -> ExecutionReport:
    order_id = get_str(entry, "order_id", where)
    where = f"{where}[{order_id}]"
    side = entry.get("side")
    return ExecutionReport(
        order_id=order_id,
        exec_type=opt_str(entry, "exec_type", where),
        order_status=opt_str(entry, "order_status", where),
        cl_ord_id=opt_str(entry, "cl_ord_id", where),
        order_userref=opt_int(entry, "order_userref", where),
        exec_id=opt_str(entry, "exec_id", where),
        trade_id=opt_int(entry, "trade_id", where),
        symbol=opt_str(entry, "symbol", where),
        side=None if side is None else _side(side, f"{where}.side"),
        order_type=opt_str(entry, "order_type", where),
        order_qty=opt_decimal(entry, "order_qty", where),
        limit_price=opt_decimal(entry, "limit_price", where),
        last_qty=opt_decimal(entry, "last_qty", where),
        last_price=opt_decimal(entry, "last_price", where),
        liquidity_ind=opt_str(entry, "liquidity_ind", where),
        cost=opt_decimal(entry, "cost", where),
        cum_qty=opt_decimal(entry, "cum_qty", where),
        cum_cost=opt_decimal(entry, "cum_cost", where),
        avg_price=opt_decimal(entry, "avg_price", where),
        fees=_fees(entry.get("fees"), f"{where}.fees"),
        fee_usd_equiv=opt_decimal(entry, "fee_usd_equiv", where),
        time_in_force=opt_str(entry, "time_in_force", where),
        reason=opt_str(entry, "reason", where),
        ts_ns=opt_ts(entry, "timestamp", where),
    )


def _executions(obj: Mapping[str, Any], _names: Names) -> ExecutionsMsg:
    reports = tuple(_report(entry, "executions") for entry in _data_list(obj, "executions"))
    return ExecutionsMsg(_type(obj, "executions"), opt_int(obj, "sequence", "executions"), reports)


def _wallets(raw: object, where: str) -> tuple[Wallet, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise KrakenProtocolError(f"{where}: expected an array")
    return tuple(
        Wallet(get_str(w, "type", where), get_str(w, "id", where), get_decimal(w, "balance", where)) for w in raw
    )


def _balances(obj: Mapping[str, Any], _names: Names) -> BalancesMsg:
    kind = _type(obj, "balances")
    sequence = opt_int(obj, "sequence", "balances")
    data = _data_list(obj, "balances")
    if kind == "snapshot":
        balances = []
        for entry in data:
            asset = get_str(entry, "asset", "balances")
            where = f"balances[{asset}]"
            balances.append(
                AssetBalanceMsg(
                    asset,
                    get_decimal(entry, "balance", where),
                    _wallets(entry.get("wallets"), f"{where}.wallets"),
                )
            )
        return BalancesMsg(kind, sequence, balances=tuple(balances))
    ledger = []
    for entry in data:
        ledger_id = get_str(entry, "ledger_id", "balances")
        where = f"balances[{ledger_id}]"
        ledger.append(
            LedgerEntry(
                ledger_id=ledger_id,
                ref_id=get_str(entry, "ref_id", where),
                ts_ns=to_rfc3339_ns(entry.get("timestamp"), f"{where}.timestamp"),
                type=get_str(entry, "type", where),
                asset=get_str(entry, "asset", where),
                amount=get_decimal(entry, "amount", where),
                fee=opt_decimal(entry, "fee", where) or Decimal(0),
                balance=get_decimal(entry, "balance", where),
                category=opt_str(entry, "category", where),
                wallet_type=opt_str(entry, "wallet_type", where),
                wallet_id=opt_str(entry, "wallet_id", where),
            )
        )
    return BalancesMsg(kind, sequence, ledger=tuple(ledger))


CHANNEL_DECODERS: dict[str, Callable[[Mapping[str, Any], Names], WsMessage]] = {
    "status": _status,
    "heartbeat": _heartbeat,
    "ticker": _ticker,
    "trade": _trade,
    "ohlc": _ohlc,
    "instrument": _instrument,
    "executions": _executions,
    "balances": _balances,
}
