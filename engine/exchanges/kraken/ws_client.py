"""Kraken WebSocket v2 clients: short feed / drain / send loops over the sans-I/O codec.

* :class:`KrakenPublicWs`: an async iterator of market messages (ticker, trade, ohlc, instrument, status) and
  verified books. It maintains each book from snapshot and updates, checks Kraken's CRC32 after every message, and
  on a mismatch drops the book and resubscribes to get a fresh snapshot. One task, no background work: the
  consumer's ``async for`` drives connect, subscribe, receive, ping, watchdog and reconnect.
* :class:`KrakenPrivateWs`: the authenticated connection, run as one background task (:meth:`run`): token from
  REST (renewed when Kraken refuses it), ``executions`` and ``balances`` subscriptions (handed to a callback), and
  trading methods (:meth:`request` and helpers) whose answers are matched by ``req_id``.

Both reconnect with exponential backoff and jitter (:mod:`~engine.exchanges.kraken.backoff`) and resubscribe.
Errors: see :mod:`~engine.exchanges.kraken.ws_link` (``WsUnavailable``, ``WsOutcomeUnknown``, ``StaleConnection``)
and :class:`~engine.exchanges.kraken.backoff.GiveUp`.
"""

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import overload

import anyio
from anyio.abc import TaskStatus
from websockets.exceptions import ConnectionClosed

from engine.exchanges.kraken.backoff import GiveUp, jitter_source
from engine.exchanges.kraken.protocol import ws_requests as wsr
from engine.exchanges.kraken.protocol.book import OrderBook
from engine.exchanges.kraken.protocol.errors import KrakenError, KrakenFatalError, KrakenProtocolError
from engine.exchanges.kraken.protocol.ws_codec import decode
from engine.exchanges.kraken.protocol.ws_messages import (
    BookMsg,
    Heartbeat,
    InstrumentMsg,
    MethodResponse,
    Pong,
    Status,
    SubscribeAck,
    UnknownMessage,
    WsMessage,
)
from engine.exchanges.kraken.ws_link import (
    CONNECTION_ERRORS,
    DEFAULT_WS_SETTINGS,
    StaleConnection,
    WsLink,
    WsOutcomeUnknown,
    WsSettings,
    WsUnavailable,
)
from engine.redaction import redacted_logger

__all__ = [
    "PUBLIC_CHANNELS",
    "KrakenPrivateWs",
    "KrakenPublicWs",
    "VerifiedBook",
    "is_token_error",
    "raise_for_response",
]

log = redacted_logger(__name__)
PUBLIC_CHANNELS = ("instrument", "ticker", "book", "trade", "ohlc")


def is_token_error(error: str | None) -> bool:
    """Whether Kraken refused the WebSocket token (expired or unknown): get a new one and try again."""
    text = (error or "").lower()
    return "invalid session" in text or "token" in text


@dataclass(frozen=True, slots=True)
class VerifiedBook:
    """A book whose checksum matched after the message that changed it."""

    symbol: str
    book: OrderBook
    ts_ns: int


class KrakenPublicWs:
    """The public market-data connection, consumed with ``async for item in feed.messages()``.

    Args:
        url: ``wss://ws.kraken.com/v2`` or a fake.
        symbols: WS v2 symbols (``BTC/USD``).
        channels: which of ``PUBLIC_CHANNELS`` to subscribe to.
        book_depth, ohlc_interval: subscription parameters.
        precisions: (price, qty) decimals per symbol for the checksum until the instrument channel says otherwise.
        names: engine pair name per symbol, for the decoded domain values.
    """

    def __init__(
        self,
        url: str,
        symbols: Sequence[str],
        *,
        channels: Collection[str] = PUBLIC_CHANNELS,
        book_depth: int = 10,
        ohlc_interval: int = 1,
        precisions: Mapping[str, tuple[int, int]] | None = None,
        names: Mapping[str, str] | None = None,
        settings: WsSettings = DEFAULT_WS_SETTINGS,
        rand: Callable[[], float] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        unknown = set(channels) - set(PUBLIC_CHANNELS)
        if unknown:
            raise ValueError(f"unknown public channels: {sorted(unknown)}")
        self.symbols = list(symbols)
        self.channels = [c for c in PUBLIC_CHANNELS if c in channels]
        self.depth = book_depth
        self.interval = ohlc_interval
        self.precisions = dict(precisions or {})
        self.names = dict(names or {})
        self.link = WsLink(url, settings, rand=rand or jitter_source(), monotonic=monotonic, sleep=sleep)
        self._clock_ns = clock_ns
        self.books: dict[str, OrderBook] = {}
        self.checksum_failures = 0
        self.resyncs = 0
        self.malformed = 0
        self.errors: list[str] = []

    @property
    def connected(self) -> bool:
        return self.link.ws is not None

    async def _subscribe(self) -> None:
        link = self.link
        for channel in self.channels:
            rid = link.next_req_id()
            if channel == "instrument":
                text = wsr.subscribe_instrument(req_id=rid)
            elif channel == "ticker":
                text = wsr.subscribe_ticker(self.symbols, req_id=rid)
            elif channel == "book":
                text = wsr.subscribe_book(self.symbols, depth=self.depth, req_id=rid)
            elif channel == "trade":
                text = wsr.subscribe_trade(self.symbols, req_id=rid)
            else:
                text = wsr.subscribe_ohlc(self.symbols, interval=self.interval, req_id=rid)
            await link.send(text)

    async def _resync(self, symbol: str) -> None:
        """Drop the book and ask for a fresh snapshot (Kraken's advice on a checksum mismatch)."""
        self.books.pop(symbol, None)
        self.resyncs += 1
        link = self.link
        await link.send(wsr.unsubscribe("book", symbols=[symbol], depth=self.depth, req_id=link.next_req_id()))
        await link.send(wsr.subscribe_book([symbol], depth=self.depth, req_id=link.next_req_id()))

    async def _books(self, msg: BookMsg) -> list[VerifiedBook]:
        out = []
        for data in msg.books:
            symbol = data.symbol
            if msg.type == "snapshot":
                price_precision, qty_precision = self.precisions.get(symbol, (8, 8))
                book = OrderBook(symbol, depth=self.depth, price_precision=price_precision, qty_precision=qty_precision)
                book.apply_snapshot(data.bids, data.asks)
                self.books[symbol] = book
            else:
                existing = self.books.get(symbol)
                if existing is None:
                    continue  # an update in flight before the snapshot we asked for
                book = existing
                book.apply_update(data.bids, data.asks)
            if not book.verify(data.checksum):
                self.checksum_failures += 1
                log.warning("kraken WS book %s: checksum mismatch; resubscribing", symbol)
                await self._resync(symbol)
                continue
            out.append(VerifiedBook(symbol, book, data.ts_ns or self._clock_ns()))
        return out

    async def _instrument(self, msg: InstrumentMsg) -> None:
        for pair in msg.pairs:
            precisions = (pair.price_precision, pair.qty_precision)
            if pair.symbol in self.symbols and self.precisions.get(pair.symbol) != precisions:
                self.precisions[pair.symbol] = precisions
                book = self.books.get(pair.symbol)
                if book is not None and (book.price_precision, book.qty_precision) != precisions:
                    await self._resync(pair.symbol)

    async def _handle(self, text: str) -> list[WsMessage | VerifiedBook]:
        try:
            msg = decode(text, self.names)
        except KrakenProtocolError as exc:
            self.malformed += 1
            log.warning("kraken WS: skipping a malformed message: %s", exc)
            return []
        if isinstance(msg, BookMsg):
            return list(await self._books(msg))
        if isinstance(msg, Heartbeat | Pong | UnknownMessage):
            return []
        if isinstance(msg, SubscribeAck):
            if not msg.success:
                self.errors.append(msg.error or "subscribe failed")
                log.error("kraken WS subscribe %s %s failed: %s", msg.channel, msg.symbol, msg.error)
            return []
        if isinstance(msg, Status):
            self.link.maintenance = msg.system == "maintenance"
        elif isinstance(msg, InstrumentMsg):
            await self._instrument(msg)
        return [msg]

    @overload
    def messages(self) -> AsyncGenerator[WsMessage | VerifiedBook]: ...

    @overload
    def messages(self, wait_s: Callable[[], float | None]) -> AsyncGenerator[WsMessage | VerifiedBook | None]: ...

    async def messages(
        self, wait_s: Callable[[], float | None] | None = None
    ) -> AsyncGenerator[WsMessage | VerifiedBook | None]:
        """Market messages and verified books, forever (reconnecting as needed).

        Args:
            wait_s: asked before each wait for a message: the longest to wait (seconds), or None for no limit.
                When that time passes first, ``None`` is yielded (a wake-up: the caller's deadline came) and the
                connection stays up; the wait is bounded inside this generator, where cancelling the receive
                loses nothing (cancelling a pending ``__anext__`` instead would end the generator and its
                connection).

        Raises:
            GiveUp: the reconnect policy gave up (its cause is the last failure).
        """
        link = self.link
        while True:
            error: BaseException | None = None
            try:
                await link.open()
                await self._subscribe()
                while True:
                    limit = None if wait_s is None else wait_s()
                    text: str | None = None
                    if limit is None:
                        text = await link.recv()
                    else:
                        with anyio.move_on_after(max(limit, 0.0)):
                            text = await link.recv()
                    if text is None:
                        yield None
                        continue
                    for item in await self._handle(text):
                        yield item
            except CONNECTION_ERRORS as exc:
                error = exc
            finally:
                self.books.clear()
                await link.close()
            if not await link.backoff(error):
                raise GiveUp(f"public WebSocket {link.url}: {link.last_error}") from error


@dataclass(slots=True)
class _Waiter:
    event: anyio.Event
    response: MethodResponse | None = None


class KrakenPrivateWs:
    """The authenticated connection: executions, balances and trading methods.

    Args:
        url: ``wss://ws-auth.kraken.com/v2`` or a fake.
        token_source: gets a fresh token (REST ``GetWebSocketsToken``).
        on_message: receives every ``executions`` and ``balances`` message, in order (synchronously).
        snap_trades: ask for the last 50 fills in the executions snapshot (recovers fills missed while down).
    """

    def __init__(
        self,
        url: str,
        token_source: Callable[[], Awaitable[str]],
        on_message: Callable[[WsMessage], None],
        *,
        settings: WsSettings = DEFAULT_WS_SETTINGS,
        snap_trades: bool = True,
        rand: Callable[[], float] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.link = WsLink(url, settings, rand=rand or jitter_source(), monotonic=monotonic, sleep=sleep)
        self.settings = settings
        self._token_source = token_source
        self._on_message = on_message
        self._snap_trades = snap_trades
        self._token: str | None = None
        self._waiters: dict[int, _Waiter] = {}
        self._subscriptions: dict[int, str] = {}  # req_id -> channel, to match Kraken's acks
        self._token_renewals: dict[str, int] = {}  # per channel, on the current connection
        self._ready = anyio.Event()
        self.connected = False
        self.gave_up = False
        self.token_renewals = 0

    async def wait_connected(self) -> None:
        """Wait until the executions subscription is up, or the client gave up (bound it with ``fail_after``)."""
        while not self.connected and not self.gave_up:
            await self._ready.wait()

    async def _new_token(self) -> str:
        self._token = await self._token_source()
        self.token_renewals += 1
        return self._token

    async def _subscribe(self, channel: str) -> None:
        token = self._token or await self._new_token()
        rid = self.link.next_req_id()
        self._subscriptions[rid] = channel
        if channel == "executions":
            text = wsr.subscribe_executions(token, snap_trades=self._snap_trades, req_id=rid)
        else:
            text = wsr.subscribe_balances(token, req_id=rid)
        await self.link.send(text)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, subscribe and dispatch until cancelled (or until reconnecting is hopeless)."""
        task_status.started()
        link = self.link
        while True:
            error: BaseException | None = None
            try:
                await link.open()
                self._token_renewals = {}
                await self._new_token()
                await self._subscribe("executions")
                await self._subscribe("balances")
                while True:
                    await self._dispatch(link.recv)
            except KrakenFatalError as exc:
                log.error("kraken private WS: %s; trading continues over REST", exc)
                self._give_up()
                return
            except CONNECTION_ERRORS as exc:
                error = exc
            finally:
                self._lost()
                await link.close()
            if not await link.backoff(error):
                self._give_up()
                return

    def _give_up(self) -> None:
        self.gave_up = True
        self._ready.set()

    async def _dispatch(self, receive: Callable[[], Awaitable[str]]) -> None:
        try:
            msg = decode(await receive())
        except KrakenProtocolError as exc:
            log.warning("kraken private WS: skipping a malformed message: %s", exc)
            return
        if isinstance(msg, MethodResponse):
            waiter = self._waiters.get(msg.req_id) if msg.req_id is not None else None
            if waiter is not None and waiter.response is None:
                waiter.response = msg
                waiter.event.set()
        elif isinstance(msg, SubscribeAck):
            await self._on_ack(msg)
        elif isinstance(msg, Status):
            self.link.maintenance = msg.system == "maintenance"
        elif not isinstance(msg, Heartbeat | Pong):
            self._on_message(msg)

    async def _on_ack(self, ack: SubscribeAck) -> None:
        # A failed subscription's answer may not name the channel; its req_id does.
        channel = ack.channel or self._subscriptions.get(ack.req_id or -1, "")
        if ack.success:
            if channel == "executions":
                self.connected = True
                self._ready.set()
            return
        tries = self._token_renewals.get(channel, 0)
        if is_token_error(ack.error) and tries < 2:
            self._token_renewals[channel] = tries + 1
            log.warning("kraken private WS: token refused (%s); getting a new one", ack.error)
            await self._new_token()
            await self._subscribe(channel)
            return
        exc = ack.exception()
        if isinstance(exc, KrakenFatalError):
            raise exc
        if channel == "executions":
            raise StaleConnection(f"subscribe executions failed: {ack.error}")
        # Balances are a convenience (REST has them); trading goes on without the subscription.
        log.error("kraken private WS: subscribe %s failed: %s", channel, ack.error)

    def _lost(self) -> None:
        self.connected = False
        self._ready = anyio.Event()
        for waiter in self._waiters.values():
            waiter.event.set()

    async def request(self, method: str, build: Callable[[str, int], str]) -> MethodResponse:
        """Send ``build(token, req_id)`` and wait for the answer (one token renewal if Kraken refuses it).

        Raises:
            WsUnavailable: not connected; nothing was sent.
            WsOutcomeUnknown: sent but unanswered (timeout or connection lost).
        """
        for attempt in range(2):
            if not self.connected or self._token is None:
                raise WsUnavailable(f"{method}: private WebSocket not connected")
            rid = self.link.next_req_id()
            waiter = _Waiter(anyio.Event())
            self._waiters[rid] = waiter
            try:
                try:
                    await self.link.send(build(self._token, rid))
                except ConnectionClosed:
                    raise WsOutcomeUnknown(f"{method}: connection lost while sending") from None
                with anyio.move_on_after(self.settings.request_timeout_s):
                    await waiter.event.wait()
            finally:
                self._waiters.pop(rid, None)
            response = waiter.response
            if response is None:
                raise WsOutcomeUnknown(f"{method}: no answer (connection lost or timed out)")
            if not response.success and is_token_error(response.error) and attempt == 0:
                await self._new_token()
                continue
            return response
        raise AssertionError("unreachable")

    # -- trading helpers ------------------------------------------------------------------------------------

    async def add_order(
        self,
        *,
        symbol: str,
        side: str,
        order_type: str,
        order_qty: Decimal,
        limit_price: Decimal | None = None,
        cl_ord_id: str | None = None,
        post_only: bool | None = None,
        time_in_force: str | None = None,
        expire_time: str | None = None,
    ) -> MethodResponse:
        def build(token: str, rid: int) -> str:
            return wsr.add_order(
                token,
                symbol=symbol,
                side=side,
                order_type=order_type,
                order_qty=order_qty,
                limit_price=limit_price,
                cl_ord_id=cl_ord_id,
                post_only=post_only,
                time_in_force=time_in_force,
                expire_time=expire_time,
                req_id=rid,
            )

        return await self.request("add_order", build)

    async def amend_order(
        self,
        *,
        order_qty: Decimal,
        order_id: str | None = None,
        cl_ord_id: str | None = None,
        limit_price: Decimal | None = None,
    ) -> MethodResponse:
        def build(token: str, rid: int) -> str:
            return wsr.amend_order(
                token,
                order_qty=order_qty,
                order_id=order_id,
                cl_ord_id=cl_ord_id,
                limit_price=limit_price,
                req_id=rid,
            )

        return await self.request("amend_order", build)

    async def cancel_order(self, *, order_id: str | None = None, cl_ord_id: str | None = None) -> MethodResponse:
        def build(token: str, rid: int) -> str:
            return wsr.cancel_order(
                token,
                order_ids=[order_id] if order_id else [],
                cl_ord_ids=[cl_ord_id] if cl_ord_id else [],
                req_id=rid,
            )

        return await self.request("cancel_order", build)

    async def cancel_all(self) -> MethodResponse:
        return await self.request("cancel_all", lambda token, rid: wsr.cancel_all(token, req_id=rid))

    async def cancel_all_orders_after(self, timeout_s: int) -> MethodResponse:
        return await self.request(
            "cancel_all_orders_after", lambda token, rid: wsr.cancel_all_orders_after(token, timeout_s, req_id=rid)
        )

    async def batch_add(self, *, symbol: str, orders: Sequence[Mapping[str, object]]) -> MethodResponse:
        return await self.request(
            "batch_add", lambda token, rid: wsr.batch_add(token, symbol=symbol, orders=orders, req_id=rid)
        )


def raise_for_response(response: MethodResponse) -> MethodResponse:
    """``response`` when it succeeded, else raise Kraken's classified error."""
    exc: KrakenError | None = response.exception()
    if exc is not None:
        raise exc
    return response
