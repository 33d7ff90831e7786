"""Resource-updated notifications: 2026-07-28 listen streams and 2025-11-25 resources/subscribe, throttled."""

import warnings
from collections.abc import AsyncIterator, Sequence

import anyio
import pytest
from fakes.mcp_harness import ok, rest_buy_orders
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.client.subscriptions import ResourceUpdated as ClientResourceUpdated
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated, ServerEvent
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import ResourceUpdatedNotification, ServerCapabilities

from engine.runtime.facade import EngineFacade
from trading_mcp.notify import ChangeNotifier
from trading_mcp.server import build_server

pytestmark = pytest.mark.anyio


class LegacyInbox:
    """Collects resources/updated notifications of a 2025-11-25 connection."""

    def __init__(self) -> None:
        self.uris: list[str] = []
        self._changed = anyio.Event()

    async def handler(self, message: IncomingMessage) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            self.uris.append(message.params.uri)
            self._changed.set()
            self._changed = anyio.Event()

    async def wait_for(self, uri: str) -> None:
        with anyio.fail_after(10):
            while uri not in self.uris:
                await self._changed.wait()


async def legacy_subscribe(client: Client, uris: Sequence[str]) -> None:
    # resources/subscribe is deprecated in the 2026 SDK API, but it is how 2025-11-25 clients subscribe.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        for uri in uris:
            await client.session.subscribe_resource(uri)


async def next_update(events: AsyncIterator[object], uri: str) -> None:
    with anyio.fail_after(10):
        async for event in events:
            if isinstance(event, ClientResourceUpdated) and event.uri == uri:
                return


async def test_capabilities_advertise_subscriptions(facade: EngineFacade, mode: str) -> None:
    async with Client(build_server(facade), mode=mode) as client:
        capabilities: ServerCapabilities = client.server_capabilities
    assert capabilities.resources is not None and capabilities.resources.subscribe is True


async def test_listen_stream_hears_a_tool_made_change(facade: EngineFacade) -> None:
    async with (
        Client(build_server(facade, notify_interval_s=0)) as client,
        client.listen(resource_subscriptions=["bot://status", "bot://risk"]) as sub,
    ):
        ok(await client.call_tool("pause_trading", {}))
        await next_update(sub, "bot://status")


async def test_listen_stream_hears_engine_changes(facade: EngineFacade) -> None:
    async with (
        Client(build_server(facade)) as client,
        client.listen(resource_subscriptions=["bot://orders", "bot://balance"]) as sub,
    ):
        await rest_buy_orders(facade, 1)
        await next_update(sub, "bot://orders")


async def test_legacy_subscriber_hears_tool_and_engine_changes(facade: EngineFacade) -> None:
    inbox = LegacyInbox()
    async with Client(build_server(facade), mode="legacy", message_handler=inbox.handler) as client:
        await legacy_subscribe(client, ["bot://status", "bot://orders"])
        ok(await client.call_tool("pause_trading", {}))
        await inbox.wait_for("bot://status")
        ok(await client.call_tool("resume_trading", {}))
        await rest_buy_orders(facade, 1)
        await inbox.wait_for("bot://orders")
    assert set(inbox.uris) <= {"bot://status", "bot://orders"}


async def test_legacy_unsubscribe_stops_notifications(facade: EngineFacade) -> None:
    inbox = LegacyInbox()
    async with Client(build_server(facade, notify_interval_s=0), mode="legacy", message_handler=inbox.handler) as c:
        await legacy_subscribe(c, ["bot://status", "bot://risk"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await c.session.unsubscribe_resource("bot://status")
        ok(await c.call_tool("pause_trading", {}))
        await inbox.wait_for("bot://risk")
    assert "bot://status" not in inbox.uris


async def test_legacy_subscribe_refuses_foreign_uris(facade: EngineFacade) -> None:
    async with Client(build_server(facade), mode="legacy") as client:
        with warnings.catch_warnings(), pytest.raises(MCPError, match="not a resource"):
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await client.session.subscribe_resource("file:///etc/passwd")


async def test_notifier_throttles_each_uri_and_never_duplicates_between_pumps() -> None:
    bus = InMemorySubscriptionBus()
    seen: list[str] = []
    arrivals: dict[str, anyio.Event] = {"bot://balance": anyio.Event(), "bot://orders": anyio.Event()}

    def listener(event: ServerEvent) -> None:
        assert isinstance(event, ResourceUpdated)
        seen.append(event.uri)
        if event.uri in arrivals:
            arrivals[event.uri].set()

    bus.subscribe(listener)
    notifier = ChangeNotifier(bus, interval_s=3600)

    def subscribe(callback: object) -> object:
        return lambda: None

    # Two pumps share the notifier, as when two in-process clients enter the server's lifespan.
    async with notifier.running(subscribe), notifier.running(subscribe):  # type: ignore[arg-type]
        notifier.on_engine_change({"balance"})
        with anyio.fail_after(10):
            await arrivals["bot://balance"].wait()
        notifier.touch("bot://balance")  # within the interval: held back
        notifier.touch("bot://orders")
        with anyio.fail_after(10):
            await arrivals["bot://orders"].wait()
    assert seen.count("bot://balance") == 1
    assert seen.count("bot://orders") == 1
    assert seen.count("bot://status") == 1
