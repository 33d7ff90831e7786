"""Helpers for tests against the fake Kraken: a manual clock with a sleeper that advances it, quick backoffs,
and clients wired to a running fake."""

import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Generic, TypeVar

import anyio
from fakes.kraken_fake import FakeKraken

from engine.domain.orders import ClientOrderId, Order, OrderEvent, OrderSide, OrderType
from engine.exchanges.kraken.backoff import Backoff
from engine.exchanges.kraken.rest_client import KrakenRestClient
from engine.exchanges.kraken.ws_link import WsSettings
from engine.exchanges.port import OrderRequest

__all__ = ["FAST_RETRY", "FAST_WS", "Inbox", "Ledger", "ManualClock", "order_request", "rest_client", "wait_for"]

FAST_RETRY = Backoff(initial=0.01, factor=2.0, cap=0.05, max_attempts=4)
FAST_WS = WsSettings(
    ping_interval_s=30.0,
    watchdog_s=30.0,
    request_timeout_s=0.5,
    connect_timeout_s=2.0,
    reconnect=Backoff(initial=0.01, factor=2.0, cap=0.05, max_attempts=None),
)
D = Decimal


class ManualClock:
    """Seconds that move only when someone sleeps; ``sleeps`` records every requested delay."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await anyio.lowlevel.checkpoint()


def rest_client(fake: FakeKraken, **overrides: Any) -> KrakenRestClient:
    """A client with the fake's keys, quick retries, a fixed jitter and a 2 s timeout (override any of it)."""
    options: dict[str, Any] = {
        "api_key": fake.api_key,
        "api_secret": fake.api_secret,
        "tier": "pro",
        "retry": FAST_RETRY,
        "timeout_s": 2.0,
        "rand": random.Random(7).random,
    }
    options.update(overrides)
    return KrakenRestClient(fake.rest_url, **options)


async def wait_for(predicate: Callable[[], bool], signal: Callable[[], Any]) -> None:
    """Wait until ``predicate()`` holds, re-checking whenever ``signal()`` (an awaitable factory) fires."""
    while not predicate():
        await signal()


T = TypeVar("T")


class Inbox(Generic[T]):
    """A list that callbacks append to and tests wait on (no sleeping: every append wakes the waiters)."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._changed = anyio.Event()

    def append(self, item: T) -> None:
        self.items.append(item)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_until(self, predicate: Callable[[list[T]], bool]) -> None:
        while not predicate(self.items):
            await self._changed.wait()


class Ledger:
    """Applies a venue's events to domain orders, as the engine's order manager would, and lets tests wait.

    ``Order.apply`` raises on an illegal transition or a duplicate trade id, so a venue that emits one fails the
    test loudly.
    """

    def __init__(self) -> None:
        self.orders: dict[ClientOrderId, Order] = {}
        self.events: list[OrderEvent] = []
        self._inbox: Inbox[OrderEvent] = Inbox()

    def track(self, request: OrderRequest) -> Order:
        order = Order(
            client_id=request.client_id,
            pair=request.pair,
            side=request.side,
            order_type=request.order_type,
            qty=request.qty,
            limit_price=request.limit_price,
            created_ts_ns=request.ts_ns,
            strategy=request.strategy,
            expires_ns=request.expires_ns,
        )
        self.orders[order.client_id] = order
        return order

    def __call__(self, event: OrderEvent) -> None:
        self.orders[event.client_id].apply(event)
        self.events.append(event)
        self._inbox.append(event)

    def kinds(self, client_id: str) -> list[str]:
        return [type(e).__name__ for e in self.events if e.client_id == client_id]

    async def wait(self, predicate: Callable[[], bool]) -> None:
        await self._inbox.wait_until(lambda _: predicate())


def order_request(
    client_id: str,
    side: str,
    qty: str,
    price: str | None = None,
    pair: str = "BTC/USDT",
    strategy: str = "test",
    *,
    expires_ns: int | None = None,
    post_only: bool = False,
) -> OrderRequest:
    return OrderRequest(
        client_id=ClientOrderId(client_id),
        pair=pair,
        side=OrderSide(side),
        order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
        qty=D(qty),
        limit_price=None if price is None else D(price),
        ts_ns=1,
        strategy=strategy,
        post_only=post_only,
        expires_ns=expires_ns,
    )
