"""WS v2 codec: the exact documentation examples (REFERENCE.md §4) decode and encode."""

import json
from decimal import Decimal
from typing import Any

import pytest

from engine.domain.market_data import Candle, Ticker, TradeTick
from engine.exchanges.kraken import (
    BalancesMsg,
    BookMsg,
    ExecutionsMsg,
    Heartbeat,
    InstrumentMsg,
    KrakenProtocolError,
    KrakenUserError,
    MethodResponse,
    OhlcMsg,
    Pong,
    Status,
    SubscribeAck,
    TickerMsg,
    TradeMsg,
    UnknownMessage,
    add_order,
    amend_order,
    batch_add,
    batch_cancel,
    cancel_all,
    cancel_all_orders_after,
    cancel_order,
    decode,
    dumps,
    edit_order,
    ping,
    rfc3339_to_ns,
    subscribe_balances,
    subscribe_book,
    subscribe_executions,
    subscribe_instrument,
    subscribe_ohlc,
    subscribe_ticker,
    subscribe_trade,
    unsubscribe,
)

D = Decimal
TOKEN = "G38a1tGFzqGiUCmnegBcm8d4nfP3tytiNQz6tkCBYXY"


def _exact(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def test_status() -> None:
    msg = decode(
        '{"channel":"status","data":[{"api_version":"v2","connection_id":13834774380200032777,'
        '"system":"online","version":"2.0.0"}],"type":"update"}'
    )
    assert msg == Status(system="online", api_version="v2", connection_id=13834774380200032777, version="2.0.0")


def test_heartbeat_and_ping_pong() -> None:
    assert decode('{"channel":"heartbeat"}') == Heartbeat()
    assert ping(101) == '{"method":"ping","req_id":101}'
    msg = decode(
        '{"method":"pong","req_id":101,"time_in":"2023-09-24T14:10:23.799685Z","time_out":"2023-09-24T14:10:23.799703Z"}'
    )
    assert msg == Pong(101, rfc3339_to_ns("2023-09-24T14:10:23.799685Z"), rfc3339_to_ns("2023-09-24T14:10:23.799703Z"))
    assert isinstance(msg, Pong) and msg.time_in_ns == 1695564623_799685000


def test_ticker_snapshot_and_ack() -> None:
    msg = decode(
        '{"channel":"ticker","type":"snapshot","data":[{"symbol":"ALGO/USD","bid":0.10025,"bid_qty":740.0,'
        '"ask":0.10036,"ask_qty":1361.44813783,"last":0.10035,"volume":997038.98383185,"vwap":0.10148,'
        '"low":0.09979,"high":0.10285,"change":-0.00017,"change_pct":-0.17,"timestamp":"2023-09-25T09:04:31.742648Z"}]}',
        {"ALGO/USD": "ALGOUSD"},
    )
    assert msg == TickerMsg(
        "snapshot",
        (
            Ticker(
                pair="ALGOUSD",
                ts_ns=rfc3339_to_ns("2023-09-25T09:04:31.742648Z"),
                bid=D("0.10025"),
                bid_qty=D("740.0"),
                ask=D("0.10036"),
                ask_qty=D("1361.44813783"),
                last=D("0.10035"),
            ),
        ),
    )
    ack = decode(
        '{"method":"subscribe","result":{"channel":"ticker","snapshot":true,"symbol":"ALGO/USD"},"success":true,'
        '"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}'
    )
    assert isinstance(ack, SubscribeAck)
    assert (ack.method, ack.success, ack.channel, ack.symbol, ack.req_id) == (
        "subscribe",
        True,
        "ticker",
        "ALGO/USD",
        None,
    )
    assert ack.exception() is None


def test_subscribe_rejection() -> None:
    ack = decode(
        '{"error":"Currency pair not supported XBT/USD","method":"subscribe","success":false,'
        '"symbol":"XBT/USD",'
        '"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}'
    )
    assert isinstance(ack, SubscribeAck)
    assert not ack.success and ack.symbol == "XBT/USD" and ack.channel is None
    assert isinstance(ack.exception(), KrakenUserError)


def test_book_ack_and_update() -> None:
    ack = decode(
        '{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"ALGO/USD"},'
        '"success":true,"time_in":"2023-10-06T17:35:55.440295Z","time_out":"2023-10-06T17:35:55.440296Z"}'
    )
    assert isinstance(ack, SubscribeAck) and ack.result["depth"] == 10
    msg = decode(
        '{"channel":"book","type":"update","data":[{"symbol":"MATIC/USD","bids":[{"price":0.5657,"qty":1098.3947558}],'
        '"asks":[],"checksum":2114181697,"timestamp":"2023-10-06T17:35:55.440295Z"}]}'
    )
    assert isinstance(msg, BookMsg) and msg.type == "update"
    (entry,) = msg.books
    assert entry.symbol == "MATIC/USD"
    assert entry.bids == [(D("0.5657"), D("1098.3947558"))]
    assert entry.asks == []
    assert entry.checksum == 2114181697
    assert entry.ts_ns == 1696613755_440295000


def test_book_integer_numbers_become_decimals() -> None:
    msg = decode(
        '{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":45000,"qty":1}],'
        '"asks":[{"price":45001.5,"qty":0}],"checksum":1}]}'
    )
    assert isinstance(msg, BookMsg)
    price, qty = msg.books[0].bids[0]
    assert type(price) is Decimal and type(qty) is Decimal and price == 45000
    assert msg.books[0].ts_ns is None


def test_trade_update() -> None:
    msg = decode(
        '{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"sell","price":0.5117,"qty":40.0,'
        '"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"}]}'
    )
    assert msg == TradeMsg(
        "update",
        (
            TradeTick(
                "MATIC/USD",
                rfc3339_to_ns("2023-09-25T07:49:37.708706Z"),
                D("0.5117"),
                D("40.0"),
                "sell",
                4665906,
            ),
        ),
    )


def test_ohlc_update_with_nine_digit_timestamps() -> None:
    msg = decode(
        '{"channel":"ohlc","type":"update","timestamp":"2023-10-04T16:26:30.524394914Z","data":[{"symbol":"MATIC/USD",'
        '"open":0.5624,"high":0.5628,"low":0.5622,"close":0.5627,"trades":12,"volume":30927.68066226,"vwap":0.5626,'
        '"interval_begin":"2023-10-04T16:25:00.000000000Z","interval":5,"timestamp":"2023-10-04T16:30:00.000000Z"}]}'
    )
    assert msg == OhlcMsg(
        "update",
        (
            Candle(
                pair="MATIC/USD",
                ts_ns=1696436700_000000000,
                interval_s=300,
                open=D("0.5624"),
                high=D("0.5628"),
                low=D("0.5622"),
                close=D("0.5627"),
                volume=D("30927.68066226"),
                trades=12,
            ),
        ),
    )
    assert rfc3339_to_ns("2023-10-04T16:26:30.524394914Z") == 1696436790_524394914


def test_rfc3339_variants() -> None:
    assert rfc3339_to_ns("1970-01-01T00:00:00Z") == 0
    assert rfc3339_to_ns("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert rfc3339_to_ns("1970-01-01T01:00:00+01:00") == 0
    assert rfc3339_to_ns("1970-01-01T00:00:00.000000001-00:30") == 1800 * 10**9 + 1
    for bad in (
        "2023-10-04",
        "2023-10-04T16:26:30",
        "2023-10-04T16:26:30.1234567891Z",
        "2023-13-04T16:26:30Z",
    ):
        with pytest.raises(ValueError):
            rfc3339_to_ns(bad)


def test_instrument() -> None:
    assert _exact(subscribe_instrument(req_id=79)) == {
        "method": "subscribe",
        "params": {"channel": "instrument"},
        "req_id": 79,
    }
    msg = decode(
        '{"channel":"instrument","type":"snapshot","data":{"assets":[{"id":"BTC","status":"enabled","precision":10,'
        '"precision_display":5,"borrowable":true,"collateral_value":1.0,"margin_rate":0.01}],'
        '"pairs":[{"symbol":"BTC/USD","base":"BTC","quote":"USD","status":"online","qty_precision":8,'
        '"qty_increment":1e-08,"price_precision":1,"cost_precision":5,"marginable":true,"has_index":true,'
        '"cost_min":0.5,"margin_initial":0.2,"position_limit_long":250,"position_limit_short":200,'
        '"tick_size":0.1,"price_increment":0.1,"qty_min":0.0001}]}}'
    )
    assert isinstance(msg, InstrumentMsg)
    (pair,) = msg.pairs
    assert (pair.symbol, pair.price_precision, pair.qty_precision, pair.cost_precision) == (
        "BTC/USD",
        1,
        8,
        5,
    )
    assert pair.qty_increment == D("0.00000001")
    assert (pair.price_increment, pair.qty_min, pair.cost_min) == (D("0.1"), D("0.0001"), D("0.5"))
    assert msg.assets[0].id == "BTC" and msg.assets[0].precision == 10


def test_executions_trade_report() -> None:
    msg = decode(
        '{"channel":"executions","type":"update","data":[{"order_id":"OK4GJX-KSTLS-7DZZO5","exec_id":"TGBB7L-HT5LX-J3BZ4A",'
        '"exec_type":"trade","trade_id":62887576,"symbol":"BTC/USD","side":"sell","last_qty":0.005,"last_price":26599.9,'
        '"liquidity_ind":"t","cost":132.9995,"order_status":"partially_filled","cum_qty":0.005,"cum_cost":132.9995,'
        '"avg_price":26599.9,"fee_usd_equiv":0.3458,"fees":[{"asset":"USD","qty":0.3458}],'
        '"timestamp":"2023-09-22T10:33:05.709993Z"}],"sequence":10}'
    )
    assert isinstance(msg, ExecutionsMsg) and msg.sequence == 10
    (r,) = msg.reports
    assert (r.order_id, r.exec_type, r.order_status, r.trade_id) == (
        "OK4GJX-KSTLS-7DZZO5",
        "trade",
        "partially_filled",
        62887576,
    )
    assert (r.last_qty, r.last_price, r.cost, r.cum_qty) == (
        D("0.005"),
        D("26599.9"),
        D("132.9995"),
        D("0.005"),
    )
    assert r.side == "sell" and r.liquidity_ind == "t" and r.exec_id == "TGBB7L-HT5LX-J3BZ4A"
    assert r.fees[0].asset == "USD" and r.fees[0].qty == D("0.3458")
    assert r.ts_ns == rfc3339_to_ns("2023-09-22T10:33:05.709993Z")
    assert r.order_qty is None and r.cl_ord_id is None


def test_balances_snapshot_and_ledger_updates() -> None:
    snap = decode(
        '{"channel":"balances","type":"snapshot","data":[{"asset":"BTC","asset_class":"currency","balance":1.2,'
        '"wallets":[{"type":"spot","id":"main","balance":1.2}]}],"sequence":1}'
    )
    assert isinstance(snap, BalancesMsg) and snap.sequence == 1
    assert snap.balances[0].asset == "BTC" and snap.balances[0].wallets[0].balance == D("1.2")
    upd = decode(
        '{"channel":"balances","type":"update","data":[{"ledger_id":"DATKX6-PEHL1-HZKND8","ref_id":"LKAKN2-N0N4T-AFQGDK",'
        '"timestamp":"2023-09-22T10:33:05.709950Z","type":"trade","asset":"USD","asset_class":"currency",'
        '"category":"trade","wallet_type":"spot","wallet_id":"main","amount":132.9995,"fee":0.3458,'
        '"balance":1132.6537}],"sequence":10}'
    )
    assert isinstance(upd, BalancesMsg) and upd.sequence == 10 and upd.balances == ()
    (entry,) = upd.ledger
    assert (entry.asset, entry.amount, entry.fee, entry.balance) == (
        "USD",
        D("132.9995"),
        D("0.3458"),
        D("1132.6537"),
    )


def test_subscription_builders() -> None:
    assert _exact(subscribe_book(["BTC/USD"], depth=10, req_id=1)) == {
        "method": "subscribe",
        "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 10},
        "req_id": 1,
    }
    assert _exact(subscribe_ticker(["ALGO/USD"], event_trigger="bbo"))["params"] == {
        "channel": "ticker",
        "symbol": ["ALGO/USD"],
        "event_trigger": "bbo",
    }
    assert _exact(subscribe_trade(["BTC/USD"], snapshot=True))["params"]["snapshot"] is True
    assert _exact(subscribe_ohlc(["BTC/USD"], interval=5))["params"]["interval"] == 5
    assert _exact(subscribe_executions(TOKEN, snap_trades=True))["params"] == {
        "channel": "executions",
        "token": TOKEN,
        "snap_trades": True,
    }
    assert _exact(subscribe_balances(TOKEN))["params"] == {"channel": "balances", "token": TOKEN}
    assert _exact(unsubscribe("book", symbols=["BTC/USD"], depth=10, req_id=2)) == {
        "method": "unsubscribe",
        "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 10},
        "req_id": 2,
    }
    with pytest.raises(ValueError):
        subscribe_book(["BTC/USD"], depth=7)
    with pytest.raises(ValueError):
        subscribe_ohlc(["BTC/USD"], interval=2)


def test_add_order_round_trip() -> None:
    doc = (
        '{"method":"add_order","params":{"order_type":"limit","side":"buy","limit_price":26500.4,'
        '"order_userref":100054,"order_qty":1.2,"symbol":"BTC/USD","token":"' + TOKEN + '"},"req_id":123456789}'
    )
    text = add_order(
        TOKEN,
        symbol="BTC/USD",
        side="buy",
        order_type="limit",
        order_qty=D("1.2"),
        limit_price=D("26500.4"),
        order_userref=100054,
        req_id=123456789,
    )
    assert _exact(text) == _exact(doc)
    assert '"limit_price":26500.4' in text  # a bare JSON number, not a string
    ok = decode(
        '{"method":"add_order","req_id":123456789,"result":{"order_id":"AA5JGQ-SBMRC-SCJ7J7","order_userref":100054},'
        '"success":true,"time_in":"2023-09-21T14:15:07.197274Z","time_out":"2023-09-21T14:15:07.205301Z"}'
    )
    assert isinstance(ok, MethodResponse)
    assert ok.success and ok.req_id == 123456789 and ok.result["order_id"] == "AA5JGQ-SBMRC-SCJ7J7"
    assert ok.exception() is None
    failed = decode(
        '{"error":"EOrder:Insufficient funds","method":"add_order","req_id":123456789,"success":false,'
        '"time_in":"2023-09-21T14:15:07.197274Z","time_out":"2023-09-21T14:15:07.205301Z"}'
    )
    assert isinstance(failed, MethodResponse) and failed.error == "EOrder:Insufficient funds"
    assert isinstance(failed.exception(), KrakenUserError)
    with pytest.raises(ValueError):
        add_order(TOKEN, symbol="X", side="buy", order_type="market", order_qty=D(1), cl_ord_id="a", order_userref=1)


def test_amend_edit_cancel_round_trips() -> None:
    amend = amend_order(TOKEN, order_id="OAIYAU-LGI3M-PFM5VW", order_qty=D("1.5"), limit_price=D("29900"))
    assert _exact(amend)["params"] == {
        "order_id": "OAIYAU-LGI3M-PFM5VW",
        "order_qty": D("1.5"),
        "limit_price": D("29900"),
        "token": TOKEN,
    }
    with pytest.raises(ValueError):
        amend_order(TOKEN, order_qty=D(1))
    amended = decode(
        '{"method":"amend_order","result":{"amend_id":"TTW6PD-RC36L-ZZSWNU","cl_ord_id":"2c6be801-1f53-4f79-a0bb-'
        '4ea1c95dfae9"},"success":true,"time_in":"2024-07-26T13:39:04.922699Z","time_out":"2024-07-26T13:39:04.924912Z"}'
    )
    assert isinstance(amended, MethodResponse) and amended.result["amend_id"] == "TTW6PD-RC36L-ZZSWNU"
    edit = edit_order(
        "...",
        order_id="ORDERX-IDXXX-XXXXX1",
        order_qty=D("0.2123456789"),
        symbol="BTC/USD",
        req_id=1234567890,
    )
    assert _exact(edit) == _exact(
        '{"method":"edit_order","params":{"order_id":"ORDERX-IDXXX-XXXXX1","order_qty":0.2123456789,'
        '"symbol":"BTC/USD","token":"..."},"req_id":1234567890}'
    )
    assert _exact(cancel_order(TOKEN, order_ids=["OLUMT4-UTEGU-ZYM7E9"], req_id=123456789)) == {
        "method": "cancel_order",
        "params": {"order_id": ["OLUMT4-UTEGU-ZYM7E9"], "token": TOKEN},
        "req_id": 123456789,
    }
    with pytest.raises(ValueError):
        cancel_order(TOKEN)
    canceled = decode(
        '{"method":"cancel_order","req_id":123456789,"result":{"order_id":"OLUMT4-UTEGU-ZYM7E9"},"success":true,'
        '"time_in":"2023-09-21T14:36:57.428972Z","time_out":"2023-09-21T14:36:57.437952Z"}'
    )
    assert isinstance(canceled, MethodResponse) and canceled.result == {"order_id": "OLUMT4-UTEGU-ZYM7E9"}


def test_cancel_all_and_dead_mans_switch() -> None:
    assert cancel_all("...", req_id=1234567890) == (
        '{"method":"cancel_all","params":{"token":"..."},"req_id":1234567890}'
    )
    assert cancel_all_orders_after("...", 100, req_id=1234567890) == (
        '{"method":"cancel_all_orders_after","params":{"timeout":100,"token":"..."},"req_id":1234567890}'
    )
    with pytest.raises(ValueError):
        cancel_all_orders_after("...", 86400)
    msg = decode(
        '{"method":"cancel_all_orders_after","req_id":1234567890,"result":{"currentTime":"2023-09-21T15:49:29Z",'
        '"triggerTime":"2023-09-21T15:51:09Z"},"success":true,"time_in":"2023-09-21T15:49:28.627900Z",'
        '"time_out":"2023-09-21T15:49:28.649057Z"}'
    )
    assert isinstance(msg, MethodResponse) and msg.result["triggerTime"] == "2023-09-21T15:51:09Z"


def test_batch_add_round_trip() -> None:
    doc = (
        '{"method":"batch_add","params":{"deadline":"2022-06-13T08:09:10.123456Z","orders":[{"limit_price":1010.10,'
        '"order_qty":0.123456789,"order_type":"limit","order_userref":1,"side":"buy"},{"limit_price":2020.20,'
        '"order_qty":0.987654321,"order_type":"limit","order_userref":2,"side":"sell","stp_type":"cancel_both"}],'
        '"symbol":"BTC/USD","token":"...","validate":false},"req_id":1234567890}'
    )
    orders = [
        {
            "limit_price": D("1010.10"),
            "order_qty": D("0.123456789"),
            "order_type": "limit",
            "order_userref": 1,
            "side": "buy",
        },
        {
            "limit_price": D("2020.20"),
            "order_qty": D("0.987654321"),
            "order_type": "limit",
            "order_userref": 2,
            "side": "sell",
            "stp_type": "cancel_both",
        },
    ]
    text = batch_add(
        "...",
        symbol="BTC/USD",
        orders=orders,
        deadline="2022-06-13T08:09:10.123456Z",
        validate=False,
        req_id=1234567890,
    )
    assert text == doc  # same key order as the doc, so byte-identical
    with pytest.raises(ValueError):
        batch_add("...", symbol="BTC/USD", orders=orders[:1])
    msg = decode(
        '{"method":"batch_add","req_id":1234567890,"result":[{"order_id":"ORDERX-IDXXX-XXXXX1","order_userref":1},'
        '{"order_id":"ORDERX-IDXXX-XXXXX2","order_userref":2}],"success":true,'
        '"time_in":"2022-06-13T08:09:10.123456Z","time_out":"2022-06-13T08:09:10.789012Z"}'
    )
    assert isinstance(msg, MethodResponse) and [o["order_userref"] for o in msg.result] == [1, 2]
    assert _exact(batch_cancel("...", orders=["A", "B"]))["params"]["orders"] == ["A", "B"]


def test_dumps_is_exact_and_refuses_floats() -> None:
    assert dumps({"a": D("1E-8"), "b": [True, None, 'x"y'], "c": D("-0.50")}) == (
        '{"a":0.00000001,"b":[true,null,"x\\"y"],"c":-0.50}'
    )
    with pytest.raises(TypeError):
        dumps({"price": 1.5})
    with pytest.raises(ValueError):
        dumps(D("Infinity"))


def test_unknown_and_malformed() -> None:
    assert isinstance(decode('{"channel":"level3","type":"snapshot","data":[]}'), UnknownMessage)
    assert isinstance(decode('{"method":"some_new_method","success":true}'), UnknownMessage)
    assert isinstance(decode('{"Error":"Exceeded msg rate"}'), UnknownMessage)
    assert isinstance(decode(b'{"channel":"heartbeat"}  \n'), Heartbeat)
    for bad in ("not json", "[1,2]", '{"channel":"heartbeat"} x', ""):
        with pytest.raises(KrakenProtocolError):
            decode(bad)
    with pytest.raises(KrakenProtocolError, match="checksum"):
        decode('{"channel":"book","type":"update","data":[{"symbol":"X","bids":[],"asks":[],"checksum":"1"}]}')
    with pytest.raises(KrakenProtocolError, match="book"):
        decode('{"channel":"book","type":"update","data":[{"symbol":"X","bids":[{"price":1}],"asks":[],"checksum":1}]}')
    with pytest.raises(KrakenProtocolError, match="price"):
        decode(
            '{"channel":"trade","type":"update","data":[{"symbol":"X","side":"buy","qty":1,"timestamp":"2023-09-25T07:49:37Z"}]}'
        )
    with pytest.raises(KrakenProtocolError, match="success"):
        decode('{"method":"add_order","req_id":1}')
