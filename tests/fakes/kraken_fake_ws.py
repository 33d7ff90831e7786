"""The fake Kraken's WebSocket v2 API (public ``/v2`` and private ``/auth/v2``) over loopback websockets.

Each connection is a :class:`WsSession` with an unbounded outbox drained by one writer task, so messages leave in
the order the fake produced them. Book messages are computed per session from what that session was last sent
(deletes before inserts, levels falling out of the subscribed depth left for the client to truncate) and carry
Kraken's CRC32 checksum computed here from precision-formatted values, independently of the engine's code.
"""

import contextlib
import json
import math
import zlib
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio
from fakes.kraken_fake_market import FakePair, ids_of, rfc3339
from fakes.kraken_fake_ws_trading import TRADING
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from engine.exchanges.kraken.protocol.ws_requests import dumps

if TYPE_CHECKING:
    from fakes.kraken_fake import FakeKraken

__all__ = ["WsSession", "fake_checksum", "trim"]

Levels = list[tuple[Decimal, Decimal]]
TOKEN_ERROR = "ESession:Invalid session"


def trim(value: Decimal) -> Decimal:
    """Kraken prints JSON numbers without trailing zeros (0.566 for 0.5660)."""
    return value.normalize() if value else Decimal(0)


def fake_checksum(asks: Levels, bids: Levels, price_precision: int, qty_precision: int) -> int:
    def text(levels: Levels) -> str:
        out = []
        for price, qty in levels[:10]:
            out.append(f"{price:.{price_precision}f}".replace(".", "").lstrip("0"))
            out.append(f"{qty:.{qty_precision}f}".replace(".", "").lstrip("0"))
        return "".join(out)

    return zlib.crc32((text(asks) + text(bids)).encode())


def _levels_json(levels: Iterable[tuple[Decimal, Decimal]]) -> list[dict[str, Decimal]]:
    return [{"price": trim(p), "qty": trim(q)} for p, q in levels]


def _trimmed(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return trim(obj)
    if isinstance(obj, dict):
        return {k: _trimmed(v) for k, v in obj.items() if k != "ts_ns"}
    if isinstance(obj, list):
        return [_trimmed(v) for v in obj]
    return obj


class WsSession:
    """One client connection."""

    def __init__(self, fake: "FakeKraken", conn: ServerConnection, private: bool) -> None:
        self.fake = fake
        self.conn = conn
        self.private = private
        self.silent = False
        self._send, self._outbox = anyio.create_memory_object_stream[str](math.inf)
        self.subs: dict[str, set[str]] = {}
        self.book_depth: dict[str, int] = {}
        self.book_view: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}
        self.ohlc: set[tuple[str, int]] = set()
        self.sequence: dict[str, int] = {}
        self.received: list[dict[str, Any]] = []

    # -- plumbing -------------------------------------------------------------------------------------------

    def push(self, message: dict[str, Any]) -> None:
        if not self.silent:
            with contextlib.suppress(anyio.ClosedResourceError):  # the connection is gone
                self._send.send_nowait(dumps(message))

    async def run(self) -> None:
        self.push(
            {
                "channel": "status",
                "type": "update",
                "data": [
                    {
                        "api_version": "v2",
                        "connection_id": 13834774380200032777,
                        "system": self.fake.system_status,
                        "version": "2.0.0",
                    }
                ],
            }
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._writer)
            try:
                async for text in self.conn:
                    self.handle(text if isinstance(text, str) else text.decode())
            except ConnectionClosed:
                pass
            finally:
                self._send.close()
                tg.cancel_scope.cancel()

    async def _writer(self) -> None:
        async with self._outbox:
            async for text in self._outbox:
                try:
                    await self.conn.send(text)
                except ConnectionClosed:
                    return

    def abort(self) -> None:
        """Drop the connection without a closing handshake (a network failure as the client sees it)."""
        transport = self.conn.transport
        transport.abort()

    def _reply(
        self, method: str, req_id: object, result: object = None, error: str | None = None, **extra: object
    ) -> None:
        now = rfc3339(self.fake.clock_ns())
        message: dict[str, Any] = {"method": method}
        if error is None:
            message["result"] = result
            message["success"] = True
        else:
            message["error"] = error
            message["success"] = False
        message.update(extra)
        if req_id is not None:
            message["req_id"] = req_id
        message.update(time_in=now, time_out=now)
        self.push(message)

    def _next_seq(self, channel: str) -> int:
        self.sequence[channel] = self.sequence.get(channel, 0) + 1
        return self.sequence[channel]

    # -- requests -------------------------------------------------------------------------------------------

    def handle(self, text: str) -> None:
        message = json.loads(text, parse_float=Decimal)
        self.received.append(message)
        self.fake.changed()
        method = message.get("method")
        params = message.get("params") or {}
        req_id = message.get("req_id")
        if method == "ping":
            now = rfc3339(self.fake.clock_ns())
            pong: dict[str, Any] = {"method": "pong", "time_in": now, "time_out": now}
            if req_id is not None:
                pong["req_id"] = req_id
            self.push(pong)
        elif method == "subscribe":
            self._subscribe(params, req_id)
        elif method == "unsubscribe":
            self._unsubscribe(params, req_id)
        elif method in TRADING:
            if not self.private:
                self._reply(method, req_id, error="EGeneral:Permission denied")
            elif params.get("token") not in self.fake.tokens:
                self._reply(method, req_id, error=TOKEN_ERROR)
            else:
                self.fake.market.expire_due()  # Kraken expires orders on its own clock, whatever is asked
                TRADING[method](self, params, req_id)
        else:
            self._reply(str(method), req_id, error="EGeneral:Invalid arguments")

    def _subscribe(self, params: dict[str, Any], req_id: object) -> None:
        channel = str(params.get("channel"))
        if channel in ("executions", "balances"):
            if not self.private:
                self._reply("subscribe", req_id, error="EGeneral:Permission denied")
            elif params.get("token") not in self.fake.tokens:
                self._reply("subscribe", req_id, error=TOKEN_ERROR)
            else:
                self.subs.setdefault(channel, set()).add("*")
                result: dict[str, Any] = {"channel": channel, "snapshot": params.get("snapshot", True)}
                if channel == "executions":
                    result["maxratecount"] = 125
                self._reply("subscribe", req_id, result)
                self._private_snapshot(channel, params)
            return
        if channel == "instrument":
            self.subs.setdefault(channel, set()).add("*")
            self._reply(
                "subscribe",
                req_id,
                {"channel": channel, "snapshot": True, "warnings": ["tick_size is deprecated, use price_increment"]},
            )
            self._instrument_snapshot()
            return
        for symbol in params.get("symbol") or []:
            pair = self.fake.market.by_symbol.get(symbol)
            if pair is None or channel not in ("ticker", "book", "trade", "ohlc"):
                self._reply("subscribe", req_id, error=f"Currency pair not supported {symbol}", symbol=symbol)
                continue
            result = {"channel": channel, "symbol": symbol, "snapshot": params.get("snapshot", channel != "trade")}
            if channel == "book":
                depth = int(params.get("depth", 10))
                self.book_depth[symbol] = depth
                result["depth"] = depth
            if channel == "ohlc":
                interval = int(params.get("interval", 1))
                self.ohlc.add((symbol, interval))
                result["interval"] = interval
                result["warnings"] = ["timestamp is deprecated, use interval_begin"]
            self.subs.setdefault(channel, set()).add(symbol)
            self._reply("subscribe", req_id, result)
            if result["snapshot"]:
                self._public_snapshot(channel, pair, params)

    def _unsubscribe(self, params: dict[str, Any], req_id: object) -> None:
        channel = str(params.get("channel"))
        for symbol in params.get("symbol") or ["*"]:
            self.subs.get(channel, set()).discard(symbol)
            if channel == "book":
                self.book_view.pop(symbol, None)
            if channel == "ohlc":
                self.ohlc = {(s, i) for s, i in self.ohlc if s != symbol}
            self._reply("unsubscribe", req_id, {"channel": channel, "symbol": symbol})

    # -- snapshots and updates ------------------------------------------------------------------------------

    def _public_snapshot(self, channel: str, pair: FakePair, params: dict[str, Any]) -> None:
        if channel == "book":
            self.book_view.pop(pair.ws_symbol, None)
            self.book_update(pair, snapshot=True)
        elif channel == "ticker":
            self.ticker(pair, "snapshot")
        elif channel == "trade":
            trades = self.fake.market.public_trades[pair.altname][-50:]
            self.push({"channel": "trade", "type": "snapshot", "data": _trimmed(trades)})
        elif channel == "ohlc":
            interval = int(params.get("interval", 1))
            rows = self.fake.market.candles.get((pair.altname, interval), [])
            self.push(
                {"channel": "ohlc", "type": "snapshot", "data": [self._candle(pair, interval, row) for row in rows]}
            )

    def _candle(self, pair: FakePair, interval: int, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "symbol": pair.ws_symbol,
            "open": trim(row["open"]),
            "high": trim(row["high"]),
            "low": trim(row["low"]),
            "close": trim(row["close"]),
            "vwap": trim(row["vwap"]),
            "trades": row["trades"],
            "volume": trim(row["volume"]),
            "interval_begin": rfc3339(row["begin_ns"]),
            "interval": interval,
            "timestamp": rfc3339(row["begin_ns"] + interval * 60_000_000_000),
        }

    def ohlc_update(self, pair: FakePair, interval: int, row: dict[str, Any]) -> None:
        if (pair.ws_symbol, interval) in self.ohlc:
            self.push(
                {
                    "channel": "ohlc",
                    "type": "update",
                    "timestamp": rfc3339(self.fake.clock_ns()),
                    "data": [self._candle(pair, interval, row)],
                }
            )

    def ticker(self, pair: FakePair, kind: str = "update") -> None:
        if pair.ws_symbol not in self.subs.get("ticker", set()):
            return
        market = self.fake.market
        bid = market.levels(pair.altname, "bids", 1) or [(Decimal(0), Decimal(0))]
        ask = market.levels(pair.altname, "asks", 1) or [(Decimal(0), Decimal(0))]
        last = market.last_price.get(pair.altname, bid[0][0])
        self.push(
            {
                "channel": "ticker",
                "type": kind,
                "data": [
                    {
                        "symbol": pair.ws_symbol,
                        "bid": trim(bid[0][0]),
                        "bid_qty": trim(bid[0][1]),
                        "ask": trim(ask[0][0]),
                        "ask_qty": trim(ask[0][1]),
                        "last": trim(last),
                        "volume": 1,
                        "vwap": trim(last),
                        "low": trim(last),
                        "high": trim(last),
                        "change": 0,
                        "change_pct": 0,
                        "timestamp": rfc3339(self.fake.clock_ns()),
                    }
                ],
            }
        )

    def trades(self, pair: FakePair, trades: list[dict[str, Any]]) -> None:
        if pair.ws_symbol in self.subs.get("trade", set()):
            self.push({"channel": "trade", "type": "update", "data": _trimmed(trades)})

    def book_update(self, pair: FakePair, *, snapshot: bool = False) -> None:
        symbol = pair.ws_symbol
        if symbol not in self.subs.get("book", set()) and not snapshot:
            return
        market = self.fake.market
        depth = self.book_depth.get(symbol, 10)
        new_bids = dict(market.levels(pair.altname, "bids", depth))
        new_asks = dict(market.levels(pair.altname, "asks", depth))
        full_bids, full_asks = market.books[pair.altname]
        old = self.book_view.get(symbol)
        self.book_view[symbol] = (new_bids, new_asks)
        if old is None or snapshot:
            bids_msg = sorted(new_bids.items(), reverse=True)
            asks_msg = sorted(new_asks.items())
        else:
            bids_msg = _diff(old[0], new_bids, full_bids)
            asks_msg = _diff(old[1], new_asks, full_asks)
            if not bids_msg and not asks_msg:
                return
        checksum = fake_checksum(
            sorted(new_asks.items()), sorted(new_bids.items(), reverse=True), pair.price_precision, pair.qty_precision
        )
        faults = self.fake.faults
        if not snapshot and faults.break_checksum > 0:
            faults.break_checksum -= 1
            checksum ^= 0x5A5A
        self.push(
            {
                "channel": "book",
                "type": "snapshot" if snapshot else "update",
                "data": [
                    {
                        "symbol": symbol,
                        "bids": _levels_json(bids_msg),
                        "asks": _levels_json(asks_msg),
                        "checksum": checksum,
                        "timestamp": rfc3339(self.fake.clock_ns()),
                    }
                ],
            }
        )

    def _instrument_snapshot(self) -> None:
        pairs = []
        for pair in self.fake.market.pairs.values():
            pairs.append(
                {
                    "symbol": pair.ws_symbol,
                    "base": pair.base,
                    "quote": pair.quote,
                    "status": "online",
                    "qty_precision": pair.qty_precision,
                    "qty_increment": Decimal(1).scaleb(-pair.qty_precision),
                    "price_precision": pair.price_precision,
                    "cost_precision": pair.cost_decimals,
                    "marginable": False,
                    "has_index": True,
                    "cost_min": trim(pair.costmin),
                    "tick_size": trim(pair.tick),
                    "price_increment": trim(pair.tick),
                    "qty_min": trim(pair.ordermin),
                }
            )
        assets = [
            {"id": a, "status": "enabled", "precision": 10, "precision_display": 5}
            for a in sorted({p.base for p in self.fake.market.pairs.values()})
        ]
        self.push({"channel": "instrument", "type": "snapshot", "data": {"assets": assets, "pairs": pairs}})

    def _private_snapshot(self, channel: str, params: dict[str, Any]) -> None:
        market = self.fake.market
        if channel == "balances":
            balances = [
                {
                    "asset": a,
                    "asset_class": "currency",
                    "balance": trim(v),
                    "wallets": [{"type": "spot", "id": "main", "balance": trim(v)}],
                }
                for a, v in market.balances.items()
            ]
            self.push(
                {"channel": "balances", "type": "snapshot", "data": balances, "sequence": self._next_seq("balances")}
            )
            return
        data: list[dict[str, Any]] = []
        if params.get("snap_trades", False):
            for trade in sorted(market.trades.values(), key=lambda t: t.time_ns)[-50:]:
                order = market.orders[trade.ordertxid]
                data.append(
                    _trimmed(
                        {
                            "order_id": order.txid,
                            "exec_id": trade.txid,
                            "exec_type": "trade",
                            "trade_id": trade.trade_id,
                            "symbol": order.pair.ws_symbol,
                            "side": order.side,
                            "last_qty": trade.vol,
                            "last_price": trade.price,
                            "liquidity_ind": "m" if trade.maker else "t",
                            "cost": trade.cost,
                            "order_status": "filled",
                            "order_type": order.ordertype,
                            "fees": [{"asset": order.pair.quote, "qty": trade.fee}],
                            "timestamp": rfc3339(trade.time_ns),
                            **ids_of(order),
                        }
                    )
                )
        if params.get("snap_orders", True):
            for order in market.open_orders():
                entry: dict[str, Any] = {
                    "order_id": order.txid,
                    "symbol": order.pair.ws_symbol,
                    "order_qty": order.vol,
                    "cum_qty": order.vol_exec,
                    "side": order.side,
                    "order_type": order.ordertype,
                    "order_status": "partially_filled" if order.vol_exec else "new",
                    "time_in_force": "GTC",
                    "timestamp": rfc3339(order.opentm_ns),
                    **ids_of(order),
                }
                if order.price is not None:
                    entry["limit_price"] = order.price
                data.append(_trimmed(entry))
        self.push({"channel": "executions", "type": "snapshot", "data": data, "sequence": self._next_seq("executions")})

    def executions(self, reports: list[dict[str, Any]]) -> None:
        if "executions" in self.subs:
            self.push(
                {
                    "channel": "executions",
                    "type": "update",
                    "data": _trimmed(reports),
                    "sequence": self._next_seq("executions"),
                }
            )

    def ledger(self, entries: list[dict[str, Any]]) -> None:
        if "balances" in self.subs:
            self.push(
                {
                    "channel": "balances",
                    "type": "update",
                    "data": _trimmed(entries),
                    "sequence": self._next_seq("balances"),
                }
            )


def _diff(old: dict[Decimal, Decimal], new: dict[Decimal, Decimal], full: dict[Decimal, Decimal]) -> Levels:
    # Deletes first: inserting before deleting would make the client truncate a level it must keep.
    deletes = [(p, Decimal(0)) for p in old if p not in new and p not in full]
    changes = [(p, q) for p, q in new.items() if old.get(p) != q]
    return deletes + changes
