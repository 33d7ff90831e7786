"""Resource-updated notifications for both protocol eras, throttled per URI.

The engine tells us, synchronously and on its own event loop, which topics changed ("balance", "orders", ...).
We map topics to resource URIs and let at most one notification per URI through per interval: later changes
in the interval are coalesced into one notification at its end, so the last change is never lost. Each goes to

* 2026-07-28 clients through the server's subscription bus (their ``subscriptions/listen`` streams filter by
  URI);
* 2025-11-25 clients that sent ``resources/subscribe``, through the session they subscribed on.

:class:`Throttle` is pure (times are passed in). :class:`ChangeNotifier` is the glue and owns no task of its
own: whoever runs the server (the MCP lifespan) runs :meth:`ChangeNotifier.pump` inside its task group.
"""

import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import anyio
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus

__all__ = [
    "TOPIC_URIS",
    "ChangeNotifier",
    "LegacySubscribers",
    "Notifiable",
    "Throttle",
]

TOPIC_URIS: dict[str, tuple[str, ...]] = {
    "balance": ("bot://balance", "bot://status"),
    "positions": ("bot://positions", "bot://status"),
    "orders": ("bot://orders", "bot://status"),
    "trades": ("bot://trades", "bot://status"),
    "performance": ("bot://performance",),
    "status": ("bot://status",),
    "strategies": ("bot://strategies", "bot://status"),
    "risk": ("bot://risk",),
    "events": ("bot://events",),
}
_MAX_SUBSCRIBERS_PER_URI = 64
_SEND_TIMEOUT_S = 2.0


class Throttle:
    """Coalesces URI updates so each URI goes out at most once per ``interval_s``.

    Args:
        interval_s: minimum spacing between two notifications for the same URI.
    """

    def __init__(self, interval_s: float) -> None:
        if interval_s < 0:
            raise ValueError("interval_s must not be negative")
        self.interval_s = interval_s
        self._last_sent: dict[str, float] = {}
        self._pending: set[str] = set()

    def offer(self, uris: Iterable[str]) -> None:
        """Note that ``uris`` changed."""
        self._pending.update(uris)

    def take_due(self, now: float) -> list[str]:
        """The pending URIs that may go out at ``now`` (sorted), marked as sent at ``now``."""
        due = sorted(u for u in self._pending if now - self._last_sent.get(u, float("-inf")) >= self.interval_s)
        for uri in due:
            self._pending.discard(uri)
            self._last_sent[uri] = now
        return due

    def next_due(self) -> float | None:
        """When the earliest pending URI may go out, or ``None`` when nothing is pending."""
        if not self._pending:
            return None
        return min(self._last_sent.get(u, float("-inf")) + self.interval_s for u in self._pending)


class Notifiable(Protocol):
    """A 2025-11-25 session that can be told a resource changed (the SDK's ``ServerSession``)."""

    async def send_resource_updated(self, uri: str) -> None: ...


class LegacySubscribers:
    """Which 2025-11-25 sessions subscribed to which URI.

    A session is identified by its connection's ``initialize`` parameters (one object per connection), so two
    subscribe requests on one connection count once. Connections that close without unsubscribing are not
    reported by the SDK; the per-URI cap bounds what they can hold (the oldest subscription is dropped first).
    """

    def __init__(self) -> None:
        self._by_uri: dict[str, dict[int, Notifiable]] = {}

    @staticmethod
    def key(session: Any) -> int:
        """The identity of the connection behind ``session``."""
        params = getattr(session, "client_params", None)
        return id(params) if params is not None else id(session)

    def add(self, uri: str, session: Notifiable) -> None:
        subscribers = self._by_uri.setdefault(uri, {})
        subscribers.pop(self.key(session), None)
        while len(subscribers) >= _MAX_SUBSCRIBERS_PER_URI:
            del subscribers[next(iter(subscribers))]
        subscribers[self.key(session)] = session

    def remove(self, uri: str, session: Notifiable) -> None:
        subscribers = self._by_uri.get(uri, {})
        subscribers.pop(self.key(session), None)
        if not subscribers:
            self._by_uri.pop(uri, None)

    def sessions_for(self, uri: str) -> list[Notifiable]:
        return list(self._by_uri.get(uri, {}).values())

    def uris(self) -> list[str]:
        return sorted(self._by_uri)


class ChangeNotifier:
    """Turns engine change topics and tool-made changes into throttled resource-updated notifications.

    Args:
        bus: the MCP server's subscription bus (2026-07-28 listen streams).
        expand: extra URIs for a topic beyond :data:`TOPIC_URIS` (e.g. per-strategy performance resources).
        interval_s: per-URI throttle interval.
        clock: monotonic seconds for the throttle.
    """

    def __init__(
        self,
        bus: SubscriptionBus,
        *,
        expand: Callable[[str], Iterable[str]] = lambda topic: (),
        interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._expand = expand
        self._clock = clock
        self._throttle = Throttle(interval_s)
        self._wake = anyio.Event()
        self.legacy = LegacySubscribers()
        self.sent = 0

    def on_engine_change(self, topics: set[str]) -> None:
        """The engine's change callback: synchronous and cheap, it only records and wakes the pump."""
        uris: list[str] = []
        for topic in topics:
            uris.extend(TOPIC_URIS.get(topic, ()))
            uris.extend(self._expand(topic))
        self.touch(*uris)

    def touch(self, *uris: str) -> None:
        """Note that ``uris`` changed (called by tools after a change they made)."""
        if uris:
            self._throttle.offer(uris)
            self._wake.set()

    async def pump(self) -> None:
        """Deliver due notifications until cancelled; pumps sharing one notifier never duplicate one."""
        while True:
            for uri in self._throttle.take_due(self._clock()):
                await self._deliver(uri)
            next_due = self._throttle.next_due()
            wake = self._wake
            if next_due is None:
                await wake.wait()
            else:
                with anyio.move_on_after(max(0.0, next_due - self._clock())):
                    await wake.wait()
            if wake is self._wake and wake.is_set():
                self._wake = anyio.Event()

    async def _deliver(self, uri: str) -> None:
        await self._bus.publish(ResourceUpdated(uri=uri))
        for session in self.legacy.sessions_for(uri):
            # A client that stopped reading must not stall everyone else's notifications.
            with anyio.move_on_after(_SEND_TIMEOUT_S):
                await session.send_resource_updated(uri)
        self.sent += 1

    @asynccontextmanager
    async def running(
        self, subscribe: Callable[[Callable[[set[str]], None]], Callable[[], None]]
    ) -> AsyncIterator[None]:
        """Subscribe to engine changes and run a pump for the duration of the block.

        Args:
            subscribe: the facade's ``subscribe_changes``.
        """
        unsubscribe = subscribe(self.on_engine_change)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.pump)
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()
        finally:
            unsubscribe()
