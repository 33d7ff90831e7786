"""REST public parsers on the documentation examples and on real captures (../shared, skipped when absent)."""

import itertools
import json
from decimal import Decimal
from pathlib import Path

import pytest

from engine.domain.market_data import BookLevel
from engine.exchanges.kraken import (
    KrakenProtocolError,
    KrakenRetryableError,
    KrakenUserError,
    parse_asset_pairs,
    parse_depth,
    parse_ohlc,
    parse_system_status,
    parse_ticker,
    parse_tickers,
    parse_time,
    parse_trades,
)

D = Decimal


def test_time_and_status_doc_examples() -> None:
    t = parse_time('{"error":[],"result":{"unixtime":1688669448,"rfc1123":"Thu, 06 Jul 23 18:50:48 +0000"}}')
    assert t.unixtime == 1688669448 and t.ts_ns == 1688669448 * 10**9
    s = parse_system_status('{"error":[],"result":{"status":"online","timestamp":"2023-07-06T18:52:00Z"}}')
    assert s.status == "online" and s.ts_ns == 1688669520 * 10**9


def test_asset_pairs_doc_example() -> None:
    text = json.dumps(
        {
            "error": [],
            "result": {
                "XXBTZUSD": {
                    "altname": "XBTUSD",
                    "wsname": "XBT/USD",
                    "aclass_base": "currency",
                    "base": "XXBT",
                    "aclass_quote": "currency",
                    "quote": "ZUSD",
                    "cost_decimals": 5,
                    "pair_decimals": 1,
                    "lot_decimals": 8,
                    "lot_multiplier": 1,
                    "ordermin": "0.0001",
                    "costmin": "0.5",
                    "tick_size": "0.1",
                    "status": "online",
                },
                "XETHXXBT": {
                    "altname": "ETHXBT",
                    "wsname": "ETH/XBT",
                    "base": "XETH",
                    "quote": "XXBT",
                    "cost_decimals": 6,
                    "pair_decimals": 5,
                    "lot_decimals": 8,
                    "ordermin": "0.01",
                    "costmin": "0.00002",
                    "tick_size": "0.00001",
                    "status": "online",
                },
            },
        }
    )
    pairs = parse_asset_pairs(text)
    assert set(pairs) == {"BTC/USD", "ETH/BTC"}  # keyed by the engine's names; Kraken's are kept beside
    btc = pairs["BTC/USD"]
    assert (btc.altname, btc.wsname, pairs["ETH/BTC"].altname) == ("XBTUSD", "XBT/USD", "ETHXBT")
    assert (btc.ws_symbol, btc.rest_name, btc.base, btc.quote) == ("BTC/USD", "XXBTZUSD", "BTC", "USD")
    assert (btc.pair_decimals, btc.lot_decimals, btc.ordermin, btc.tick_size) == (1, 8, D("0.0001"), D("0.1"))
    assert pairs["ETH/BTC"].ws_symbol == "ETH/BTC"
    assert pairs["ETH/BTC"].costmin == D("0.00002")


def test_ticker_doc_example() -> None:
    text = (
        '{"error":[],"result":{"XXBTZUSD":{"a":["30300.10000","1","1.000"],"b":["30300.00000","1","1.000"],'
        '"c":["30303.20000","0.00067643"],"v":["4083.67001100","4412.73601799"],"p":["30706.77771","30689.13205"],'
        '"t":[34619,38907],"l":["29868.30000","29868.30000"],"h":["31631.00000","31631.00000"],"o":"30502.80000"}}}'
    )
    ticker = parse_ticker(text, ts_ns=7, pair="XBTUSD")
    assert ticker.pair == "XBTUSD" and ticker.ts_ns == 7
    assert (ticker.bid, ticker.bid_qty, ticker.ask, ticker.ask_qty) == (
        D("30300"),
        D("1"),
        D("30300.1"),
        D("1"),
    )
    assert ticker.last == D("30303.2")
    assert parse_tickers(text, ts_ns=7)["XXBTZUSD"].pair == "XXBTZUSD"


def test_ohlc_doc_example() -> None:
    text = (
        '{"error":[],"result":{"XXBTZUSD":[[1688671200,"30306.1","30306.2","30305.7","30305.7","30306.1",'
        '"3.39243896",23],[1688671260,"30306.7","30306.7","30306.7","30306.7","0.0","0.00000000",0]],'
        '"last":1688672160}}'
    )
    result = parse_ohlc(text, interval_min=1, pair="XBTUSD")
    assert result.last == 1688672160
    (closed,) = result.candles
    assert closed.pair == "XBTUSD" and closed.ts_ns == 1688671200 * 10**9 and closed.interval_s == 60
    assert (closed.open, closed.high, closed.low, closed.close) == (
        D("30306.1"),
        D("30306.2"),
        D("30305.7"),
        D("30305.7"),
    )
    assert closed.volume == D("3.39243896") and closed.trades == 23
    assert result.current is not None and result.current.ts_ns == 1688671260 * 10**9


def test_depth_doc_example() -> None:
    text = (
        '{"error":[],"result":{"XXBTZUSD":{"asks":[["30384.10000","2.059",1688671659]],'
        '"bids":[["30297.00000","1.115",1688671636]]}}}'
    )
    book = parse_depth(text, pair="XBTUSD")
    assert book.pair == "XBTUSD" and book.ts_ns == 1688671659 * 10**9
    assert book.asks == (BookLevel(D("30384.1"), D("2.059")),)
    assert book.bids == (BookLevel(D("30297"), D("1.115")),)


def test_trades_doc_example() -> None:
    text = (
        '{"error":[],"result":{"XXBTZUSD":[["30243.40000","0.34507674",1688669597.8277369,"b","m","",61044952]],'
        '"last":"1688671969993150842"}}'
    )
    result = parse_trades(text)
    (trade,) = result.trades
    assert trade.ts_ns == 1688669597_827736900
    assert (trade.price, trade.qty, trade.side, trade.trade_id) == (
        D("30243.4"),
        D("0.34507674"),
        "buy",
        61044952,
    )
    assert result.last == 1688671969993150842


def test_errors_and_malformed_payloads_name_the_field() -> None:
    with pytest.raises(KrakenUserError):
        parse_ticker('{"error":["EQuery:Unknown asset pair"]}', ts_ns=0)
    with pytest.raises(KrakenRetryableError):
        parse_time('{"error":["EService:Unavailable"]}')
    with pytest.raises(KrakenProtocolError, match="not valid JSON"):
        parse_time("<html>502 Bad Gateway</html>")
    with pytest.raises(KrakenProtocolError, match="unixtime"):
        parse_time('{"error":[],"result":{"rfc1123":"x"}}')
    with pytest.raises(KrakenProtocolError, match=r"OHLC.XXBTZUSD\[0\].open"):
        parse_ohlc('{"error":[],"result":{"XXBTZUSD":[[1,"x","1","1","1","1","1",1]],"last":1}}', interval_min=1)
    with pytest.raises(KrakenProtocolError, match="last"):
        parse_trades('{"error":[],"result":{"XXBTZUSD":[]}}')
    with pytest.raises(KrakenProtocolError, match="side"):
        parse_trades('{"error":[],"result":{"X":[["1","1",1.5,"z","m","",1]],"last":"1"}}')
    with pytest.raises(KrakenProtocolError, match="exactly one pair"):
        parse_ticker('{"error":[],"result":{}}', ts_ns=0)
    with pytest.raises(KrakenProtocolError, match=r"AssetPairs\.BAD"):
        parse_asset_pairs('{"error":[],"result":{"BAD":{"base":"X"}}}')
    # Floats would have lost digits already: decoded envelopes must carry Decimals.
    with pytest.raises(KrakenProtocolError, match="float"):
        parse_depth({"error": [], "result": {"X": {"asks": [[30384.1, "1", 1]], "bids": []}}})


# ----- real captures (nautilus_trader test data, LGPL-3.0, under ../shared/data) -----


def _capture(shared_dir: Path, name: str) -> str:
    path = shared_dir / "data" / "kraken-rest-xbtusdt" / name
    if not path.is_file():
        pytest.skip(f"{name} absent")
    return path.read_text()


def test_capture_asset_pairs(shared_dir: Path) -> None:
    pairs = parse_asset_pairs(_capture(shared_dir, "http_asset_pairs.json"))
    inst = pairs["BTC/USDT"]
    assert (inst.ws_symbol, inst.base, inst.quote) == ("BTC/USDT", "BTC", "USDT")
    assert (inst.ordermin, inst.costmin, inst.tick_size) == (D("0.00005"), D("0.5"), D("0.1"))
    assert inst.fee_rate(maker=False) == D("0.004") and inst.fee_rate(maker=True) == D("0.0025")


def test_capture_ohlc_trades_ticker_agree(shared_dir: Path) -> None:
    ohlc = parse_ohlc(_capture(shared_dir, "http_ohlc.json"), interval_min=1, pair="XBTUSDT")
    assert len(ohlc.candles) == 720 and ohlc.current is not None
    assert ohlc.last == 1762820160 and ohlc.candles[-1].ts_ns == ohlc.last * 10**9
    assert all(b.ts_ns - a.ts_ns == 60 * 10**9 for a, b in itertools.pairwise(ohlc.candles))
    trades = parse_trades(_capture(shared_dir, "http_trades.json"), pair="XBTUSDT")
    assert len(trades.trades) == 1000
    assert [t.trade_id for t in trades.trades] == list(range(10218208, 10219208))
    assert trades.last == 1762820035982277754
    ticker = parse_ticker(_capture(shared_dir, "http_ticker.json"), ts_ns=0)
    assert ticker.last == trades.trades[-1].price == D("105899.4")
    assert ticker.bid < ticker.ask


def test_capture_depth_time_status(shared_dir: Path) -> None:
    book = parse_depth(_capture(shared_dir, "http_order_book.json"))
    assert len(book.bids) == len(book.asks) == 5
    assert book.best_bid == D("105944.2") and book.best_ask == D("105944.3")
    assert [lvl.price for lvl in book.asks] == sorted(lvl.price for lvl in book.asks)
    assert book.ts_ns == 1762820249 * 10**9
    assert parse_time(_capture(shared_dir, "http_server_time.json")).unixtime == 1762820224
    assert parse_system_status(_capture(shared_dir, "http_system_status.json")).status == "online"
