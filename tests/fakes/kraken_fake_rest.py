"""The fake Kraken's REST API: routing, authentication, nonces, the call counter, faults and the endpoints.

Private calls are checked like Kraken does: ``API-Key`` known, ``API-Sign`` equal to the signature computed here
twice (with the engine's ``sign`` and independently with hmac/hashlib, so a bug in ``sign`` is not mirrored),
nonce strictly greater than the last one of the key (``EAPI:Invalid nonce``), and the per-key REST call counter
(``EAPI:Rate limit exceeded``). Answers use Kraken's envelope ``{"error": [...], "result": ...}``.
"""

import base64
import bisect
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from fakes.kraken_fake_http import HttpReply, HttpRequest
from fakes.kraken_fake_market import KRAKEN_CODE, FakeOrder, FakePair, FakeTrade, rfc3339, seconds

from engine.exchanges.kraken.protocol.signing import sign
from engine.exchanges.kraken.protocol.ws_requests import dumps

if TYPE_CHECKING:
    from fakes.kraken_fake import FakeKraken

__all__ = ["handle_rest", "order_json", "trade_json"]

Params = dict[str, Any]


def _ok(result: object) -> HttpReply:
    return HttpReply(body=dumps({"error": [], "result": result}).encode())


def _err(*errors: str) -> HttpReply:
    return HttpReply(body=dumps({"error": list(errors)}).encode())


def _s(value: Decimal) -> str:
    return format(value, "f")


def independent_signature(secret_b64: str, path: str, nonce: str, body: str) -> str:
    digest = hashlib.sha256((nonce + body).encode()).digest()
    mac = hmac.new(base64.b64decode(secret_b64), path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def order_json(order: FakeOrder, *, with_trades: bool = False) -> dict[str, Any]:
    pair = order.pair
    price = order.price if order.price is not None else Decimal(0)
    out: dict[str, Any] = {
        "refid": None,
        "userref": order.userref if order.userref is not None else 0,
        "status": order.status,
        "opentm": seconds(order.opentm_ns),
        "starttm": 0,
        "expiretm": 0 if order.expire_ns is None else seconds(order.expire_ns),
        "descr": {
            "pair": pair.altname,
            "type": order.side,
            "ordertype": order.ordertype,
            "price": _s(price),
            "price2": "0",
            "leverage": "none",
            "order": order.descr,
            "close": "",
        },
        "vol": _s(order.vol),
        "vol_exec": _s(order.vol_exec),
        "cost": _s(order.cost),
        "fee": _s(order.fee),
        "price": _s(order.cost / order.vol_exec if order.vol_exec else Decimal(0)),
        "stopprice": "0.00000",
        "limitprice": "0.00000",
        "misc": "",
        "oflags": "post,fciq" if order.post_only else "fciq",
    }
    if order.cl_ord_id is not None:
        out["cl_ord_id"] = order.cl_ord_id
    if order.closetm_ns is not None:
        out["closetm"] = seconds(order.closetm_ns)
        out["reason"] = order.reason
    if with_trades and order.trades:
        out["trades"] = list(order.trades)
    return out


def trade_json(trade: FakeTrade) -> dict[str, Any]:
    return {
        "ordertxid": trade.ordertxid,
        "postxid": "TKH2SE-M7IF5-CFI7LT",
        "pair": trade.pair.rest_name,
        "time": seconds(trade.time_ns),
        "type": trade.side,
        "ordertype": trade.ordertype,
        "price": _s(trade.price),
        "cost": _s(trade.cost),
        "fee": _s(trade.fee),
        "vol": _s(trade.vol),
        "margin": "0.00000",
        "misc": "",
        "trade_id": trade.trade_id,
        "maker": trade.maker,
    }


def _flag(params: Params, key: str) -> bool:
    value = params.get(key)
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _dec(params: Params, key: str) -> Decimal | None:
    value = params.get(key)
    return None if value is None else Decimal(str(value))


def _parse_body(request: HttpRequest) -> Params:
    text = request.body.decode()
    if request.headers.get("content-type", "").startswith("application/json"):
        loaded = json.loads(text, parse_float=Decimal)
        return dict(loaded) if isinstance(loaded, dict) else {}
    return dict(parse_qsl(text, keep_blank_values=True))


async def handle_rest(fake: "FakeKraken", request: HttpRequest) -> HttpReply:
    """Answer one HTTP request the way Kraken would (faults included)."""
    url = urlsplit(request.target)
    parts = url.path.strip("/").split("/")
    if len(parts) != 3 or parts[0] != "0" or parts[1] not in ("public", "private"):
        return HttpReply(status=404, body=b"not found", content_type="text/plain")
    endpoint = parts[2]
    fake.calls[endpoint] += 1
    fake.changed()
    await fake.hold(endpoint)
    faults = fake.faults
    status = faults.take(faults.http_status, endpoint)
    if status is not None:
        return HttpReply(status=status, body=f"error code: {status}".encode(), content_type="text/plain")
    delay = faults.delay_s.get(endpoint, faults.delay_s.get("*", 0.0))
    injected = faults.take(faults.errors, endpoint)
    if injected is not None:
        return _with_delay(_err(injected), delay)
    if parts[1] == "public":
        params: Params = dict(parse_qsl(url.query))
        handler = PUBLIC.get(endpoint)
        reply = _err("EGeneral:Unknown method") if handler is None else handler(fake, params)
        return _with_delay(reply, delay)
    params_or_error = _authenticate(fake, request, url.path, endpoint)
    if isinstance(params_or_error, HttpReply):
        return _with_delay(params_or_error, delay)
    private = PRIVATE.get(endpoint)
    if private is None:
        return _with_delay(_err("EGeneral:Unknown method"), delay)
    fake.market.expire_due()  # Kraken expires orders on its own clock, whatever is asked
    reply = private(fake, params_or_error)
    if endpoint == "AddOrder" and faults.lose_add_order_response > 0 and reply.body.startswith(b'{"error":[]'):
        faults.lose_add_order_response -= 1
        fake.lost_responses += 1
        if faults.lost_response_mode == "drop":
            return HttpReply(drop=True)
        return HttpReply(body=reply.body, delay_s=faults.lost_response_delay_s)
    return _with_delay(reply, delay)


def _with_delay(reply: HttpReply, delay: float) -> HttpReply:
    if not delay:
        return reply
    return HttpReply(reply.status, reply.body, reply.content_type, delay, reply.drop)


def _authenticate(fake: "FakeKraken", request: HttpRequest, path: str, endpoint: str) -> Params | HttpReply:
    key = request.headers.get("api-key")
    signature = request.headers.get("api-sign", "")
    if key != fake.api_key:
        return _err("EAPI:Invalid key")
    try:
        params = _parse_body(request)
    except ValueError:
        return _err("EGeneral:Invalid arguments")
    nonce = params.get("nonce")
    if nonce is None:
        return _err("EAPI:Invalid nonce")
    body = request.body.decode()
    expected = independent_signature(fake.api_secret, path, str(nonce), body)
    if signature != expected or signature != sign(fake.api_secret, path, str(nonce), body):
        fake.bad_signatures += 1
        return _err("EAPI:Invalid signature")
    value = int(str(nonce))
    if value <= fake.last_nonce.get(key, 0):
        return _err("EAPI:Invalid nonce")
    fake.last_nonce[key] = value
    now = fake.monotonic()
    if fake.counter.would_exceed(endpoint, now):
        fake.rate_limited += 1
        return _err("EAPI:Rate limit exceeded")
    fake.counter.record(endpoint, now)
    return params


# -- public endpoints -----------------------------------------------------------------------------------------


def _time(fake: "FakeKraken", params: Params) -> HttpReply:
    if "Time" in fake.captures:
        return HttpReply(body=fake.captures["Time"])
    now_s = fake.clock_ns() // 1_000_000_000 + fake.server_skew_s
    return _ok({"unixtime": now_s, "rfc1123": "Tue, 11 Nov 25 00:17:04 +0000"})


def _status(fake: "FakeKraken", params: Params) -> HttpReply:
    return _ok({"status": fake.system_status, "timestamp": rfc3339(fake.clock_ns())[:19] + "Z"})


def _asset_pairs(fake: "FakeKraken", params: Params) -> HttpReply:
    if "AssetPairs" in fake.captures:
        return HttpReply(body=fake.captures["AssetPairs"])
    wanted = [p for p in str(params.get("pair", "")).split(",") if p]
    result = {}
    for name in wanted or [p.altname for p in fake.market.pairs.values()]:
        pair = fake.market.pair(name)
        if pair is None:
            return _err("EQuery:Unknown asset pair")
        result[pair.rest_name] = pair.info
    return _ok(result)


def _assets(fake: "FakeKraken", params: Params) -> HttpReply:
    """Every asset the fake's pairs name, in Kraken's format (asset id → entry), unless a capture is served."""
    if "Assets" in fake.captures:
        return HttpReply(body=fake.captures["Assets"])
    legacy = {"XXBT": "XBT", "XXDG": "XDG", "ZUSD": "USD", "ZEUR": "EUR", "XETH": "ETH"}
    result: dict[str, Any] = {}
    for pair in fake.market.pairs.values():
        for asset_id in (str(pair.info["base"]), str(pair.info["quote"])):
            altname = legacy.get(asset_id, asset_id)
            result[asset_id] = {"aclass": "currency", "altname": altname, "decimals": 8, "status": "enabled"}
    return _ok(result)


def _captured_or(fake: "FakeKraken", endpoint: str, params: Params) -> HttpReply | None:
    if endpoint in fake.captures:
        return HttpReply(body=fake.captures[endpoint])
    pair = fake.market.pair(str(params.get("pair", "")))
    return _err("EQuery:Unknown asset pair") if pair is None else None


def _ticker(fake: "FakeKraken", params: Params) -> HttpReply:
    """One pair, several (``pair=A,B``) or, with no ``pair``, every pair, as Kraken answers."""
    if "Ticker" in fake.captures:
        return HttpReply(body=fake.captures["Ticker"])
    wanted = [p for p in str(params.get("pair", "")).split(",") if p]
    result = {}
    for name in wanted or list(fake.market.pairs):
        pair = fake.market.pair(name)
        if pair is None:
            return _err("EQuery:Unknown asset pair")
        result[pair.rest_name] = _ticker_entry(fake, pair)
    return _ok(result)


def _ticker_entry(fake: "FakeKraken", pair: FakePair) -> dict[str, Any]:
    """The best levels of the fake's book, its last price, and the 24 h figures of the public trades published in
    the last 24 hours of the fake's clock (zeros when there are none); "today" is given the same figures."""
    bid = fake.market.levels(pair.altname, "bids", 1) or [(Decimal(0), Decimal(0))]
    ask = fake.market.levels(pair.altname, "asks", 1) or [(Decimal(0), Decimal(0))]
    last = fake.market.last_price.get(pair.altname, Decimal(0))
    since = fake.clock_ns() - 86_400 * 1_000_000_000
    recent = [t for t in fake.market.public_trades[pair.altname] if t["ts_ns"] > since]
    volume = sum((t["qty"] for t in recent), Decimal(0))
    vwap = sum((t["qty"] * t["price"] for t in recent), Decimal(0)) / volume if volume else Decimal(0)
    low = min((t["price"] for t in recent), default=Decimal(0))
    high = max((t["price"] for t in recent), default=Decimal(0))
    return {
        "a": [_s(ask[0][0]), "1", _s(ask[0][1])],
        "b": [_s(bid[0][0]), "1", _s(bid[0][1])],
        "c": [_s(last), "0.001"],
        "v": [_s(volume), _s(volume)],
        "p": [_s(vwap), _s(vwap)],
        "t": [len(recent), len(recent)],
        "l": [_s(low), _s(low)],
        "h": [_s(high), _s(high)],
        "o": _s(recent[0]["price"]) if recent else "0",
    }


def _depth(fake: "FakeKraken", params: Params) -> HttpReply:
    reply = _captured_or(fake, "Depth", params)
    if reply is not None:
        return reply
    pair = fake.market.pair(str(params["pair"]))
    assert pair is not None
    count = int(params.get("count", 100))
    ts = fake.clock_ns() // 1_000_000_000

    def side(name: str) -> list[list[object]]:
        return [[_s(p), _s(q), ts] for p, q in fake.market.levels(pair.altname, name, count)]

    return _ok({pair.rest_name: {"asks": side("asks"), "bids": side("bids")}})


def _ohlc(fake: "FakeKraken", params: Params) -> HttpReply:
    reply = _captured_or(fake, "OHLC", params)
    if reply is not None:
        return reply
    pair = fake.market.pair(str(params["pair"]))
    assert pair is not None
    rows = []
    for c in fake.market.candles.get((pair.altname, int(params.get("interval", 1))), []):
        begin = c["begin_ns"] // 1_000_000_000
        rows.append(
            [
                begin,
                _s(c["open"]),
                _s(c["high"]),
                _s(c["low"]),
                _s(c["close"]),
                _s(c["vwap"]),
                _s(c["volume"]),
                c["trades"],
            ]
        )
    return _ok({pair.rest_name: rows, "last": rows[-1][0] if rows else 0})


def _trades(fake: "FakeKraken", params: Params) -> HttpReply:
    reply = _captured_or(fake, "Trades", params)
    if reply is not None:
        return reply
    pair = fake.market.pair(str(params["pair"]))
    assert pair is not None
    trades = fake.market.public_trades[pair.altname]
    if "since" in params or "count" in params:
        return _trades_page(pair, trades, params)
    rows = [
        [_s(t["price"]), _s(t["qty"]), seconds(t["ts_ns"]), t["side"][0], "l", "", t["trade_id"]]
        for t in fake.market.public_trades[pair.altname]
    ]
    last = str(fake.market.public_trades[pair.altname][-1]["ts_ns"]) if rows else "0"
    return _ok({pair.rest_name: rows, "last": last})


TRADES_PAGE_MAX = 1000


def _trades_page(pair: FakePair, trades: list[dict[str, Any]], params: Params) -> HttpReply:
    """Kraken's paging: up to ``count`` (at most 1000) trades strictly after ``since`` (nanoseconds, or seconds
    when it is small, as Kraken reads it), oldest first; ``last`` is the newest one's time in ns (``since`` itself
    when none is newer), the ``since`` of the next page."""
    try:
        since = int(str(params.get("since", "0")))
        count = int(str(params.get("count", TRADES_PAGE_MAX)))
    except ValueError:
        return _err("EGeneral:Invalid arguments")
    if not 1 <= count <= TRADES_PAGE_MAX:
        return _err("EGeneral:Invalid arguments:count")
    since_ns = since * 1_000_000_000 if since < 10**12 else since
    first = bisect.bisect_right([t["ts_ns"] for t in trades], since_ns)
    page = trades[first : first + count]
    rows = [[_s(t["price"]), _s(t["qty"]), seconds(t["ts_ns"]), t["side"][0], "l", "", t["trade_id"]] for t in page]
    last = str(page[-1]["ts_ns"]) if page else str(since_ns)
    return _ok({pair.rest_name: rows, "last": last})


PUBLIC: Mapping[str, Callable[["FakeKraken", Params], HttpReply]] = {
    "Time": _time,
    "SystemStatus": _status,
    "AssetPairs": _asset_pairs,
    "Assets": _assets,
    "Ticker": _ticker,
    "Depth": _depth,
    "OHLC": _ohlc,
    "Trades": _trades,
}

# -- private endpoints ----------------------------------------------------------------------------------------


def _trade_volume(fake: "FakeKraken", params: Params) -> HttpReply:
    """The account's 30-day volume (``fake.fee_volume``, USD) and, per pair asked for, the fee of the tier it
    reaches in the pair's own fee arrays (Kraken's published schedule when they are empty)."""
    volume = Decimal(str(getattr(fake, "fee_volume", "0")))
    published = {
        "fees": [[0, "0.40"], [10000, "0.35"], [50000, "0.24"]],
        "fees_maker": [[0, "0.25"], [10000, "0.20"], [50000, "0.14"]],
    }
    result: dict[str, Any] = {"currency": "ZUSD", "volume": _s(volume)}
    wanted = [p for p in str(params.get("pair", "")).split(",") if p]
    if wanted:
        result["fees"], result["fees_maker"] = {}, {}
    for name in wanted:
        pair = fake.market.pair(name)
        if pair is None:
            return _err("EQuery:Unknown asset pair")
        for key in ("fees", "fees_maker"):
            tiers = pair.info.get(key) or published[key]
            fee = [Decimal(str(p)) for v, p in tiers if Decimal(str(v)) <= volume][-1]
            result[key][pair.rest_name] = {"fee": f"{fee:.4f}", "minfee": "0.1000", "maxfee": "0.4000"}
    return _ok(result)


def _balance(fake: "FakeKraken", params: Params) -> HttpReply:
    return _ok({KRAKEN_CODE.get(a, a): _s(v) for a, v in fake.market.balances.items()})


def _balance_ex(fake: "FakeKraken", params: Params) -> HttpReply:
    market = fake.market
    return _ok(
        {
            KRAKEN_CODE.get(a, a): {"balance": _s(v), "hold_trade": _s(market.held(a))}
            for a, v in market.balances.items()
        }
    )


def _add_order(fake: "FakeKraken", params: Params) -> HttpReply:
    if fake.system_status in ("maintenance", "cancel_only"):
        return _err(f"EService:Market in {fake.system_status} mode")
    oflags = str(params.get("oflags", "") or "")
    expiry = _expiretm(fake, params.get("expiretm"))
    if isinstance(expiry, str):
        return _err(expiry)
    result = fake.market.place(
        pair_name=str(params.get("pair", "")),
        side=str(params.get("type", "")),
        ordertype=str(params.get("ordertype", "")),
        vol=_dec(params, "volume") or Decimal(0),
        price=_dec(params, "price"),
        cl_ord_id=params.get("cl_ord_id"),
        post_only="post" in oflags.split(","),
        validate=_flag(params, "validate"),
        time_in_force=str(params.get("timeinforce") or "GTC"),
        expire_ns=expiry,
    )
    if result.error is not None:
        return _err(result.error)
    out: dict[str, Any] = {"descr": {"order": result.descr}}
    if result.order is not None:
        out["txid"] = [result.order.txid]
    fake.changed()
    return _ok(out)


def _expiretm(fake: "FakeKraken", value: object) -> int | str | None:
    """AddOrder's ``expiretm`` in ns: ``0`` none, ``<n>`` a UNIX timestamp, ``+<n>`` seconds from now (at least
    5); or the error for anything else."""
    text = "0" if value is None else str(value).strip()
    try:
        if text.startswith("+"):
            ahead = int(text[1:])
            return "EGeneral:Invalid arguments:expiretm" if ahead < 5 else fake.clock_ns() + ahead * 1_000_000_000
        moment = Decimal(text)
    except (ValueError, ArithmeticError):
        return "EGeneral:Invalid arguments:expiretm"
    return None if moment == 0 else int(moment.scaleb(9))


def _find(fake: "FakeKraken", params: Params) -> FakeOrder | None:
    txid = params.get("txid")
    cl_ord_id = params.get("cl_ord_id")
    if txid is not None:
        return fake.market.find(txid=str(txid))
    return fake.market.find(cl_ord_id=str(cl_ord_id)) if cl_ord_id is not None else None


def _cancel_order(fake: "FakeKraken", params: Params) -> HttpReply:
    order = _find(fake, params)
    if order is None or order.status != "open":
        return _err("EOrder:Unknown order")
    fake.market.cancel(order)
    fake.changed()
    return _ok({"count": 1})


def _cancel_all(fake: "FakeKraken", params: Params) -> HttpReply:
    count = fake.market.cancel_all()
    fake.changed()
    return _ok({"count": count})


def _cancel_after(fake: "FakeKraken", params: Params) -> HttpReply:
    timeout = int(str(params.get("timeout", "0")))
    now = fake.clock_ns()
    trigger = fake.arm_dead_man_switch(timeout)
    return _ok({"currentTime": rfc3339(now)[:19] + "Z", "triggerTime": rfc3339(trigger)[:19] + "Z" if trigger else "0"})


def _orders_where(fake: "FakeKraken", params: Params, statuses: tuple[str, ...]) -> list[FakeOrder]:
    cl_ord_id = params.get("cl_ord_id")
    start = params.get("start")
    orders = [o for o in fake.market.orders.values() if o.status in statuses]
    if cl_ord_id is not None:
        orders = [o for o in orders if o.cl_ord_id == str(cl_ord_id)]
    if start is not None:
        start_ns = int(Decimal(str(start)) * 1_000_000_000)
        orders = [o for o in orders if (o.closetm_ns or o.opentm_ns) > start_ns]
    return sorted(orders, key=lambda o: o.closetm_ns or o.opentm_ns, reverse=True)


def _open_orders(fake: "FakeKraken", params: Params) -> HttpReply:
    trades = _flag(params, "trades")
    orders = _orders_where(fake, params, ("open", "pending"))
    return _ok({"open": {o.txid: order_json(o, with_trades=trades) for o in orders}})


def _closed_orders(fake: "FakeKraken", params: Params) -> HttpReply:
    trades = _flag(params, "trades")
    orders = _orders_where(fake, params, ("closed", "canceled", "expired"))
    ofs = int(params.get("ofs", 0) or 0)
    page = orders[ofs : ofs + 50]
    return _ok({"closed": {o.txid: order_json(o, with_trades=trades) for o in page}, "count": len(orders)})


def _query_orders(fake: "FakeKraken", params: Params) -> HttpReply:
    trades = _flag(params, "trades")
    wanted = [t for t in str(params.get("txid", "")).split(",") if t]
    found = {t: order_json(fake.market.orders[t], with_trades=trades) for t in wanted if t in fake.market.orders}
    return _ok(found)


def _trades_history(fake: "FakeKraken", params: Params) -> HttpReply:
    trades = sorted(fake.market.trades.values(), key=lambda t: t.time_ns, reverse=True)
    start = params.get("start")
    if start is not None:
        start_ns = int(Decimal(str(start)) * 1_000_000_000)
        trades = [t for t in trades if t.time_ns > start_ns]
    ofs = int(params.get("ofs", 0) or 0)
    page = trades[ofs : ofs + 50]
    return _ok({"trades": {t.txid: trade_json(t) for t in page}, "count": len(trades)})


def _ws_token(fake: "FakeKraken", params: Params) -> HttpReply:
    return _ok({"token": fake.issue_token(), "expires": 900})


PRIVATE: Mapping[str, Callable[["FakeKraken", Params], HttpReply]] = {
    "Balance": _balance,
    "TradeVolume": _trade_volume,
    "BalanceEx": _balance_ex,
    "AddOrder": _add_order,
    "CancelOrder": _cancel_order,
    "CancelAll": _cancel_all,
    "CancelAllOrdersAfter": _cancel_after,
    "OpenOrders": _open_orders,
    "ClosedOrders": _closed_orders,
    "QueryOrders": _query_orders,
    "TradesHistory": _trades_history,
    "GetWebSocketsToken": _ws_token,
}
