"""Kraken Spot REST over httpx: the I/O around the sans-I/O request builders and parsers in ``protocol``.

The client paces itself by the REST call counter model (so Kraken does not have to refuse it), backs off
(exponentially, with jitter, a bounded number of times) on rate limits, service errors, HTTP 5xx and transport
failures, and never blindly resends an ``AddOrder`` whose outcome is unknown: it first looks the order up by its
``cl_ord_id`` (``OpenOrders``, then ``ClosedOrders``) and resends only when Kraken has no such order.

Keys are arguments (the caller reads the environment). Neither the key nor the secret appears in any exception,
log record or ``repr``: httpx exceptions (which carry the request and its headers) are translated and not chained.

Errors: the protocol's tree (:mod:`engine.exchanges.kraken.protocol.errors`), plus::

    KrakenRetryableError (protocol)
    ├── KrakenTransportError   connect/timeout/HTTP 5xx; ``maybe_sent`` says whether Kraken may have acted on it
    └── OrderOutcomeUnknown    an AddOrder may or may not have been placed and the client could not find out
"""

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal, TypeVar

import anyio
import httpx

from engine.domain.instrument import Instrument
from engine.domain.market_data import BookSnapshot, Ticker
from engine.exchanges.kraken.backoff import DEFAULT_RETRY, Backoff, jitter_source
from engine.exchanges.kraken.protocol.errors import (
    KrakenError,
    KrakenFatalError,
    KrakenProtocolError,
    KrakenRetryableError,
)
from engine.exchanges.kraken.protocol.rate_limits import RestCallCounter, Tier
from engine.exchanges.kraken.protocol.rest import (
    API_URL,
    OhlcResult,
    RestRequest,
    ServerTime,
    SystemStatus,
    TradesResult,
    envelope_result,
    parse_asset_pairs,
    parse_depth,
    parse_ohlc,
    parse_system_status,
    parse_ticker,
    parse_time,
    parse_trades,
    private_request,
    public_request,
)
from engine.exchanges.kraken.protocol.rest_account import (
    AddOrderResult,
    BalanceDetail,
    CancelAllAfterResult,
    CancelResult,
    ClosedOrders,
    KrakenOrder,
    KrakenTrade,
    TradesHistory,
    TradeVolume,
    WsToken,
    parse_add_order,
    parse_balance,
    parse_balance_ex_detail,
    parse_cancel,
    parse_cancel_all_after,
    parse_closed_orders,
    parse_open_orders,
    parse_query_orders,
    parse_trade_volume,
    parse_trades_history,
    parse_ws_token,
)
from engine.exchanges.kraken.protocol.signing import NonceSource
from engine.redaction import redacted_logger, remember_secret

__all__ = ["KrakenRestClient", "KrakenTransportError", "OrderOutcomeUnknown"]

log = redacted_logger(__name__)
T = TypeVar("T")
Side = Literal["buy", "sell"]
MAX_PAGES = 20  # history pages fetched by the paginating helpers (50 rows each)


class KrakenTransportError(KrakenRetryableError):
    """The request failed on the way. ``maybe_sent``: Kraken may have received and acted on it."""

    def __init__(self, message: str, *, maybe_sent: bool) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class OrderOutcomeUnknown(KrakenRetryableError):
    """An AddOrder may have been placed; the client could neither confirm it nor safely resend it."""


class KrakenRestClient:
    """An async Kraken Spot REST client.

    Args:
        base_url: ``https://api.kraken.com`` or a local fake.
        api_key, api_secret: credentials for private endpoints (None: public only).
        tier: the account tier the REST call counter is modelled on.
        counter: a ready counter instead of one built from ``tier``.
        transport: an httpx transport (tests may inject one; default: real HTTP).
        timeout_s: per-request timeout.
        retry: the backoff for retryable failures (its ``max_attempts`` bounds retries).
        nonce: the nonce source (default: nanosecond wall clock, strictly increasing).
        monotonic, sleep, rand: the clock, the sleeper and the jitter source (injected in tests).
        clock_ns: wall clock, stamps tickers (Kraken's ticker carries no time).
    """

    def __init__(
        self,
        base_url: str = API_URL,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        tier: Tier = "starter",
        counter: RestCallCounter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 10.0,
        retry: Backoff = DEFAULT_RETRY,
        nonce: NonceSource | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        rand: Callable[[], float] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._secret = api_secret
        # Whatever this process prints or logs from now on masks them, even where they are echoed back.
        remember_secret(api_key)
        remember_secret(api_secret)
        self._counter = counter or RestCallCounter(tier)
        self._retry = retry
        self._nonce = nonce or NonceSource(time.time_ns)
        self._monotonic = monotonic
        self._sleep = sleep
        self._rand = rand or jitter_source()
        self._clock_ns = clock_ns
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": "trading-mcp/0.1"},
        )
        self.calls = 0
        self.retries = 0

    def __repr__(self) -> str:
        return f"KrakenRestClient({self.base_url!r}, private={self.has_keys})"

    @property
    def has_keys(self) -> bool:
        return bool(self._key and self._secret)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "KrakenRestClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- plumbing ---------------------------------------------------------------------------------------------

    async def _pace(self, endpoint: str) -> None:
        wait = self._counter.wait_time(endpoint, self._monotonic())
        if wait > 0:
            log.info("kraken REST %s: waiting %.2fs for the call counter", endpoint, wait)
            await self._sleep(wait)
        self._counter.record(endpoint, self._monotonic())

    def _build(self, endpoint: str, params: Mapping[str, object] | None, private: bool) -> RestRequest:
        if not private:
            return public_request(endpoint, params)
        if not (self._key and self._secret):
            raise KrakenFatalError(f"{endpoint}: no API key configured for private endpoints")
        return private_request(endpoint, params, self._key, self._secret, self._nonce.next())

    async def _send(self, request: RestRequest) -> str:
        """One HTTP exchange; Kraken's envelope is parsed by the caller."""
        self.calls += 1
        endpoint = request.endpoint
        failure: KrakenTransportError | None = None
        try:
            response = await self._http.request(
                request.method,
                request.url(self.base_url),
                content=request.body.encode() if request.body else None,
                headers=dict(request.headers),
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            failure = KrakenTransportError(f"{endpoint}: cannot connect ({type(exc).__name__})", maybe_sent=False)
        except httpx.TimeoutException as exc:
            failure = KrakenTransportError(f"{endpoint}: timed out ({type(exc).__name__})", maybe_sent=True)
        except httpx.HTTPError as exc:
            failure = KrakenTransportError(f"{endpoint}: connection failed ({type(exc).__name__})", maybe_sent=True)
        if failure is not None:
            # Raised outside the except block so that neither __cause__ nor __context__ refers to the httpx
            # exception: it holds the request, whose headers hold the API key.
            raise failure
        status = response.status_code
        if status == 429 or status >= 500:
            raise KrakenTransportError(f"{endpoint}: HTTP {status}", maybe_sent=status != 429)
        if status != 200:
            raise KrakenProtocolError(f"{endpoint}: unexpected HTTP {status}")
        return response.text

    def _delay(self, attempt: int, exc: KrakenError) -> float | None:
        delay = self._retry.delay(attempt, self._rand())
        if delay is None:
            return None
        until = exc.throttled_until
        if until is not None:
            delay = max(delay, until - self._clock_ns() / 1e9)
        elif exc.rate_limited:
            # Our model of the counter was behind Kraken's: let at least one call's worth decay.
            delay = max(delay, 1.0 / self._counter.tier.decay_per_s)
        return delay

    async def _call(
        self,
        endpoint: str,
        params: Mapping[str, object] | None,
        parse: Callable[[str], T],
        *,
        private: bool,
    ) -> T:
        """Send with pacing and bounded retries; raise the last error when retrying cannot help."""
        attempt = 0
        fresh_nonce_tried = False
        while True:
            await self._pace(endpoint)
            request = self._build(endpoint, params, private)
            try:
                return parse(await self._send(request))
            except KrakenRetryableError as exc:
                if exc.invalid_nonce:
                    # Once, at once, with a new nonce; repeated invalid nonces get a key banned.
                    if fresh_nonce_tried:
                        raise
                    fresh_nonce_tried = True
                    continue
                delay = self._delay(attempt, exc)
                if delay is None:
                    raise
                log.warning("kraken REST %s failed (%s); retry %d in %.2fs", endpoint, exc, attempt + 1, delay)
                attempt += 1
                self.retries += 1
                await self._sleep(delay)

    # -- public -----------------------------------------------------------------------------------------------

    async def server_time(self) -> ServerTime:
        return await self._call("Time", None, parse_time, private=False)

    async def system_status(self) -> SystemStatus:
        return await self._call("SystemStatus", None, parse_system_status, private=False)

    async def asset_pairs(self, pairs: Sequence[str] | None = None) -> dict[str, Instrument]:
        """Instruments keyed by canonical name (``BTC/USD``); all pairs when ``pairs`` (Kraken's names: the
        altname ``XBTUSD`` or the REST key) is None."""
        params = {"pair": ",".join(pairs)} if pairs else None
        return await self._call("AssetPairs", params, parse_asset_pairs, private=False)

    async def asset_pairs_raw(self) -> dict[str, Any]:
        """Every pair's AssetPairs entry as Kraken sent it (REST key → entry): what a kept catalogue holds."""
        return await self._call("AssetPairs", None, lambda t: envelope_result(t, "AssetPairs"), private=False)

    async def assets_raw(self) -> dict[str, Any]:
        """Every asset's ``/0/public/Assets`` entry as Kraken sent it (asset id → entry)."""
        return await self._call("Assets", None, lambda t: envelope_result(t, "Assets"), private=False)

    async def ticker(self, pair: str) -> Ticker:
        """The ticker of ``pair`` (altname), named ``pair`` and stamped with the receive time."""
        return await self._call(
            "Ticker",
            {"pair": pair},
            lambda t: parse_ticker(t, ts_ns=self._clock_ns(), pair=pair),
            private=False,
        )

    async def ohlc(self, pair: str, interval: int = 1, since: int | None = None) -> OhlcResult:
        params = {"pair": pair, "interval": interval, "since": since}
        return await self._call(
            "OHLC", params, lambda t: parse_ohlc(t, interval_min=interval, pair=pair), private=False
        )

    async def depth(self, pair: str, count: int = 100) -> BookSnapshot:
        return await self._call(
            "Depth", {"pair": pair, "count": count}, lambda t: parse_depth(t, pair=pair), private=False
        )

    async def trades(self, pair: str, since: int | None = None, count: int | None = None) -> TradesResult:
        params = {"pair": pair, "since": since, "count": count}
        return await self._call("Trades", params, lambda t: parse_trades(t, pair=pair), private=False)

    # -- private: account -------------------------------------------------------------------------------------

    async def balance(self) -> dict[str, Decimal]:
        """Total balance per asset, engine asset codes (``BTC``, ``USD``)."""
        return await self._call("Balance", None, parse_balance, private=True)

    async def trade_volume(self, pairs: Sequence[str] = ()) -> TradeVolume:
        """The account's 30-day fee volume and, for ``pairs`` (Kraken's names), the fees it pays now."""
        params = {"pair": ",".join(pairs)} if pairs else None
        return await self._call("TradeVolume", params, parse_trade_volume, private=True)

    async def balance_ex(self) -> dict[str, BalanceDetail]:
        return await self._call("BalanceEx", None, parse_balance_ex_detail, private=True)

    async def ws_token(self) -> WsToken:
        return await self._call("GetWebSocketsToken", None, parse_ws_token, private=True)

    async def open_orders(self, *, cl_ord_id: str | None = None, trades: bool = False) -> dict[str, KrakenOrder]:
        params = {"trades": trades or None, "cl_ord_id": cl_ord_id}
        return await self._call("OpenOrders", params, parse_open_orders, private=True)

    async def closed_orders(
        self,
        *,
        cl_ord_id: str | None = None,
        start: int | None = None,
        end: int | None = None,
        ofs: int | None = None,
        trades: bool = False,
    ) -> ClosedOrders:
        params = {"trades": trades or None, "cl_ord_id": cl_ord_id, "start": start, "end": end, "ofs": ofs}
        return await self._call("ClosedOrders", params, parse_closed_orders, private=True)

    async def query_orders(self, txids: Sequence[str], *, trades: bool = False) -> dict[str, KrakenOrder]:
        """Orders by txid (any number; asked 50 at a time)."""
        found: dict[str, KrakenOrder] = {}
        for i in range(0, len(txids), 50):
            params = {"txid": ",".join(txids[i : i + 50]), "trades": trades or None}
            found.update(await self._call("QueryOrders", params, parse_query_orders, private=True))
        return found

    async def trades_history(
        self, *, start: int | None = None, end: int | None = None, ofs: int | None = None
    ) -> TradesHistory:
        params = {"start": start, "end": end, "ofs": ofs}
        return await self._call("TradesHistory", params, parse_trades_history, private=True)

    async def all_closed_orders(self, *, start: int | None = None) -> dict[str, KrakenOrder]:
        """Every closed order since ``start`` (UNIX seconds), following pages up to ``MAX_PAGES``."""
        orders: dict[str, KrakenOrder] = {}
        for _ in range(MAX_PAGES):
            page = await self.closed_orders(start=start, ofs=len(orders) or None)
            orders.update(page.orders)
            if not page.orders or len(orders) >= page.count:
                break
        return orders

    async def all_trades(self, *, start: int | None = None) -> TradesHistory:
        """Every fill since ``start`` (UNIX seconds), following pages up to ``MAX_PAGES``."""
        trades: dict[str, KrakenTrade] = {}
        count = 0
        for _ in range(MAX_PAGES):
            page = await self.trades_history(start=start, ofs=len(trades) or None)
            trades.update(page.trades)
            count = page.count
            if not page.trades or len(trades) >= page.count:
                break
        return TradesHistory(trades, count)

    # -- private: trading -------------------------------------------------------------------------------------

    async def cancel_order(self, *, txid: str | None = None, cl_ord_id: str | None = None) -> CancelResult:
        """Cancel one order by txid or cl_ord_id.

        Raises:
            ValueError: unless exactly one id is given.
        """
        if (txid is None) == (cl_ord_id is None):
            raise ValueError("give exactly one of txid and cl_ord_id")
        return await self._call("CancelOrder", {"txid": txid, "cl_ord_id": cl_ord_id}, parse_cancel, private=True)

    async def cancel_all(self) -> CancelResult:
        return await self._call("CancelAll", None, parse_cancel, private=True)

    async def cancel_all_orders_after(self, timeout_s: int) -> CancelAllAfterResult:
        """The dead man's switch: cancel everything ``timeout_s`` from now unless called again (0 disarms)."""
        return await self._call("CancelAllOrdersAfter", {"timeout": timeout_s}, parse_cancel_all_after, private=True)

    async def find_order(self, cl_ord_id: str) -> KrakenOrder | None:
        """The order Kraken knows under ``cl_ord_id`` (open or closed), or None."""
        opened = await self.open_orders(cl_ord_id=cl_ord_id)
        for order in opened.values():
            return order
        closed = await self.closed_orders(cl_ord_id=cl_ord_id)
        for order in closed.orders.values():
            return order
        return None

    async def add_order(
        self,
        *,
        pair: str,
        side: Side,
        ordertype: str,
        volume: Decimal,
        price: Decimal | None = None,
        cl_ord_id: str | None = None,
        oflags: str | None = None,
        timeinforce: str | None = None,
        expiretm: int | None = None,
        validate: bool = False,
    ) -> AddOrderResult:
        """Place an order; safe to call once per ``cl_ord_id`` even when the network fails.

        When Kraken may have received the order but no answer came (timeout, dropped connection, HTTP 5xx,
        ``EService:Unavailable``, ``EGeneral:Internal error``), the order is looked up by ``cl_ord_id`` and only
        resent when Kraken has no such order. A good-till-date order is ``timeinforce="GTD"`` with ``expiretm`` (UNIX
        seconds).

        Raises:
            KrakenUserError: Kraken refused the order (funds, minimums, ...).
            KrakenFatalError: keys or permissions are wrong.
            OrderOutcomeUnknown: the order may exist; it could not be confirmed (or no cl_ord_id was given).
            KrakenRetryableError: Kraken kept refusing for transient reasons (the order was not placed).
        """
        params: dict[str, object] = {
            "pair": pair,
            "type": side,
            "ordertype": ordertype,
            "volume": volume,
            "price": price,
            "cl_ord_id": cl_ord_id,
            "oflags": oflags,
            "timeinforce": timeinforce,
            "expiretm": None if expiretm is None else str(expiretm),
            "validate": True if validate else None,
        }
        attempt = 0
        fresh_nonce_tried = False
        while True:
            await self._pace("AddOrder")
            request = self._build("AddOrder", params, True)
            try:
                return parse_add_order(await self._send(request))
            except KrakenRetryableError as exc:
                refused = exc.rate_limited or exc.invalid_nonce
                unknown = not refused and not (isinstance(exc, KrakenTransportError) and not exc.maybe_sent)
                if exc.invalid_nonce:
                    if fresh_nonce_tried:
                        raise
                    fresh_nonce_tried = True
                    continue
                if unknown and not validate:
                    if cl_ord_id is None:
                        raise OrderOutcomeUnknown(f"AddOrder: outcome unknown ({exc}) and no cl_ord_id") from None
                    existing = await self._settle(cl_ord_id, exc)
                    if existing is not None:
                        log.warning("kraken AddOrder %s: placed despite %s (found %s)", cl_ord_id, exc, existing.txid)
                        return AddOrderResult((existing.txid,), existing.descr_order)
                delay = self._delay(attempt, exc)
                if delay is None:
                    if unknown and not validate:
                        raise OrderOutcomeUnknown(f"AddOrder {cl_ord_id}: gave up after {exc}") from None
                    raise
                log.warning("kraken AddOrder %s failed (%s); retry %d in %.2fs", cl_ord_id, exc, attempt + 1, delay)
                attempt += 1
                self.retries += 1
                await self._sleep(delay)

    async def _settle(self, cl_ord_id: str, cause: KrakenError) -> KrakenOrder | None:
        try:
            return await self.find_order(cl_ord_id)
        except KrakenError as exc:
            raise OrderOutcomeUnknown(
                f"AddOrder {cl_ord_id}: outcome unknown ({cause}) and the lookup failed ({exc})"
            ) from None
