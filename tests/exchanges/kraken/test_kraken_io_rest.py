"""The REST client against the fake Kraken over loopback HTTP: parsing real captures, private calls, pacing,
backoff on faults, and no duplicate order when AddOrder's answer is lost."""

import json
import logging
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from fakes.kraken_fake import TEST_KEY, TEST_SECRET, FakeKraken, real_pairs
from fakes.kraken_fake_clients import ManualClock, rest_client

from engine.exchanges.kraken.backoff import Backoff
from engine.exchanges.kraken.protocol.errors import KrakenFatalError, KrakenRetryableError, KrakenUserError
from engine.exchanges.kraken.protocol.rate_limits import RestCallCounter
from engine.exchanges.kraken.protocol.signing import NonceSource
from engine.exchanges.kraken.rest_client import KrakenTransportError, OrderOutcomeUnknown

pytestmark = pytest.mark.anyio
D = Decimal
DATA = Path(__file__).resolve().parents[3] / "engine" / "data"
BOOK = ([("100.0", "1"), ("99.9", "2")], [("100.1", "1"), ("100.2", "3")])


def _envelope_of(path: Path) -> bytes:
    return path.read_bytes()


async def test_shipped_captures_served_by_the_fake_parse_into_instruments_candles_and_trades() -> None:
    captures = {
        "AssetPairs": _envelope_of(DATA / "kraken_asset_pairs_xbtusdt.json"),
        "OHLC": _envelope_of(DATA / "kraken_xbtusdt_1m_ohlc.json"),
        "Trades": _envelope_of(DATA / "kraken_xbtusdt_trades.json"),
    }
    async with FakeKraken() as fake, rest_client(fake) as client:
        fake.captures.update(captures)
        with anyio.fail_after(10):
            pairs = await client.asset_pairs(["XBTUSDT"])
            ohlc = await client.ohlc("XBTUSDT", interval=1)
            trades = await client.trades("XBTUSDT")
    inst = pairs["BTC/USDT"]  # keyed by the engine's name; asked for by Kraken's
    assert (inst.ws_symbol, inst.base, inst.quote, inst.ordermin, inst.tick_size) == (
        "BTC/USDT",
        "BTC",
        "USDT",
        D("0.00005"),
        D("0.1"),
    )
    assert len(ohlc.candles) == 720 and ohlc.current is not None
    assert ohlc.candles[0].ts_ns == 1762777020 * 10**9 and ohlc.candles[0].open == D("106038.2")
    assert len(trades.trades) == 1000
    assert trades.trades[0].price == D("105433.6") and trades.trades[0].trade_id == 10218208
    assert trades.last == 1762820035982277754


async def test_shared_captures_of_ticker_book_time_and_status_parse(shared_dir: Path) -> None:
    base = shared_dir / "data" / "kraken-rest-xbtusdt"
    if not base.is_dir():
        pytest.skip("kraken-rest-xbtusdt captures are not present")
    captures = {
        "Ticker": (base / "http_ticker.json").read_bytes(),
        "Depth": (base / "http_order_book.json").read_bytes(),
        "Time": (base / "http_server_time.json").read_bytes(),
    }
    async with FakeKraken() as fake, rest_client(fake) as client:
        fake.captures.update(captures)
        with anyio.fail_after(10):
            ticker = await client.ticker("XBTUSDT")
            book = await client.depth("XBTUSDT")
            server = await client.server_time()
    assert (ticker.bid, ticker.ask, ticker.last) == (D("105944.2"), D("105944.3"), D("105899.4"))
    assert book.best_bid == D("105944.2") and book.best_ask == D("105944.3") and len(book.asks) == 5
    assert server.unixtime == 1762820224


async def test_private_calls_place_list_fill_and_cancel_orders() -> None:
    async with FakeKraken(balances={"USDT": D(10000), "BTC": D(1)}) as fake, rest_client(fake) as client:
        fake.set_book("XBTUSDT", *BOOK)
        with anyio.fail_after(10):
            assert await client.balance() == {"USDT": D(10000), "BTC": D(1)}
            placed = await client.add_order(
                pair="XBTUSDT", side="buy", ordertype="limit", volume=D("0.5"), price=D("99.0"), cl_ord_id="t-1"
            )
            listed = await client.open_orders()
            await client.add_order(pair="XBTUSDT", side="sell", ordertype="market", volume=D("0.25"), cl_ord_id="t-2")
            history = await client.all_trades()
            cancel = await client.cancel_order(cl_ord_id="t-1")
            closed = await client.all_closed_orders()
            detail = await client.balance_ex()
    txid = placed.txids[0]
    assert listed[txid].cl_ord_id == "t-1" and listed[txid].price == D("99.0")
    (trade,) = history.trades.values()
    assert (trade.side, trade.vol, trade.price, trade.maker) == ("sell", D("0.25"), D("100.0"), False)
    assert trade.fee == D("0.10000")  # 0.4 % of 25.0, rounded up to the pair's cost decimals
    assert cancel.count == 1
    assert closed[txid].status == "canceled" and closed[txid].reason == "User requested"
    assert detail["BTC"].balance == D("0.75") and detail["USDT"].hold_trade == 0


async def test_wrong_secret_is_refused_and_no_error_or_log_shows_the_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "d3Jvbmctc2VjcmV0LXRoYXQtaXMtc3RpbGwtdmFsaWQtYmFzZTY0LWJ1dC1ub3QtdGhlLWZha2VzLW9uZQ=="
    async with FakeKraken() as fake, rest_client(fake, api_secret=wrong) as client:
        fake.faults.http_status["Balance"] = [503]
        with anyio.fail_after(10), pytest.raises(KrakenFatalError) as caught:
            await client.balance()
    assert caught.value.errors == ("EAPI:Invalid signature",)
    assert fake.bad_signatures == 1
    texts = [str(caught.value), repr(caught.value), repr(client), *(r.getMessage() for r in caplog.records)]
    for secret in (wrong, TEST_KEY, TEST_SECRET):
        assert not any(secret in text for text in texts)
    assert caught.value.__cause__ is None


async def test_transport_errors_do_not_reference_the_request_and_its_headers() -> None:
    async with FakeKraken() as fake:
        client = rest_client(fake, timeout_s=0.2, retry=Backoff(0.01, 2, 0.02, max_attempts=0))
        fake.faults.delay_s["Balance"] = 1.0
        with anyio.fail_after(10), pytest.raises(KrakenTransportError) as caught:
            await client.balance()
        await client.aclose()
    assert caught.value.maybe_sent and "Balance: timed out" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


async def test_a_stale_nonce_is_retried_once_with_a_fresh_one_then_reported() -> None:
    async with FakeKraken() as fake:
        ahead = rest_client(fake, nonce=NonceSource(lambda: 10**18))
        behind = rest_client(fake, nonce=NonceSource(lambda: 10**15))
        with anyio.fail_after(10):
            await ahead.balance()
            with pytest.raises(KrakenRetryableError) as caught:
                await behind.balance()
        await ahead.aclose()
        await behind.aclose()
    assert caught.value.invalid_nonce
    assert fake.calls["Balance"] == 3  # one good call, then the stale one and its single immediate retry


async def test_http_5xx_and_service_errors_are_retried_with_backoff() -> None:
    clock = ManualClock()
    async with FakeKraken(balances={"USD": D(5)}) as fake:
        client = rest_client(fake, sleep=clock.sleep, monotonic=clock)
        fake.faults.http_status["Balance"] = [502, 503]
        fake.faults.errors["OpenOrders"] = ["EService:Unavailable", "EGeneral:Internal error"]
        with anyio.fail_after(10):
            assert await client.balance() == {"USD": D(5)}
            assert await client.open_orders() == {}
        await client.aclose()
    assert fake.calls["Balance"] == 3 and fake.calls["OpenOrders"] == 3
    assert client.retries == 4 and len(clock.sleeps) == 4
    assert all(0 < s <= 0.05 for s in clock.sleeps)


async def test_rate_limit_refusals_back_off_at_least_one_decay_step() -> None:
    clock = ManualClock()
    async with FakeKraken() as fake:
        client = rest_client(fake, sleep=clock.sleep, monotonic=clock, tier="starter")
        fake.faults.errors["Balance"] = ["EAPI:Rate limit exceeded"]
        with anyio.fail_after(10):
            await client.balance()
        await client.aclose()
    assert clock.sleeps == [pytest.approx(1 / 0.33)]


async def test_the_client_paces_itself_by_the_call_counter_so_the_fake_never_refuses() -> None:
    clock = ManualClock()
    async with FakeKraken(tier="starter", monotonic=clock) as fake:
        client = rest_client(fake, sleep=clock.sleep, monotonic=clock, counter=RestCallCounter("starter"))
        with anyio.fail_after(10):
            for _ in range(17):
                await client.balance()
        await client.aclose()
    assert fake.rate_limited == 0 and fake.calls["Balance"] == 17
    assert len(clock.sleeps) == 2 and all(s == pytest.approx(1 / 0.33) for s in clock.sleeps)


async def test_the_fakes_counter_refuses_a_client_that_does_not_pace() -> None:
    clock = ManualClock()
    async with FakeKraken(tier="starter", monotonic=clock) as fake:
        careless = rest_client(fake, counter=RestCallCounter("pro", costs={"Balance": 0}), sleep=clock.sleep)
        with anyio.fail_after(10):
            for _ in range(16):
                await careless.balance()
        await careless.aclose()
    # The 16th call is refused until the fake's starter counter (15, -0.33/s) has room: the client believes in a
    # pro counter (-1/s), so it retries every second and is refused at +1 s, +2 s and +3 s, accepted at +4 s.
    assert fake.rate_limited == 4
    assert fake.calls["Balance"] == 20


async def test_retries_are_bounded_and_the_last_error_is_raised() -> None:
    clock = ManualClock()
    async with FakeKraken() as fake:
        client = rest_client(fake, sleep=clock.sleep, monotonic=clock)
        fake.faults.http_status["*"] = [503] * 10
        with anyio.fail_after(10), pytest.raises(KrakenTransportError, match="HTTP 503"):
            await client.system_status()
        await client.aclose()
    assert fake.calls["SystemStatus"] == 5  # the first try and max_attempts (4) retries


async def test_user_errors_are_not_retried() -> None:
    async with FakeKraken(balances={"USDT": D(1)}) as fake, rest_client(fake) as client:
        fake.set_book("XBTUSDT", *BOOK)
        with anyio.fail_after(10), pytest.raises(KrakenUserError, match="Insufficient funds"):
            await client.add_order(pair="XBTUSDT", side="buy", ordertype="limit", volume=D("1"), price=D("100.0"))
    assert fake.calls["AddOrder"] == 1


@pytest.mark.parametrize("mode", ["delay", "drop"])
async def test_add_order_whose_answer_is_lost_after_placement_is_found_not_resent(mode: str) -> None:
    async with FakeKraken(balances={"USDT": D(10000)}) as fake:
        client = rest_client(fake, timeout_s=0.3)
        fake.set_book("XBTUSDT", *BOOK)
        fake.faults.lose_add_order_response = 1
        fake.faults.lost_response_mode = "drop" if mode == "drop" else "delay"
        with anyio.fail_after(10):
            result = await client.add_order(
                pair="XBTUSDT", side="buy", ordertype="limit", volume=D("0.1"), price=D("99.0"), cl_ord_id="lost-1"
            )
        await client.aclose()
    (order,) = fake.orders_by_cl_ord_id("lost-1")
    assert result.txids == (order.txid,)
    assert fake.calls["AddOrder"] == 1 and fake.lost_responses == 1
    assert fake.calls["OpenOrders"] == 1


async def test_add_order_that_never_arrived_is_resent_once_after_the_lookup() -> None:
    async with FakeKraken(balances={"USDT": D(10000)}) as fake, rest_client(fake) as client:
        fake.set_book("XBTUSDT", *BOOK)
        fake.faults.http_status["AddOrder"] = [502]
        fake.faults.errors["AddOrder"] = ["EService:Unavailable"]
        with anyio.fail_after(10):
            result = await client.add_order(
                pair="XBTUSDT", side="buy", ordertype="limit", volume=D("0.1"), price=D("99.0"), cl_ord_id="again-1"
            )
    (order,) = fake.orders_by_cl_ord_id("again-1")
    assert result.txids == (order.txid,)
    assert fake.calls["AddOrder"] == 3 and fake.calls["OpenOrders"] == 2 and fake.calls["ClosedOrders"] == 2


async def test_add_order_with_an_unknown_outcome_and_no_way_to_check_is_never_resent() -> None:
    async with FakeKraken(balances={"USDT": D(10000)}) as fake:
        client = rest_client(fake, timeout_s=0.3, retry=Backoff(0.01, 2, 0.02, max_attempts=1))
        fake.set_book("XBTUSDT", *BOOK)
        fake.faults.lose_add_order_response = 1
        fake.faults.http_status["OpenOrders"] = [503] * 5
        with anyio.fail_after(10), pytest.raises(OrderOutcomeUnknown):
            await client.add_order(
                pair="XBTUSDT", side="buy", ordertype="limit", volume=D("0.1"), price=D("99.0"), cl_ord_id="blind-1"
            )
        await client.aclose()
    assert fake.calls["AddOrder"] == 1 and len(fake.orders_by_cl_ord_id("blind-1")) == 1


async def test_asset_pairs_of_the_fake_match_the_shipped_instruments() -> None:
    shipped = json.loads((DATA / "instruments.json").read_text())
    async with FakeKraken(pairs=real_pairs()) as fake, rest_client(fake) as client:
        with anyio.fail_after(10):
            pairs = await client.asset_pairs()
            status = await client.system_status()
            token = await client.ws_token()
            dms = await client.cancel_all_orders_after(60)
    assert sorted(i.altname for i in pairs.values()) == sorted(
        v["altname"] for k, v in shipped.items() if not k.startswith("_")
    )
    assert pairs["BTC/USD"].altname == "XBTUSD" and pairs["ETH/BTC"].altname == "ETHXBT"
    assert pairs["DOGE/USD"].rest_name == "XDGUSD" and pairs["DOGE/USD"].wsname == "XDG/USD"
    assert status.status == "online" and token.expires_s == 900 and token.token in fake.tokens
    assert dms.trigger_time_ns is not None and fake.dms_calls == 1
