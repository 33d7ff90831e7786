"""``KrakenExchange``: the live Kraken venue behind the engine's :class:`~engine.exchanges.port.ExchangePort`.

Orders go out over the private WebSocket (``add_order`` with the engine's client id as ``cl_ord_id``) and over REST
when the WebSocket is down or its answer was lost; an order whose fate is unknown is looked up by ``cl_ord_id``
before anything is resent, so it is never placed twice. Outcomes come from the ``executions`` channel and become
engine events through the bound handler: ``OrderAccepted`` (once, before anything else about the order),
``OrderFilled`` (once per Kraken trade id, however often Kraken repeats it), ``OrderCanceled``, ``OrderExpired``,
``OrderRejected``. An order with an expiry (``OrderRequest.expires_ns``) goes out good-till-date (WebSocket
``time_in_force: "gtd"`` with an RFC3339 ``expire_time``, REST ``timeinforce=GTD`` with a UNIX ``expiretm``, both
to the second, rounded down) and Kraken's ``expired`` report becomes ``OrderExpired``; an expiring market order, or
an expiry not after the adapter's clock, is rejected before anything is sent. After a reconnect the executions
snapshot (open orders and the last fills) is compared with what the adapter tracks, and orders that closed
meanwhile are settled over REST (their fills first). While the adapter runs, the dead man's switch is re-armed
every ``dead_man_interval_s`` (Kraken cancels every order if it lapses).

Lifecycle: ``await start()``, then ``await reconcile(...)`` once (executions are held back until then, so that the
engine applies the reconciliation before any live event), trade, ``await stop()``. Between them the background
loops run in one task of the adapter's own, which owns their task group (asyncio only, like websockets).

Errors raised to the engine are the port's: :class:`~engine.exchanges.port.ExchangeUnavailable` (outcome unknown,
try later; reconciliation settles it) and :class:`~engine.exchanges.port.OrderRefused`.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from types import MappingProxyType

import anyio
from anyio.abc import TaskGroup

from engine.domain.instrument import Instrument, normalize_asset
from engine.domain.market_data import MarketEvent
from engine.domain.orders import (
    ClientOrderId,
    Order,
    OrderEvent,
    OrderType,
)
from engine.exchanges.kraken.order_tracker import LiveOrder, OrderTracker
from engine.exchanges.kraken.protocol.errors import KrakenError, KrakenFatalError, KrakenUserError
from engine.exchanges.kraken.protocol.timestamps import ns_to_rfc3339, ns_to_seconds
from engine.exchanges.kraken.protocol.ws_messages import (
    BalancesMsg,
    ExecutionsMsg,
    MethodResponse,
    WsMessage,
)
from engine.exchanges.kraken.reconcile import VenueRecords, reconcile_orders
from engine.exchanges.kraken.rest_client import KrakenRestClient
from engine.exchanges.kraken.translate import (
    InstrumentIndex,
    cl_ord_id_for,
    venue_order,
)
from engine.exchanges.kraken.ws_client import KrakenPrivateWs
from engine.exchanges.kraken.ws_link import DEFAULT_WS_SETTINGS, WsOutcomeUnknown, WsSettings, WsUnavailable
from engine.exchanges.port import (
    ExchangeHealth,
    ExchangeUnavailable,
    ExecutionHandler,
    OrderRefused,
    OrderRequest,
    Reconciliation,
    VenueOrder,
    expiry_error,
)
from engine.redaction import redacted_logger

__all__ = ["KrakenExchange"]

log = redacted_logger(__name__)
ERR_UNKNOWN_ORDER = "EOrder:Unknown order"
_NS = 1_000_000_000


class KrakenExchange:
    """Kraken Spot as an engine venue (``name`` "kraken", ``is_live`` True).

    Args:
        rest: the REST client (with keys); closed by :meth:`stop` when ``owns_rest``.
        instruments: the tradable pairs, keyed by engine pair name.
        ws_private_url: the private WebSocket (None: REST only, polled for outcomes).
        dead_man_switch_s: the switch's timeout (None: not used); re-armed every ``dead_man_interval_s``.
        lookback_s: how far back reconciliation reads closed orders and fills when no open order is older.
        poll_interval_s: how often open orders are checked over REST while the WebSocket is down.
    """

    def __init__(
        self,
        rest: KrakenRestClient,
        instruments: Mapping[str, Instrument],
        *,
        ws_private_url: str | None,
        settings: WsSettings = DEFAULT_WS_SETTINGS,
        dead_man_switch_s: int | None = 60,
        dead_man_interval_s: float = 20.0,
        lookback_s: int = 86_400,
        poll_interval_s: float = 5.0,
        connect_wait_s: float = 10.0,
        owns_rest: bool = True,
        clock_ns: Callable[[], int] = time.time_ns,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._rest = rest
        self._instruments = dict(instruments)
        self._view = MappingProxyType(self._instruments)
        self._index = InstrumentIndex.of(self._instruments.values())
        self._dms_s = dead_man_switch_s
        self._dms_every = dead_man_interval_s
        self._lookback_ns = lookback_s * _NS
        self._poll_every = poll_interval_s
        self._connect_wait = connect_wait_s
        self._owns_rest = owns_rest
        self._clock_ns = clock_ns
        self._sleep = sleep
        self._ws = (
            KrakenPrivateWs(ws_private_url, self._token, self._on_private, settings=settings, sleep=sleep)
            if ws_private_url
            else None
        )
        self._handler: ExecutionHandler | None = None
        self._tracker = OrderTracker(self._instruments, self._emit, clock_ns)
        self._held: list[ExecutionsMsg] = []
        self._live = False
        self._reconciled = anyio.Event()
        self._signal = anyio.Event()
        self._tg: TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stopped = anyio.Event()
        self._ws_balances: dict[str, Decimal] | None = None
        self.last_message_ns: int | None = None
        self.events_emitted = 0
        self.dms_armed_ns: int | None = None

    # -- port: identity and wiring -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return "kraken"

    @property
    def is_live(self) -> bool:
        return True

    def bind(self, handler: ExecutionHandler) -> None:
        self._handler = handler

    def instruments(self) -> Mapping[str, Instrument]:
        return self._view

    def on_market(self, event: MarketEvent) -> None:
        """Kraken matches orders itself; market data needs no action here."""

    @property
    def private_ws(self) -> KrakenPrivateWs | None:
        return self._ws

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background loops (private WebSocket, dead man's switch, REST polling) and wait up to
        ``connect_wait_s`` for the private WebSocket; trading works over REST meanwhile."""
        if self._runner is not None:
            return
        ready = anyio.Event()
        self._stopped = anyio.Event()
        # The loops live in one task that owns their task group: the port's start()/stop() pair cannot hold a
        # task group open across the caller's own cancel scopes. websockets needs asyncio anyway.
        self._runner = asyncio.get_running_loop().create_task(self._run(ready), name="kraken-exchange")
        await ready.wait()
        ws = self._ws
        if ws is not None:
            with anyio.move_on_after(self._connect_wait):
                await ws.wait_connected()
            if not ws.connected:
                log.warning("kraken: private WebSocket not connected yet; using REST meanwhile")

    async def _run(self, ready: anyio.Event) -> None:
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                if self._ws is not None:
                    await tg.start(self._ws.run)
                tg.start_soon(self._release_when_reconciled)
                if self._dms_s is not None:
                    tg.start_soon(self._dead_man_loop)
                tg.start_soon(self._poll_loop)
                ready.set()
        except Exception:
            log.exception("kraken: the exchange's background tasks failed")
        finally:
            self._tg = None
            ready.set()
            self._stopped.set()

    async def stop(self) -> None:
        """Stop the loops and close connections (idempotent). The dead man's switch stays armed: if the engine
        does not come back within its timeout, Kraken cancels every open order."""
        runner, self._runner = self._runner, None
        if runner is not None:
            tg = self._tg
            if tg is not None:
                tg.cancel_scope.cancel()
            await self._stopped.wait()
        if self._owns_rest:
            with anyio.CancelScope(shield=True):
                await self._rest.aclose()

    async def _token(self) -> str:
        return (await self._rest.ws_token()).token

    # -- events ---------------------------------------------------------------------------------------------

    def _emit(self, event: OrderEvent) -> None:
        handler = self._handler
        if handler is None:
            raise RuntimeError("KrakenExchange has no execution handler: call bind() first")
        self.events_emitted += 1
        handler(event)
        self._signal.set()
        self._signal = anyio.Event()

    async def next_event(self) -> None:
        """Wait until the adapter emits its next order event (for supervisors and tests; bound it)."""
        await self._signal.wait()

    # -- private WebSocket messages -------------------------------------------------------------------------

    def _on_private(self, msg: WsMessage) -> None:
        self.last_message_ns = self._clock_ns()
        if isinstance(msg, BalancesMsg):
            self._on_balances(msg)
        elif isinstance(msg, ExecutionsMsg):
            if self._live:
                self._settle_later(self._tracker.on_executions(msg))
            else:
                self._held.append(msg)

    def _on_balances(self, msg: BalancesMsg) -> None:
        if msg.type == "snapshot":
            self._ws_balances = {normalize_asset(b.asset): b.balance for b in msg.balances}
        elif self._ws_balances is not None:
            for entry in msg.ledger:
                self._ws_balances[normalize_asset(entry.asset)] = entry.balance

    async def _release_when_reconciled(self) -> None:
        # Runs only once the engine has applied the reconciliation (it does so without awaiting).
        await self._reconciled.wait()
        held, self._held = self._held, []
        self._live = True
        for msg in held:
            self._settle_later(self._tracker.on_executions(msg))

    # -- settling over REST ---------------------------------------------------------------------------------

    def _settle_later(self, lives: list[LiveOrder]) -> None:
        if lives and self._tg is not None:
            self._tg.start_soon(self._settle, lives)

    async def _settle(self, lives: list[LiveOrder]) -> None:
        """Bring ``lives`` up to date from REST: missing fills first, then how the order ended."""
        wanted = [live for live in lives if live.open and live.txid]
        if not wanted:
            return
        try:
            orders = await self._rest.query_orders([live.txid for live in wanted if live.txid])
            start = min((o.opentm_ns for o in orders.values()), default=self._clock_ns()) // _NS - 1
            trades = (await self._rest.all_trades(start=start)).trades
        except KrakenError as exc:
            log.warning("kraken: could not settle %d orders over REST: %s", len(wanted), exc)
            return
        for live in wanted:
            ko = orders.get(live.txid or "")
            if ko is not None and live.open:
                self._tracker.apply_venue(live, ko, [t for t in trades.values() if t.ordertxid == ko.txid])

    async def _poll_loop(self) -> None:
        while True:
            await self._sleep(self._poll_every)
            if self._live and (self._ws is None or not self._ws.connected):
                await self._settle(self._tracker.open_orders())

    # -- dead man's switch ----------------------------------------------------------------------------------

    async def arm_dead_man_switch(self) -> bool:
        """(Re-)arm Kraken's cancel-all-after timer, over the WebSocket or else REST; False if both failed."""
        if self._dms_s is None:
            return False
        timeout = self._dms_s
        if self._ws is not None and self._ws.connected:
            try:
                response = await self._ws.cancel_all_orders_after(timeout)
            except (WsUnavailable, WsOutcomeUnknown):
                pass
            else:
                if response.success:
                    self.dms_armed_ns = self._clock_ns()
                    return True
        try:
            await self._rest.cancel_all_orders_after(timeout)
        except KrakenError as exc:
            log.error("kraken: could not arm the dead man's switch: %s", exc)
            return False
        self.dms_armed_ns = self._clock_ns()
        return True

    async def _dead_man_loop(self) -> None:
        ws = self._ws
        if ws is not None:
            # Prefer the WebSocket (no REST nonce or counter) when it comes up quickly.
            with anyio.move_on_after(self._connect_wait):
                await ws.wait_connected()
        while True:
            await self.arm_dead_man_switch()
            await self._sleep(self._dms_every)

    # -- port: orders ---------------------------------------------------------------------------------------

    async def submit_order(self, request: OrderRequest) -> None:
        """Place ``request``; the outcome arrives as events.

        Raises:
            OrderRefused: the client id is already in use.
            ExchangeUnavailable: Kraken could not be reached; the order may or may not exist (reconcile).
        """
        if request.client_id in self._tracker.orders:
            raise OrderRefused(f"client order id {request.client_id!r} already used")
        instrument = self._instruments.get(request.pair)
        cl_ord_id = cl_ord_id_for(request.client_id)
        live = LiveOrder(request.client_id, cl_ord_id, request.pair, request.side, request.qty, request.strategy)
        self._tracker.register(live)
        if instrument is None:
            self._tracker.reject(live, "EQuery:Unknown asset pair")
            return
        refused = expiry_error(request, self._clock_ns())
        if refused is not None:
            self._tracker.reject(live, refused)
            return
        market = request.order_type is OrderType.MARKET
        expires = request.expires_ns
        if self._ws is not None and self._ws.connected:
            try:
                response = await self._ws.add_order(
                    symbol=instrument.ws_symbol,
                    side=request.side.value,
                    order_type="market" if market else "limit",
                    order_qty=request.qty,
                    limit_price=None if market else request.limit_price,
                    cl_ord_id=cl_ord_id,
                    post_only=True if request.post_only else None,
                    time_in_force=None if expires is None else "gtd",
                    expire_time=None if expires is None else ns_to_rfc3339(expires),
                )
            except WsUnavailable:
                pass
            except WsOutcomeUnknown as exc:
                log.warning("kraken add_order %s: %s; looking it up before resending", cl_ord_id, exc)
                if await self._found(live):
                    return
            else:
                if self._answered(live, response):
                    return
                if await self._found(live):
                    return
        await self._submit_rest(live, request, instrument)

    def _answered(self, live: LiveOrder, response: MethodResponse) -> bool:
        """Handle a WS add_order answer; False when it calls for the REST path (after a lookup)."""
        if response.success:
            result = response.result if isinstance(response.result, Mapping) else {}
            order_id = result.get("order_id")
            if isinstance(order_id, str):
                self._tracker.accept(live, order_id)
            return True
        exc = response.exception()
        if isinstance(exc, KrakenUserError | KrakenFatalError):
            self._tracker.reject(live, response.error or str(exc))
            return True
        return False

    async def _found(self, live: LiveOrder) -> bool:
        """Whether Kraken has the order (then it is accepted). Raises ExchangeUnavailable if we cannot tell."""
        try:
            existing = await self._rest.find_order(live.cl_ord_id)
        except KrakenError as exc:
            raise ExchangeUnavailable(f"order {live.client_id}: outcome unknown ({exc})") from None
        if existing is None:
            return False
        self._tracker.accept(live, existing.txid, existing.opentm_ns)
        return True

    async def _submit_rest(self, live: LiveOrder, request: OrderRequest, instrument: Instrument) -> None:
        market = request.order_type is OrderType.MARKET
        try:
            result = await self._rest.add_order(
                pair=instrument.rest_pair,
                side=request.side.value,
                ordertype="market" if market else "limit",
                volume=request.qty,
                price=None if market else request.limit_price,
                cl_ord_id=live.cl_ord_id,
                oflags="post" if request.post_only else None,
                timeinforce=None if request.expires_ns is None else "GTD",
                expiretm=None if request.expires_ns is None else ns_to_seconds(request.expires_ns),
            )
        except (KrakenUserError, KrakenFatalError) as exc:
            self._tracker.reject(live, exc.errors[0] if exc.errors else str(exc))
            return
        except KrakenError as exc:
            raise ExchangeUnavailable(f"order {live.client_id}: {exc}") from None
        if result.txids:
            self._tracker.accept(live, result.txids[0])

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        """Ask Kraken to cancel; the ``OrderCanceled`` event follows.

        Raises:
            OrderRefused: unknown or already closed order.
            ExchangeUnavailable: Kraken could not be reached.
        """
        live = self._tracker.orders.get(client_id)
        if live is None or not live.open:
            raise OrderRefused(ERR_UNKNOWN_ORDER)
        if self._ws is not None and self._ws.connected:
            try:
                if live.txid is not None:
                    response = await self._ws.cancel_order(order_id=live.txid)
                else:
                    response = await self._ws.cancel_order(cl_ord_id=live.cl_ord_id)
            except (WsUnavailable, WsOutcomeUnknown):
                pass
            else:
                if response.success:
                    return  # the executions channel reports the cancellation
                await self._settle([live])
                raise OrderRefused(response.error or ERR_UNKNOWN_ORDER)
        try:
            if live.txid is not None:
                await self._rest.cancel_order(txid=live.txid)
            else:
                await self._rest.cancel_order(cl_ord_id=live.cl_ord_id)
        except KrakenUserError as exc:
            await self._settle([live])
            raise OrderRefused(exc.errors[0] if exc.errors else str(exc)) from None
        except KrakenError as exc:
            raise ExchangeUnavailable(f"cancel {client_id}: {exc}") from None
        # Over REST no execution report may come: settle from REST (fills that came first, then the cancel).
        await self._settle([live])

    async def cancel_all(self) -> int:
        """Cancel every open order on the account; returns Kraken's count."""
        if self._ws is not None and self._ws.connected:
            try:
                response = await self._ws.cancel_all()
            except (WsUnavailable, WsOutcomeUnknown):
                pass
            else:
                if response.success and isinstance(response.result, Mapping):
                    return int(response.result.get("count", 0))
        try:
            result = await self._rest.cancel_all()
        except KrakenError as exc:
            raise ExchangeUnavailable(f"cancel_all: {exc}") from None
        await self._settle(self._tracker.open_orders())
        return result.count

    async def balances(self) -> dict[str, Decimal]:
        """Totals per asset: the private WebSocket's view when connected, else REST ``Balance``."""
        if self._ws is not None and self._ws.connected and self._ws_balances is not None:
            return dict(self._ws_balances)
        try:
            return await self._rest.balance()
        except KrakenError as exc:
            raise ExchangeUnavailable(f"balances: {exc}") from None

    async def open_orders(self) -> list[VenueOrder]:
        try:
            orders = await self._rest.open_orders()
        except KrakenError as exc:
            raise ExchangeUnavailable(f"open orders: {exc}") from None
        out = []
        for ko in orders.values():
            live = self._tracker.by_ids(ko.txid, ko.cl_ord_id)
            out.append(venue_order(ko, live.client_id if live else None, self._index.find(ko.pair)))
        return out

    def health(self) -> ExchangeHealth:
        ws = self._ws
        if ws is None:
            return ExchangeHealth("kraken", True, self.last_message_ns, "REST only")
        detail = "private WebSocket connected" if ws.connected else f"private WebSocket down: {ws.link.last_error}"
        open_count = len(self._tracker.open_orders())
        return ExchangeHealth("kraken", ws.connected, self.last_message_ns, f"{detail}; {open_count} open orders")

    # -- reconciliation -------------------------------------------------------------------------------------

    async def reconcile(self, local_orders: list[Order], known_trade_ids: set[str]) -> Reconciliation:
        """Compare the engine's orders and fills with Kraken's; start following the orders still open.

        Raises:
            ExchangeUnavailable: Kraken could not be asked (the adapter is stopped then).
        """
        rest = self._rest
        now = self._clock_ns()
        open_local = [o for o in local_orders if o.is_open]
        since_ns = min([o.created_ts_ns for o in open_local] + [now - self._lookback_ns]) - 60 * _NS
        since_s = max(0, since_ns // _NS)
        failure: ExchangeUnavailable | None = None
        try:
            opened = await rest.open_orders()
            closed = await rest.all_closed_orders(start=since_s)
            trades = dict((await rest.all_trades(start=since_s)).trades)
            seen = {**closed, **opened}
            missing = [o.venue_order_id for o in open_local if o.venue_order_id and o.venue_order_id not in seen]
            if missing:
                closed.update(await rest.query_orders(missing))
            cl_seen = {ko.cl_ord_id for ko in {**closed, **opened}.values() if ko.cl_ord_id}
            for order in open_local:
                cl = cl_ord_id_for(order.client_id)
                if order.venue_order_id is None and cl not in cl_seen:
                    found = await rest.find_order(cl)
                    if found is not None:
                        (opened if found.status in ("open", "pending") else closed)[found.txid] = found
            balances = await rest.balance()
        except KrakenError as exc:
            failure = ExchangeUnavailable(f"reconciliation failed: {exc}")
        if failure is not None:
            # The engine cannot start without it: release the connections here, in the task that started them.
            await self.stop()
            raise failure
        outcome = reconcile_orders(
            local_orders, known_trade_ids, VenueRecords(opened, closed, trades, balances), self._index
        )
        for still in outcome.still_open:
            order = still.order
            live = LiveOrder(
                order.client_id,
                cl_ord_id_for(order.client_id),
                order.pair,
                order.side,
                order.qty,
                order.strategy,
                txid=still.txid,
                accepted=still.txid is not None,
                filled=still.filled,
            )
            self._tracker.register(live)
        self._tracker.fill_ids |= set(known_trade_ids) | outcome.fill_ids
        self._tracker.notes.extend(outcome.report.notes)
        self._reconciled.set()
        return outcome.report
