"""``KrakenMarketSource``: the runtime's :class:`~engine.runtime.sources.MarketSource` over Kraken's public WS v2.

It yields domain events: :class:`Ticker`, :class:`BookSnapshot` (the top ``book_levels`` of the maintained book
after each update whose checksum matched), :class:`TradeTick` and **closed** :class:`Candle` values. Kraken's
``ohlc`` messages describe the candle still forming, so a candle is emitted when a message for a later
``interval_begin`` arrives; the history in the subscription snapshot is emitted too (it warms strategies up),
and candles and trades already emitted are not repeated after a reconnect. Pairs are the engine's names
(Kraken's altname, ``XBTUSD``), mapped to WS v2 symbols (``BTC/USD``) through :attr:`Instrument.ws_symbol`.
"""

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import replace

import anyio

from engine.domain.instrument import Instrument
from engine.domain.market_data import BookSnapshot, Candle, MarketEvent
from engine.exchanges.kraken.protocol.ws_messages import OhlcMsg, TickerMsg, TradeMsg, WsMessage
from engine.exchanges.kraken.ws_client import PUBLIC_CHANNELS, KrakenPublicWs, VerifiedBook
from engine.exchanges.kraken.ws_link import DEFAULT_WS_SETTINGS, WsSettings

__all__ = ["CandleCloser", "KrakenMarketSource"]


class CandleCloser:
    """Turns Kraken's running-candle updates into closed candles, each emitted once."""

    def __init__(self) -> None:
        self._current: dict[tuple[str, int], Candle] = {}
        self._emitted: dict[tuple[str, int], int] = {}

    def feed(self, candle: Candle) -> list[Candle]:
        """The candles ``candle`` closes (oldest first)."""
        key = (candle.pair, candle.interval_s)
        current = self._current.get(key)
        if current is None or candle.ts_ns == current.ts_ns:
            self._current[key] = candle
            return []
        if candle.ts_ns < current.ts_ns:
            return []  # an older candle from a snapshot after a reconnect: already emitted (or superseded)
        self._current[key] = candle
        if current.ts_ns <= self._emitted.get(key, -1):
            return []
        self._emitted[key] = current.ts_ns
        return [current]


class KrakenMarketSource:
    """Live market data for ``instruments`` from Kraken's public WebSocket.

    Args:
        url: ``wss://ws.kraken.com/v2`` or a fake.
        instruments: the pairs to stream, keyed by engine pair name.
        channels: public channels to subscribe to (default: all).
        book_depth: the subscribed book depth; book_levels: levels per side in each BookSnapshot.
        ohlc_interval: candle minutes.
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
    ) -> None:
        if not instruments:
            raise ValueError("KrakenMarketSource needs at least one instrument")
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
        self._closer = CandleCloser()
        self._last_trade: dict[str, int] = {}
        self.events = 0
        self._stream: AsyncGenerator[Sequence[MarketEvent]] | None = None

    @property
    def description(self) -> str:
        return f"kraken live feed ({', '.join(sorted(self.instruments))}, {self.interval}m candles)"

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
        """Live events from now on, one batch per Kraken message (``start`` only counts; nothing to skip).

        Close the iterator (``contextlib.aclosing``) or call :meth:`aclose` to release the connection at once.
        """
        self._stream = self._batches()
        return self._stream

    async def aclose(self) -> None:
        """Close the running stream (and its WebSocket), if any."""
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()

    async def _batches(self) -> AsyncGenerator[Sequence[MarketEvent]]:
        async for item in self.feed.messages():
            events = self._convert(item)
            if events:
                self.events += len(events)
                yield events

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
            for candle in sorted(item.candles, key=lambda c: c.ts_ns):
                closed.extend(self._closer.feed(candle))
            return closed
        return []
