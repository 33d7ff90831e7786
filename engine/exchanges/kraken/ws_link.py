"""One Kraken WebSocket v2 connection at a time: connect, receive with an application ping and a heartbeat
watchdog, close; plus the reconnect loop's waiting. Shared by the public feed and the private client.

Errors (added to the protocol's tree)::

    KrakenRetryableError (protocol)
    ├── WsUnavailable      not connected: the request was not sent (use REST)
    ├── WsOutcomeUnknown   sent, but no answer came (timeout, connection lost): check before resending
    └── StaleConnection    nothing received for longer than the watchdog allows: reconnect
"""

import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from engine.exchanges.kraken.backoff import DEFAULT_RECONNECT, AttemptWindow, Backoff, reconnect_delay
from engine.exchanges.kraken.protocol.errors import KrakenFatalError, KrakenRetryableError
from engine.exchanges.kraken.protocol.ws_requests import ping
from engine.redaction import redacted_logger

__all__ = [
    "CONNECTION_ERRORS",
    "DEFAULT_WS_SETTINGS",
    "StaleConnection",
    "WsLink",
    "WsOutcomeUnknown",
    "WsSettings",
    "WsUnavailable",
]

log = redacted_logger(__name__)


class WsUnavailable(KrakenRetryableError):
    """The WebSocket is not connected; nothing was sent."""


class WsOutcomeUnknown(KrakenRetryableError):
    """The request was sent but no answer came; it may or may not have been executed."""


class StaleConnection(KrakenRetryableError):
    """No message arrived within the watchdog period."""


# What ends a connection and calls for a reconnect (anything else is a bug and propagates).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionClosed,
    InvalidHandshake,
    OSError,
    TimeoutError,
    KrakenRetryableError,
)


@dataclass(frozen=True, slots=True)
class WsSettings:
    """Timing of a WebSocket client.

    Attributes:
        ping_interval_s: send an application ``ping`` this often (Kraken drops idle connections after ~1 min).
        watchdog_s: reconnect when nothing arrived for this long (Kraken sends a heartbeat about every second
            once subscribed).
        request_timeout_s: how long to wait for a method's answer.
        connect_timeout_s: how long to wait for the opening handshake.
        reconnect: the reconnect backoff.
        attempt_limit: connection attempts allowed per 10 minutes (Kraken bans an IP at about 150).
    """

    ping_interval_s: float = 20.0
    watchdog_s: float = 10.0
    request_timeout_s: float = 5.0
    connect_timeout_s: float = 10.0
    reconnect: Backoff = field(default=DEFAULT_RECONNECT)
    attempt_limit: int = 100


DEFAULT_WS_SETTINGS = WsSettings()


class WsLink:
    """Opens connections to ``url`` and reads from the current one with ping and watchdog.

    Args:
        url: the WebSocket URL.
        settings: timings.
        rand: uniform numbers in [0, 1) for the jitter.
        monotonic, sleep: the clock and the sleeper (injected in tests).
    """

    def __init__(
        self,
        url: str,
        settings: WsSettings,
        *,
        rand: Callable[[], float],
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.url = url
        self.settings = settings
        self._rand = rand
        self._monotonic = monotonic
        self._sleep = sleep
        self._window = AttemptWindow(settings.attempt_limit)
        self._req_ids = itertools.count(1)
        self.ws: ClientConnection | None = None
        self.failures = 0  # consecutive failed connections
        self.connections = 0
        self.maintenance = False
        self.last_message_mono: float | None = None
        self.last_error = ""
        self._next_ping = 0.0

    def next_req_id(self) -> int:
        return next(self._req_ids)

    async def open(self) -> ClientConnection:
        """Connect (respecting the attempt window).

        Raises:
            KrakenFatalError: the URL is invalid (no retry can help).
            OSError, InvalidHandshake, TimeoutError: the attempt failed.
        """
        wait = self._window.wait_time(self._monotonic())
        if wait > 0:
            log.warning("kraken WS %s: connection attempt limit reached; waiting %.0fs", self.url, wait)
            await self._sleep(wait)
        self._window.record(self._monotonic())
        try:
            ws = await connect(
                self.url,
                open_timeout=self.settings.connect_timeout_s,
                ping_interval=None,
                close_timeout=2,
                max_size=2**24,
            )
        except InvalidURI as exc:
            raise KrakenFatalError(f"invalid WebSocket URL {self.url!r}") from exc
        self.ws = ws
        self.connections += 1
        now = self._monotonic()
        self.last_message_mono = now
        self._next_ping = now + self.settings.ping_interval_s
        return ws

    async def recv(self) -> str:
        """The next message; sends pings when due.

        Raises:
            StaleConnection: nothing arrived within the watchdog period.
            ConnectionClosed: the connection ended.
        """
        ws = self.ws
        if ws is None:
            raise WsUnavailable("not connected")
        while True:
            now = self._monotonic()
            last = self.last_message_mono if self.last_message_mono is not None else now
            deadline = min(self._next_ping, last + self.settings.watchdog_s)
            with anyio.move_on_after(max(0.0, deadline - now)):
                message = await ws.recv()
                self.last_message_mono = self._monotonic()
                self.failures = 0
                return message if isinstance(message, str) else message.decode()
            now = self._monotonic()
            if now >= last + self.settings.watchdog_s:
                raise StaleConnection(f"nothing received for {self.settings.watchdog_s:.1f}s")
            if now >= self._next_ping:
                await ws.send(ping(self.next_req_id()))
                self._next_ping = now + self.settings.ping_interval_s

    async def send(self, text: str) -> None:
        ws = self.ws
        if ws is None:
            raise WsUnavailable("not connected")
        await ws.send(text)

    async def close(self) -> None:
        """Close the current connection (bounded, and shielded so a cancelled caller still releases it)."""
        ws, self.ws = self.ws, None
        if ws is None:
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(3):
            await ws.close()

    async def backoff(self, error: BaseException | None) -> bool:
        """Wait before the next attempt; False when the policy gives up."""
        self.last_error = "" if error is None else f"{type(error).__name__}: {error}"
        delay = reconnect_delay(
            self.failures,
            error,
            policy=self.settings.reconnect,
            rand=self._rand(),
            maintenance=self.maintenance,
        )
        self.failures += 1
        if delay is None:
            log.error("kraken WS %s: giving up after %s", self.url, self.last_error)
            return False
        log.warning("kraken WS %s: %s; reconnecting in %.2fs", self.url, self.last_error or "closed", delay)
        await self._sleep(delay)
        return True
