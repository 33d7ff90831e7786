"""REST private parsers on the documentation examples (REFERENCE.md §2 and the official OpenAPI examples)."""

import json
from decimal import Decimal
from typing import Any

import pytest

from engine.exchanges.kraken import (
    KrakenFatalError,
    KrakenProtocolError,
    normalize_balance_asset,
    parse_add_order,
    parse_balance,
    parse_balance_ex,
    parse_balance_ex_detail,
    parse_cancel,
    parse_cancel_all_after,
    parse_closed_orders,
    parse_open_orders,
    parse_query_orders,
    parse_trades_history,
    parse_ws_token,
    rfc3339_to_ns,
)

D = Decimal

OPEN_ORDERS = (
    '{"error":[],"result":{"open":{"OQCLML-BW3P3-BUCMWZ":{"refid":null,"userref":0,"status":"open",'
    '"opentm":1688666559.8974,"starttm":0,"expiretm":0,"descr":{"pair":"XBTUSD","type":"buy","ordertype":"limit",'
    '"price":"30010.0","price2":"0","leverage":"none","order":"buy 1.25000000 XBTUSD @ limit 30010.0",'
    '"close":""},'
    '"vol":"1.25000000","vol_exec":"0.37500000","cost":"11253.7","fee":"0.00000","price":"30010.0",'
    '"stopprice":"0.00000","limitprice":"0.00000","misc":"","oflags":"fciq","trades":["TCCCTY-WE2O6-P3NB37"]}}}}'
)

# krakenfx/api-specs examples/responses/user/orders/closed.yaml (first entry), as JSON.
CLOSED_ORDERS: dict[str, Any] = {
    "error": [],
    "result": {
        "closed": {
            "OT5JQ3-MNZQI-GDXY7O": {
                "refid": None,
                "userref": 1000,
                "status": "canceled",
                "reason": "User requested",
                "opentm": D("1550101012.7873"),
                "closetm": D("1550101338.364"),
                "starttm": 0,
                "expiretm": 0,
                "descr": {
                    "pair": "DASHUSD",
                    "type": "buy",
                    "ordertype": "limit",
                    "price": "1.000",
                    "price2": "0",
                    "leverage": "none",
                    "order": "buy 10.00000000 DASHUSD @ limit 1.000",
                    "close": "",
                },
                "vol": "10.00000000",
                "vol_exec": "0.00000000",
                "cost": "0.000000",
                "fee": "0.000000",
                "price": "0.000000",
                "stopprice": "0.000000",
                "limitprice": "0.000000",
                "misc": "",
                "oflags": "fciq",
            }
        },
        "count": 3,
    },
}


def test_balance_doc_example() -> None:
    balances = parse_balance(
        '{"error":[],"result":{"ZUSD":"171288.6158","XXBT":"1011.1908877900","USDT":"500000.00000000",'
        '"ETH2.S":"198.3970800000","XBT.M":"0.5"}}'
    )
    assert balances == {
        "USD": D("171288.6158"),
        "BTC": D("1011.19088779"),
        "USDT": D("500000"),
        "ETH2.S": D("198.39708"),
        "BTC.M": D("0.5"),
    }
    assert normalize_balance_asset("XXDG.F") == "DOGE.F"


def test_balance_ex_doc_example() -> None:
    text = (
        '{"error":[],"result":{"ZUSD":{"balance":25435.21,"hold_trade":8249.76},'
        '"XXBT":{"balance":1.24350000,"hold_trade":0.84230000}}}'
    )
    assert parse_balance_ex(text) == {"USD": D("17185.45"), "BTC": D("0.4012")}
    detail = parse_balance_ex_detail(
        '{"error":[],"result":{"ZUSD":{"balance":"100","credit":"10","credit_used":"4","hold_trade":"6"}}}'
    )["USD"]
    assert (detail.balance, detail.available) == (D("100"), D("100"))


def test_open_orders_doc_example() -> None:
    orders = parse_open_orders(OPEN_ORDERS)
    order = orders["OQCLML-BW3P3-BUCMWZ"]
    assert (order.txid, order.status, order.pair, order.side, order.ordertype) == (
        "OQCLML-BW3P3-BUCMWZ",
        "open",
        "XBTUSD",
        "buy",
        "limit",
    )
    assert (order.price, order.vol, order.vol_exec, order.cost) == (
        D("30010.0"),
        D("1.25"),
        D("0.375"),
        D("11253.7"),
    )
    assert order.opentm_ns == 1688666559_897400000 and order.closetm_ns is None
    assert order.trades == ("TCCCTY-WE2O6-P3NB37",)
    assert order.userref == 0 and order.cl_ord_id is None and order.oflags == "fciq"


def test_closed_and_query_orders_official_examples() -> None:
    closed = parse_closed_orders(CLOSED_ORDERS)
    assert closed.count == 3
    order = closed.orders["OT5JQ3-MNZQI-GDXY7O"]
    assert order.status == "canceled" and order.reason == "User requested" and order.userref == 1000
    assert order.closetm_ns == 1550101338_364000000
    assert order.avg_price == 0 and order.price == D("1.000")
    queried = parse_query_orders({"error": [], "result": CLOSED_ORDERS["result"]["closed"]})
    assert queried["OT5JQ3-MNZQI-GDXY7O"] == order


def test_trades_history_doc_example() -> None:
    text = (
        '{"error":[],"result":{"trades":{"THVRQM-33VKH-UCI7BS":{"ordertxid":"OQCLML-BW3P3-BUCMWZ",'
        '"postxid":"TKH2SE-M7IF5-CFI7LT","pair":"XXBTZUSD","time":1688667796.8802,"type":"buy","ordertype":"limit",'
        '"price":"30010.00000","cost":"600.20000","fee":"0.00000","vol":"0.02000000","margin":"0.00000","misc":"",'
        '"trade_id":40274859,"maker":true}},"count":1}}'
    )
    history = parse_trades_history(text)
    assert history.count == 1
    trade = history.trades["THVRQM-33VKH-UCI7BS"]
    assert (trade.ordertxid, trade.pair, trade.side, trade.maker, trade.trade_id) == (
        "OQCLML-BW3P3-BUCMWZ",
        "XXBTZUSD",
        "buy",
        True,
        40274859,
    )
    assert (trade.price, trade.cost, trade.fee, trade.vol) == (D("30010"), D("600.2"), D("0"), D("0.02"))
    assert trade.time_ns == 1688667796_880200000


def test_add_order_examples() -> None:
    simple = parse_add_order(
        '{"error":[],"result":{"descr":{"order":"buy 1.45 XBTUSD @ limit 27500.0"},"txid":["OU22CG-KLAF2-FWUDD7"]}}'
    )
    assert simple.txids == ("OU22CG-KLAF2-FWUDD7",) and simple.descr_close is None
    with_close = parse_add_order(
        '{"error":[],"result":{"descr":{"order":"buy 2.12340000 XBTUSD @ limit 25000.1 with 2:1 leverage",'
        '"close":"close position @ stop loss 22000.0 -> limit 21000.0"},"txid":["OUF4EM-FRGI2-MQMWZD"]}}'
    )
    assert with_close.descr_close == "close position @ stop loss 22000.0 -> limit 21000.0"
    validated = parse_add_order('{"error":[],"result":{"descr":{"order":"buy 5000.00000000 XDGUSD @ market"}}}')
    assert validated.txids == ()


def test_cancel_token_and_dead_mans_switch() -> None:
    assert parse_cancel('{"error":[],"result":{"count":1}}').count == 1
    assert parse_cancel({"error": [], "result": {"count": 2, "pending": True}}).pending
    token = parse_ws_token(
        '{"error":[],"result":{"token":"1Dwc4lzSwNWOAwkMdqhssNNFhs1ed606d1WcF3XfEMw","expires":900}}'
    )
    assert token.token.startswith("1Dwc") and token.expires_s == 900
    after = parse_cancel_all_after(
        '{"error":[],"result":{"currentTime":"2023-03-24T17:41:56Z","triggerTime":"2023-03-24T17:42:56Z"}}'
    )
    assert after.trigger_time_ns is not None
    assert after.trigger_time_ns - after.current_time_ns == 60 * 10**9
    assert after.current_time_ns == rfc3339_to_ns("2023-03-24T17:41:56Z")
    disabled = parse_cancel_all_after('{"error":[],"result":{"currentTime":"2023-03-24T17:41:56Z","triggerTime":"0"}}')
    assert disabled.trigger_time_ns is None


def test_private_errors_and_malformed() -> None:
    with pytest.raises(KrakenFatalError):
        parse_balance('{"error":["EAPI:Invalid key"]}')
    with pytest.raises(KrakenProtocolError, match=r"Balance\.ZUSD"):
        parse_balance('{"error":[],"result":{"ZUSD":"lots"}}')
    bad = json.loads(OPEN_ORDERS, parse_float=D)
    del bad["result"]["open"]["OQCLML-BW3P3-BUCMWZ"]["vol"]
    with pytest.raises(KrakenProtocolError, match=r"OpenOrders.open\[OQCLML-BW3P3-BUCMWZ\].vol: missing"):
        parse_open_orders(bad)
    with pytest.raises(KrakenProtocolError, match=r"trades\[T\].type: expected 'buy' or 'sell'"):
        parse_trades_history(
            {
                "error": [],
                "result": {"trades": {"T": {"ordertxid": "O", "pair": "P", "time": 1, "type": "hold"}}},
            }
        )
