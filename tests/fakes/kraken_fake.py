"""A faithful local fake of Kraken Spot: REST over loopback HTTP and WebSocket v2 over loopback websockets.

    async with FakeKraken(balances={"USDT": Decimal(10000)}) as fake:
        client = KrakenRestClient(fake.rest_url, api_key=fake.api_key, api_secret=fake.api_secret)
        fake.set_book("XBTUSDT", bids=[("100.0", "1")], asks=[("100.1", "1")])

Both servers bind 127.0.0.1 on a free port and stop when the block ends. The pairs are the ones the project ships
(``engine/data``: XBTUSD, ETHXBT and the real XBTUSDT AssetPairs capture). Modules: ``kraken_fake_http`` (the HTTP
server), ``kraken_fake_rest`` (REST endpoints, auth, nonces, counter), ``kraken_fake_ws`` (WS v2),
``kraken_fake_market`` (balances, books, orders, matching).

Fault switches (:class:`Faults`): HTTP statuses and Kraken errors for the next calls of an endpoint, response
delays, AddOrder responses lost after the order was placed (delayed or dropped), book updates with a broken
checksum, WS add_order requests that are executed but never answered; and methods: :meth:`drop_ws`,
:meth:`silence_ws`, :meth:`expire_tokens`, :meth:`trigger_dead_man_switch`.

Time: the fake's clock is injected (``clock_ns``); with a :class:`FakeClock`, :meth:`FakeKraken.advance_clock`
moves it and expires the good-till-date orders it passes (their ``expired`` reports are published), so a test
never sleeps for an expiry.
"""

import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup
from fakes.kraken_fake_http import HttpReply, HttpRequest, serve_http
from fakes.kraken_fake_market import FakeMarket, FakeOrder, FakePair, rfc3339
from fakes.kraken_fake_rest import handle_rest
from fakes.kraken_fake_ws import WsSession
from websockets.asyncio.server import Server, ServerConnection, serve

from engine.exchanges.kraken.protocol.rate_limits import RestCallCounter, Tier

__all__ = ["TEST_KEY", "TEST_SECRET", "FakeClock", "FakeKraken", "Faults", "shipped_pairs"]

TEST_KEY = "fake-api-key-PUBLIC-1234567890"
# A made-up secret (64 random bytes, base64), used only against the fake.
TEST_SECRET = "c2VjcmV0LXRlc3Qta2V5LWZvci10aGUtZmFrZS1rcmFrZW4tc2VydmVyLW9ubHktMTIzNDU2Nzg5MA=="
DATA = Path(__file__).resolve().parents[2] / "engine" / "data"


def shipped_pairs() -> list[FakePair]:
    """XBTUSD and ETHXBT (official example) and XBTUSDT (the real capture): the pairs of
    ``example_instruments()`` (tests/fakes/instruments_example.json), which the engine side of these tests uses."""
    raw = json.loads((Path(__file__).parent / "instruments_example.json").read_text(), parse_float=Decimal)
    pairs = [FakePair.from_asset_pairs(name, info) for name, info in raw.items() if not name.startswith("_")]
    return pairs


def real_pairs() -> list[FakePair]:
    """The real AssetPairs entries the engine ships (engine/data/instruments.json): the fake as the venue is."""
    raw = json.loads((DATA / "instruments.json").read_text(), parse_float=Decimal)
    return [FakePair.from_asset_pairs(name, info) for name, info in raw.items() if not name.startswith("_")]


class FakeClock:
    """UNIX nanoseconds that move only when a test says so (``now_ns``, or :meth:`FakeKraken.advance_clock`)."""

    def __init__(self, start_ns: int) -> None:
        self.now_ns = start_ns

    def __call__(self) -> int:
        return self.now_ns


@dataclass
class Faults:
    """What the fake gets wrong on purpose. Tables are keyed by endpoint name or ``*`` (any endpoint)."""

    http_status: dict[str, list[int]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    delay_s: dict[str, float] = field(default_factory=dict)
    lose_add_order_response: int = 0
    lost_response_mode: Literal["delay", "drop"] = "delay"
    lost_response_delay_s: float = 1.5
    break_checksum: int = 0
    ws_add_order_silent: int = 0
    hold_after: dict[str, int] = field(default_factory=dict)
    """Calls of an endpoint beyond this many wait, unanswered, until :meth:`FakeKraken.release_held`."""

    @staticmethod
    def take(table: dict[str, list[Any]], endpoint: str) -> Any:
        for key in (endpoint, "*"):
            queue = table.get(key)
            if queue:
                return queue.pop(0)
        return None


class FakeKraken:
    """The fake venue; an async context manager that runs its servers."""

    def __init__(
        self,
        *,
        balances: Mapping[str, Decimal] | None = None,
        pairs: list[FakePair] | None = None,
        api_key: str = TEST_KEY,
        api_secret: str = TEST_SECRET,
        tier: Tier = "pro",
        clock_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] | None = None,
        captures: Mapping[str, bytes] | None = None,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.clock_ns = clock_ns
        self._monotonic = monotonic
        self.counter = RestCallCounter(tier)
        self.market = FakeMarket(pairs or shipped_pairs(), balances or {}, clock_ns)
        self.market.notify = self._notice
        self.faults = Faults()
        self.captures: dict[str, bytes] = dict(captures or {})
        self.calls: Counter[str] = Counter()
        self.last_nonce: dict[str, int] = {}
        self.tokens: set[str] = set()
        self._token_ids = itertools.count(1)
        self.system_status = "online"
        self.server_skew_s = 0
        self.sessions: set[WsSession] = set()
        self.session_log: list[WsSession] = []
        self.connections = 0
        self.lost_responses = 0
        self.bad_signatures = 0
        self.rate_limited = 0
        self.dms_calls = 0
        self.dms_trigger_ns: int | None = None
        self.held_requests = 0
        self._release = anyio.Event()
        self._held: list[tuple[str, Any]] | None = None
        self._changed = anyio.Event()
        self._tg: TaskGroup | None = None
        self._ws: Server | None = None
        self.rest_url = ""
        self.ws_public_url = ""
        self.ws_private_url = ""

    def monotonic(self) -> float:
        return self._monotonic() if self._monotonic is not None else anyio.current_time()

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def __aenter__(self) -> "FakeKraken":
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        port = await self._tg.start(serve_http, self._http)
        self.rest_url = f"http://127.0.0.1:{port}"
        self._ws = await serve(self._ws_handler, "127.0.0.1", 0, ping_interval=None)
        ws_port = next(iter(self._ws.sockets)).getsockname()[1]
        self.ws_public_url = f"ws://127.0.0.1:{ws_port}/v2"
        self.ws_private_url = f"ws://127.0.0.1:{ws_port}/auth/v2"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            with anyio.CancelScope(shield=True):
                self._ws.close()
                await self._ws.wait_closed()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)

    async def _http(self, request: HttpRequest) -> HttpReply:
        return await handle_rest(self, request)

    async def _ws_handler(self, conn: ServerConnection) -> None:
        path = conn.request.path if conn.request is not None else "/v2"
        session = WsSession(self, conn, private=path.startswith("/auth"))
        self.sessions.add(session)
        self.session_log.append(session)
        self.connections += 1
        self.changed()
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
            self.changed()

    # -- change notification (tests wait on these, never on time) -------------------------------------------

    def changed(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds (re-checked after every change); bound it with ``fail_after``."""
        while not predicate():
            await self._changed.wait()

    # -- routing of market notices to sessions --------------------------------------------------------------

    @contextmanager
    def holding(self) -> Iterator[Callable[[], None]]:
        """Hold back notices (e.g. executions) until ``release()``, so a method's answer goes out first."""
        held: list[tuple[str, Any]] = []
        self._held = held

        def release() -> None:
            if self._held is held:
                self._held = None
            pending = list(held)
            held.clear()
            for kind, payload in pending:
                self._route(kind, payload)

        try:
            yield release
        finally:
            release()

    def _notice(self, kind: str, payload: Any) -> None:
        if self._held is not None:
            self._held.append((kind, payload))
        else:
            self._route(kind, payload)

    def _route(self, kind: str, payload: Any) -> None:
        market = self.market
        for session in list(self.sessions):
            if kind == "executions":
                session.executions(payload)
            elif kind == "ledger":
                session.ledger(payload)
            elif kind == "book":
                session.book_update(market.pairs[payload])
            elif kind == "ticker":
                session.ticker(market.pairs[payload])
            elif kind == "trade":
                session.trades(market.pairs[payload[0]], payload[1])
            elif kind == "ohlc":
                session.ohlc_update(market.pairs[payload[0]], payload[1], payload[2])
        self.changed()

    # -- test controls --------------------------------------------------------------------------------------

    def set_book(
        self,
        pair: str,
        bids: Sequence[tuple[Decimal | str, Decimal | str]],
        asks: Sequence[tuple[Decimal | str, Decimal | str]],
    ) -> None:
        self.market.set_book(pair, bids, asks)

    def public_trade(self, pair: str, price: Decimal | str, qty: Decimal | str, side: str = "buy") -> None:
        self.market.public_trade(pair, Decimal(price), Decimal(qty), side)

    def candle(self, pair: str, begin_ns: int, close: Decimal | str, *, interval: int = 1, **values: Any) -> None:
        """Publish the current candle of ``pair`` (open/high/low default to ``close``)."""
        close = Decimal(close)
        row = {
            "begin_ns": begin_ns,
            "open": Decimal(values.get("open", close)),
            "high": Decimal(values.get("high", close)),
            "low": Decimal(values.get("low", close)),
            "close": close,
            "vwap": Decimal(values.get("vwap", close)),
            "volume": Decimal(values.get("volume", "1")),
            "trades": int(values.get("trades", 1)),
        }
        self.market.ohlc(pair, interval, row)

    def trade_history(self, pair: str, trades: Iterable[tuple[int, Decimal | str, Decimal | str, str]]) -> None:
        """Add past public trades ``(ts_ns, price, qty, "buy"|"sell")``, oldest first, to the history that
        ``/0/public/Trades`` pages through (ids follow on; nothing is published on the WebSocket)."""
        market = self.market
        pair_ = market.pairs[pair]
        history = market.public_trades[pair]
        for ts_ns, price, qty, side in trades:
            if history and ts_ns < history[-1]["ts_ns"]:
                raise ValueError(f"trade at {ts_ns} ns is older than the last one")
            history.append(
                {
                    "symbol": pair_.ws_symbol,
                    "side": side,
                    "price": Decimal(price),
                    "qty": Decimal(qty),
                    "ord_type": "limit",
                    "trade_id": next(market._public_trade_id),
                    "timestamp": rfc3339(ts_ns),
                    "ts_ns": ts_ns,
                }
            )
        if history:
            market.last_price[pair] = history[-1]["price"]

    async def hold(self, endpoint: str) -> None:
        """Keep a call unanswered while :attr:`Faults.hold_after` says so (counted in ``held_requests``)."""
        limit = self.faults.hold_after.get(endpoint)
        if limit is None or self.calls[endpoint] <= limit:
            return
        self.held_requests += 1
        self.changed()
        await self._release.wait()

    def release_held(self) -> None:
        """Answer every held call and hold no more."""
        self.faults.hold_after.clear()
        self._release.set()
        self._release = anyio.Event()

    def issue_token(self) -> str:
        token = f"fake-ws-token-{next(self._token_ids)}"
        self.tokens.add(token)
        return token

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (new subscriptions and requests with it fail)."""
        self.tokens.clear()

    def drop_ws(self, *, private: bool | None = None) -> int:
        """Abort WS connections (all, or only the private/public ones); returns how many."""
        victims = [s for s in self.sessions if private is None or s.private == private]
        for session in victims:
            session.abort()
        return len(victims)

    def silence_ws(self, *, private: bool | None = None) -> None:
        """Current connections stay open but the fake stops sending on them (heartbeats included)."""
        for session in self.sessions:
            if private is None or session.private == private:
                session.silent = True

    def arm_dead_man_switch(self, timeout_s: int) -> int | None:
        self.dms_calls += 1
        self.dms_trigger_ns = None if timeout_s == 0 else self.clock_ns() + timeout_s * 1_000_000_000
        self.changed()
        return self.dms_trigger_ns

    def trigger_dead_man_switch(self) -> int:
        """Act as if the switch's time ran out: cancel everything if armed; returns how many were canceled."""
        if self.dms_trigger_ns is None:
            return 0
        self.dms_trigger_ns = None
        return self.market.cancel_all("Dead man's switch")

    def advance_clock(self, seconds: int) -> int:
        """Move the fake's :class:`FakeClock` ``seconds`` ahead and expire the good-till-date orders whose expiry it
        reaches (publishing their reports); returns how many expired."""
        clock = self.clock_ns
        if not isinstance(clock, FakeClock):
            raise TypeError("advance_clock needs a FakeKraken made with clock_ns=FakeClock(...)")
        if seconds < 0:
            raise ValueError(f"the clock only moves forward, not by {seconds} s")
        clock.now_ns += seconds * 1_000_000_000
        expired = self.market.expire_due()
        self.changed()
        return expired

    def orders_by_cl_ord_id(self, cl_ord_id: str) -> list[FakeOrder]:
        return [o for o in self.market.orders.values() if o.cl_ord_id == cl_ord_id]

    def private_sessions(self) -> list[WsSession]:
        return [s for s in self.sessions if s.private]
