"""The WebSocket v2 clients against the fake Kraken over loopback: book maintenance and checksum resync,
reconnects (dropped connection, silent connection), pings, token renewal and request/answer matching."""

import socket
from collections.abc import AsyncGenerator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import anyio
import pytest
from fakes.kraken_fake import FakeKraken
from fakes.kraken_fake_clients import FAST_WS, Inbox, rest_client

from engine.exchanges.kraken.backoff import Backoff, GiveUp
from engine.exchanges.kraken.protocol.errors import KrakenUserError
from engine.exchanges.kraken.protocol.ws_messages import ExecutionsMsg, TickerMsg, WsMessage
from engine.exchanges.kraken.ws_client import KrakenPrivateWs, KrakenPublicWs, VerifiedBook, raise_for_response
from engine.exchanges.kraken.ws_link import WsOutcomeUnknown, WsUnavailable

pytestmark = pytest.mark.anyio
D = Decimal
SYMBOL = "BTC/USDT"


def ladder(start: str, step: str, n: int, qty: str = "1.50000000") -> list[tuple[str, str]]:
    return [(str(D(start) + i * D(step)), qty) for i in range(n)]


def public(fake: FakeKraken, **settings: Any) -> KrakenPublicWs:
    return KrakenPublicWs(
        fake.ws_public_url,
        [SYMBOL],
        channels=("instrument", "ticker", "book"),
        names={SYMBOL: "XBTUSDT"},
        settings=replace(FAST_WS, **settings),
    )


async def next_book(items: AsyncGenerator[WsMessage | VerifiedBook]) -> VerifiedBook:
    async for item in items:
        if isinstance(item, VerifiedBook):
            return item
    raise AssertionError("feed ended")


def levels(fake: FakeKraken, side: str) -> list[tuple[Decimal, Decimal]]:
    return fake.market.levels("XBTUSDT", side, 10)


async def test_the_book_is_maintained_and_verified_through_updates_beyond_the_depth() -> None:
    async with FakeKraken() as fake:
        fake.set_book("XBTUSDT", ladder("100.0", "-0.1", 12), ladder("100.1", "0.1", 12))
        feed = public(fake)
        items = feed.messages()
        with anyio.fail_after(10):
            first = await next_book(items)
            assert first.book.asks() == levels(fake, "asks") and first.book.bids() == levels(fake, "bids")
            # Remove the two best asks (deeper levels move into the top 10), change a bid, add a better bid.
            asks = [*ladder("100.3", "0.1", 10), ("101.5", "0.00010000")]
            bids = [
                ("100.05", "0.25"),
                *[(p, "2.0" if i == 3 else q) for i, (p, q) in enumerate(ladder("100.0", "-0.1", 12))],
            ]
            fake.set_book("XBTUSDT", bids, asks)
            second = await next_book(items)
            assert second.book.asks() == levels(fake, "asks") and second.book.bids() == levels(fake, "bids")
            fake.set_book("XBTUSDT", bids[:3], asks[5:])
            third = await next_book(items)
            assert third.book.asks() == levels(fake, "asks") and third.book.bids() == levels(fake, "bids")
        await items.aclose()
    assert len(third.book.bids()) == 3
    assert feed.checksum_failures == 0 and feed.resyncs == 0
    assert feed.precisions[SYMBOL] == (1, 8)  # from the instrument channel


async def test_a_checksum_mismatch_drops_the_book_and_resubscribes_for_a_fresh_snapshot() -> None:
    async with FakeKraken() as fake:
        fake.set_book("XBTUSDT", ladder("100.0", "-0.1", 10), ladder("100.1", "0.1", 10))
        feed = public(fake)
        items = feed.messages()
        with anyio.fail_after(10):
            await next_book(items)
            fake.faults.break_checksum = 1
            fake.set_book("XBTUSDT", ladder("100.0", "-0.1", 10, "3"), ladder("100.1", "0.1", 10))
            resynced = await next_book(items)
        await items.aclose()
    assert feed.checksum_failures == 1 and feed.resyncs == 1
    assert resynced.book.bids() == levels(fake, "bids")
    sent = [m.get("method") for m in fake.session_log[-1].received]
    assert sent[-2:] == ["unsubscribe", "subscribe"]


async def test_a_dropped_connection_is_reopened_and_resubscribed() -> None:
    async with FakeKraken() as fake:
        fake.set_book("XBTUSDT", ladder("100.0", "-0.1", 10), ladder("100.1", "0.1", 10))
        feed = public(fake)
        items = feed.messages()
        with anyio.fail_after(10):
            await next_book(items)
            assert fake.drop_ws(private=False) == 1
            again = await next_book(items)
        await items.aclose()
    assert feed.link.connections == 2 and fake.connections == 2
    assert again.book.asks() == levels(fake, "asks")


async def test_a_silent_connection_trips_the_watchdog_and_is_replaced() -> None:
    async with FakeKraken() as fake:
        fake.set_book("XBTUSDT", ladder("100.0", "-0.1", 10), ladder("100.1", "0.1", 10))
        feed = public(fake, watchdog_s=0.3)
        items = feed.messages()
        with anyio.fail_after(10):
            await next_book(items)
            fake.silence_ws()
            await next_book(items)
        await items.aclose()
    assert feed.link.connections == 2 and "StaleConnection" in feed.link.last_error


async def test_application_pings_are_sent_when_due_and_answered() -> None:
    async with FakeKraken() as fake:
        feed = public(fake, ping_interval_s=0.05)
        items = feed.messages()
        tickers: list[TickerMsg] = []

        async def consume() -> None:
            async for item in items:
                if isinstance(item, TickerMsg):
                    tickers.append(item)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                await fake.wait_until(lambda: _pings(fake) >= 2)
                tg.cancel_scope.cancel()
        await items.aclose()
    assert tickers and feed.link.connections == 1


async def test_the_reconnect_policy_gives_up_when_told_to() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = replace(FAST_WS, reconnect=Backoff(0.01, 2, 0.02, max_attempts=2))
    feed = KrakenPublicWs(f"ws://127.0.0.1:{port}/v2", [SYMBOL], settings=settings)
    with anyio.fail_after(10), pytest.raises(GiveUp) as caught:
        async for _ in feed.messages():
            pass
    assert isinstance(caught.value.__cause__, OSError) and feed.link.failures == 3


async def test_an_unsupported_symbol_is_reported_not_fatal() -> None:
    async with FakeKraken() as fake:
        feed = KrakenPublicWs(fake.ws_public_url, ["XBT/USD", SYMBOL], channels=("ticker",), settings=FAST_WS)
        items = feed.messages()
        with anyio.fail_after(10):
            async for item in items:
                if isinstance(item, TickerMsg):
                    break
        await items.aclose()
    assert feed.errors == ["Currency pair not supported XBT/USD"]


# -- private ------------------------------------------------------------------------------------------------


async def test_private_requests_are_answered_and_executions_follow_the_answer() -> None:
    inbox: Inbox[WsMessage] = Inbox()
    messages = inbox.items
    async with FakeKraken(balances={"USDT": D(1000)}) as fake, rest_client(fake) as rest:
        fake.set_book("XBTUSDT", ladder("100.0", "-0.1", 3), ladder("100.1", "0.1", 3))

        async def token() -> str:
            return (await rest.ws_token()).token

        ws = KrakenPrivateWs(fake.ws_private_url, token, inbox.append, settings=FAST_WS)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                await tg.start(ws.run)
                await ws.wait_connected()
                answer = await ws.add_order(
                    symbol=SYMBOL, side="buy", order_type="market", order_qty=D("0.5"), cl_ord_id="w-1"
                )
                await inbox.wait_until(lambda items: _exec_types(items)[-1:] == ["trade"])
                tg.cancel_scope.cancel()
    assert answer.success and answer.result["cl_ord_id"] == "w-1"
    assert isinstance(messages[0], ExecutionsMsg) and messages[0].type == "snapshot"
    assert _exec_types(messages) == ["pending_new", "new", "trade"]
    trade = [r for m in messages if isinstance(m, ExecutionsMsg) for r in m.reports][-1]
    assert (trade.last_qty, trade.last_price, trade.liquidity_ind) == (D("0.5"), D("100.1"), "t")


def _pings(fake: FakeKraken) -> int:
    return sum(m.get("method") == "ping" for s in fake.session_log for m in s.received)


def _exec_types(messages: list[WsMessage]) -> list[str]:
    return [
        r.exec_type or "" for m in messages if isinstance(m, ExecutionsMsg) for r in m.reports if m.type == "update"
    ]


async def test_an_expired_token_is_renewed_for_requests_and_subscriptions() -> None:
    async with FakeKraken() as fake, rest_client(fake) as rest:
        handed: list[str] = []

        async def token() -> str:
            # The first token is stale before it is used: the subscription must renew it.
            value = "stale-token" if not handed else (await rest.ws_token()).token
            handed.append(value)
            return value

        ws = KrakenPrivateWs(fake.ws_private_url, token, lambda m: None, settings=FAST_WS)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                await tg.start(ws.run)
                await ws.wait_connected()
                fake.expire_tokens()
                answer = await ws.cancel_all_orders_after(60)
                tg.cancel_scope.cancel()
    assert answer.success and fake.dms_calls == 1
    assert handed[0] == "stale-token" and len(handed) >= 3


async def test_a_request_in_flight_when_the_connection_drops_has_an_unknown_outcome() -> None:
    async with FakeKraken(balances={"USDT": D(1000)}) as fake, rest_client(fake) as rest:

        async def token() -> str:
            return (await rest.ws_token()).token

        ws = KrakenPrivateWs(fake.ws_private_url, token, lambda m: None, settings=FAST_WS)
        fake.faults.ws_add_order_silent = 1
        outcome: list[BaseException] = []

        async def place() -> None:
            try:
                await ws.add_order(
                    symbol=SYMBOL, side="buy", order_type="limit", order_qty=D("0.5"), limit_price=D("90.0")
                )
            except WsOutcomeUnknown as exc:
                outcome.append(exc)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                await tg.start(ws.run)
                await ws.wait_connected()
                tg.start_soon(place)
                await fake.wait_until(lambda: len(fake.market.orders) == 1)
                fake.drop_ws(private=True)
                await fake.wait_until(lambda: bool(outcome))
                await ws.wait_connected()
                tg.cancel_scope.cancel()
    assert ws.link.connections == 2 and len(fake.market.orders) == 1


async def test_requests_without_a_connection_are_refused_before_sending() -> None:
    async def token() -> str:
        return "unused"

    ws = KrakenPrivateWs("ws://127.0.0.1:9/auth/v2", token, lambda m: None, settings=FAST_WS)
    with pytest.raises(WsUnavailable):
        await ws.cancel_all()


async def test_batch_add_amend_and_cancel_over_ws() -> None:
    async with FakeKraken(balances={"USDT": D(1000)}) as fake, rest_client(fake) as rest:
        fake.set_book("XBTUSDT", ladder("100.0", "-0.1", 3), ladder("100.1", "0.1", 3))

        async def token() -> str:
            return (await rest.ws_token()).token

        ws = KrakenPrivateWs(fake.ws_private_url, token, lambda m: None, settings=FAST_WS)
        spec = {"order_type": "limit", "side": "buy", "order_qty": D("0.1"), "limit_price": D("90.0")}
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                await tg.start(ws.run)
                await ws.wait_connected()
                batch = await ws.batch_add(
                    symbol=SYMBOL, orders=[{**spec, "cl_ord_id": "b-1"}, {**spec, "cl_ord_id": "b-2"}]
                )
                amended = raise_for_response(
                    await ws.amend_order(cl_ord_id="b-1", order_qty=D("0.2"), limit_price=D("91.0"))
                )
                canceled = await ws.cancel_order(cl_ord_id="b-2")
                refused = await ws.cancel_order(cl_ord_id="nope")
                tg.cancel_scope.cancel()
    assert batch.success and [r["cl_ord_id"] for r in batch.result] == ["b-1", "b-2"]
    (first,) = fake.orders_by_cl_ord_id("b-1")
    assert amended.success and (first.vol, first.price) == (D("0.2"), D("91.0"))
    assert canceled.success and fake.orders_by_cl_ord_id("b-2")[0].status == "canceled"
    with pytest.raises(KrakenUserError, match="Unknown order"):
        raise_for_response(refused)
