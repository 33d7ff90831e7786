"""``KrakenMarketSource``: the runtime's :class:`~engine.runtime.sources.MarketSource` over Kraken's public WS v2.

It yields domain events: :class:`Ticker`, :class:`BookSnapshot` (the top ``book_levels`` of the maintained book
after each update whose checksum matched), :class:`TradeTick` and **closed** :class:`Candle` values. Pairs are the
engine's names (Kraken's altname, ``XBTUSD``), mapped to WS v2 symbols (``BTC/USD``) through
:attr:`Instrument.ws_symbol`.

How candles close: Kraken's ``ohlc`` channel describes the candle still forming, and only sends an update when a
trade happens. :class:`CandleCloser` emits a candle, once, at whichever comes first:

* an update for a later ``interval_begin`` of the same pair and interval arrives, or
* the wall clock passes the candle's end plus a grace (``candle_grace_s``, 2 s by default): the source wakes for
  it while waiting for messages, so on a quiet pair the 12:00-12:01 candle reaches strategies shortly after
  12:01:02, not when the next trade happens.

An update for an interval already emitted (Kraken's last trade arriving after the grace) is dropped and counted
(:attr:`CandleCloser.late_updates`). The history in the subscription snapshot is emitted too (it warms strategies
up), and candles and trades already emitted are not repeated after a reconnect.

Errors: none of its own; the stream raises :class:`~engine.exchanges.kraken.backoff.GiveUp` when reconnecting is
hopeless (see :mod:`~engine.exchanges.kraken.ws_link` for the connection errors it retries).
"""

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import replace

import anyio

from engine.domain.instrument import Instrument
from engine.domain.market_data import NS_PER_SECOND, BookSnapshot, Candle, MarketEvent
from engine.exchanges.kraken.protocol.ws_messages import OhlcMsg, TickerMsg, TradeMsg, WsMessage
from engine.exchanges.kraken.ws_client import PUBLIC_CHANNELS, KrakenPublicWs, VerifiedBook
from engine.exchanges.kraken.ws_link import DEFAULT_WS_SETTINGS, WsSettings

__all__ = ["DEFAULT_CANDLE_GRACE_NS", "CandleCloser", "KrakenMarketSource"]

DEFAULT_CANDLE_GRACE_NS = 2 * NS_PER_SECOND

_CandleKey = tuple[str, int]  # (pair, interval_s)


class CandleCloser:
    """Turns Kraken's running-candle updates into closed candles, each emitted once (sans-I/O: time is passed in).

    A candle closes when an update for a later interval arrives (:meth:`feed`) or when ``now`` reaches its end
    plus ``grace_ns`` (:meth:`due`), whichever comes first.

    Args:
        grace_ns: how long after a candle's end :meth:`due` waits before emitting it. Kraken publishes the update
            for an interval's last trade a little after that trade (network, its own batching), so a candle closed
            the instant its interval ends could miss its last trade; the grace must also cover the difference
            between this machine's clock and Kraken's (``kraken-check`` reports it). Longer is more complete,
            shorter is more timely; an update that still arrives later is counted in :attr:`late_updates`.

    Attributes:
        late_updates: updates (not snapshot entries) for an interval already emitted, or older than the running
            one; dropped. Many of them mean the grace is too short (or the clock is ahead of Kraken's).
        closed_by_time: candles emitted by :meth:`due` (rather than by a later interval's update).
    """

    def __init__(self, grace_ns: int = DEFAULT_CANDLE_GRACE_NS) -> None:
        if grace_ns < 0:
            raise ValueError(f"grace_ns must not be negative, got {grace_ns}")
        self.grace_ns = grace_ns
        self._current: dict[_CandleKey, Candle] = {}
        self._emitted: dict[_CandleKey, int] = {}  # the latest emitted interval's ts_ns
        self.late_updates = 0
        self.closed_by_time = 0

    def feed(self, candle: Candle, *, snapshot: bool = False) -> list[Candle]:
        """The candles ``candle`` closes (oldest first).

        Args:
            candle: a candle of an ``ohlc`` message.
            snapshot: it came in a subscription snapshot, whose history repeats candles already emitted after a
                reconnect (not counted as late).
        """
        key = (candle.pair, candle.interval_s)
        emitted = self._emitted.get(key, -1)
        if candle.ts_ns <= emitted:
            # Already emitted: snapshot history after a reconnect, or Kraken's update after the candle closed on
            # time. Keeping it would re-emit the candle or make it the "running" one the next interval replaces.
            if not snapshot:
                self.late_updates += 1
            return []
        current = self._current.get(key)
        if current is None or candle.ts_ns == current.ts_ns:
            self._current[key] = candle
            return []
        if candle.ts_ns < current.ts_ns:
            if not snapshot:
                self.late_updates += 1
            return []  # older than the running candle (a snapshot after a reconnect): superseded
        self._current[key] = candle
        if current.ts_ns <= emitted:
            return []  # the running candle was closed by time already
        self._emitted[key] = current.ts_ns
        return [current]

    def due(self, now_ns: int) -> list[Candle]:
        """Emit (once) every running candle whose interval ended at least ``grace_ns`` before ``now_ns``.

        Returns:
            The candles closed, oldest end first.
        """
        closed = [
            candle
            for key, candle in self._current.items()
            if candle.ts_ns > self._emitted.get(key, -1) and candle.close_ns + self.grace_ns <= now_ns
        ]
        for candle in closed:
            self._emitted[(candle.pair, candle.interval_s)] = candle.ts_ns
        self.closed_by_time += len(closed)
        closed.sort(key=lambda c: c.close_ns)
        return closed

    def next_due_ns(self) -> int | None:
        """When :meth:`due` will next emit something (ns since the epoch), or None when no candle is running."""
        times = [
            candle.close_ns + self.grace_ns
            for key, candle in self._current.items()
            if candle.ts_ns > self._emitted.get(key, -1)
        ]
        return min(times, default=None)


class KrakenMarketSource:
    """Live market data for ``instruments`` from Kraken's public WebSocket.

    Args:
        url: ``wss://ws.kraken.com/v2`` or a fake.
        instruments: the pairs to stream, keyed by engine pair name.
        channels: public channels to subscribe to (default: all).
        book_depth: the subscribed book depth; book_levels: levels per side in each BookSnapshot.
        ohlc_interval: candle minutes.
        settings: WebSocket timings.
        clock_ns: the wall clock (ns since the epoch): closes candles on time, stamps tickers Kraken left
            undated. Injected in tests.
        sleep: the reconnect backoff's sleeper.
        candle_grace_s: how long after its interval ends a running candle is closed without a later update
            (see :class:`CandleCloser`).
        candle_poll_s: the longest wait for a message before the clock is read again while a candle is running.
            The wait normally ends exactly when the next candle is due; this bounds the delay when the wall clock
            jumps (or, in tests, when an injected clock is moved by hand).
    """

    def __init__(
        self,
        url: str,
        instruments: Mapping[str, Instrument],
        *,
        channels: Collection[str] = PUBLIC_CHANNELS,
        book_depth: int = 10,
        book_levels: int = 10,
        ohlc_interval: int = 1,
        settings: WsSettings = DEFAULT_WS_SETTINGS,
        clock_ns: Callable[[], int] = time.time_ns,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        candle_grace_s: float = DEFAULT_CANDLE_GRACE_NS / NS_PER_SECOND,
        candle_poll_s: float = 1.0,
    ) -> None:
        if not instruments:
            raise ValueError("KrakenMarketSource needs at least one instrument")
        if candle_poll_s <= 0:
            raise ValueError(f"candle_poll_s must be positive, got {candle_poll_s}")
        self.instruments = dict(instruments)
        self._pair_of = {inst.ws_symbol: pair for pair, inst in self.instruments.items()}
        self.book_levels = book_levels
        self.interval = ohlc_interval
        self._clock_ns = clock_ns
        self.feed = KrakenPublicWs(
            url,
            list(self._pair_of),
            channels=channels,
            book_depth=book_depth,
            ohlc_interval=ohlc_interval,
            precisions={i.ws_symbol: (i.pair_decimals, i.lot_decimals) for i in self.instruments.values()},
            names=self._pair_of,
            settings=settings,
            clock_ns=clock_ns,
            sleep=sleep,
        )
        self.candle_closer = CandleCloser(round(candle_grace_s * NS_PER_SECOND))
        self.candle_poll_s = candle_poll_s
        self._last_trade: dict[str, int] = {}
        self.events = 0
        self._stream: AsyncGenerator[Sequence[MarketEvent]] | None = None

    @property
    def description(self) -> str:
        return f"kraken live feed ({', '.join(sorted(self.instruments))}, {self.interval}m candles)"

    @property
    def identity(self) -> str:
        # A live feed has no position to resume at: the pairs and the interval may change between runs.
        return "kraken live feed"

    @property
    def total(self) -> int | None:
        return None

    @property
    def replayable(self) -> bool:
        return False

    def history(self, stop: int) -> Iterator[MarketEvent]:
        """A live feed cannot be read again."""
        return iter(())

    def stream(self, start: int) -> AsyncGenerator[Sequence[MarketEvent]]:
        """Live events from now on, one batch per Kraken message or candle deadline (``start`` only counts).

        Close the iterator (``contextlib.aclosing``) or call :meth:`aclose` to release the connection at once.

        Raises:
            GiveUp: the reconnect policy gave up (from the iterator).
        """
        self._stream = self._batches()
        return self._stream

    async def aclose(self) -> None:
        """Close the running stream (and its WebSocket), if any."""
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()

    async def _batches(self) -> AsyncGenerator[Sequence[MarketEvent]]:
        closer = self.candle_closer
        async for item in self.feed.messages(wait_s=self._until_next_candle):
            events = [] if item is None else self._convert(item)
            # After each message (an update it carried for a candle about to close makes that candle whole) and
            # at each wake-up: the candles whose time has come.
            events.extend(closer.due(self._clock_ns()))
            if events:
                self.events += len(events)
                yield events

    def _until_next_candle(self) -> float | None:
        """How long to wait for a message before a running candle is due (capped at ``candle_poll_s``)."""
        due_ns = self.candle_closer.next_due_ns()
        if due_ns is None:
            return None
        return min(max(due_ns - self._clock_ns(), 0) / NS_PER_SECOND, self.candle_poll_s)

    def _convert(self, item: WsMessage | VerifiedBook) -> list[MarketEvent]:
        if isinstance(item, VerifiedBook):
            pair = self._pair_of.get(item.symbol)
            if pair is None:
                return []
            full = item.book.snapshot(pair, item.ts_ns)
            n = self.book_levels
            return [BookSnapshot(pair, item.ts_ns, full.bids[:n], full.asks[:n])]
        if isinstance(item, TickerMsg):
            now = self._clock_ns()
            return [t if t.ts_ns else replace(t, ts_ns=now) for t in item.tickers if t.pair in self.instruments]
        if isinstance(item, TradeMsg):
            out: list[MarketEvent] = []
            for trade in item.trades:
                last = self._last_trade.get(trade.pair)
                if trade.trade_id is not None:
                    if last is not None and trade.trade_id <= last:
                        continue
                    self._last_trade[trade.pair] = trade.trade_id
                out.append(trade)
            return out
        if isinstance(item, OhlcMsg):
            closed: list[MarketEvent] = []
            snapshot = item.type == "snapshot"
            for candle in sorted(item.candles, key=lambda c: c.ts_ns):
                closed.extend(self.candle_closer.feed(candle, snapshot=snapshot))
            return closed
        return []
