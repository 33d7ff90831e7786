"""Kraken's public history, sans-I/O: paging through ``/0/public/Trades`` and taking candles from ``/0/public/OHLC``.

**OHLC** answers the latest 720 committed candles of an interval (plus the one still open, which is dropped):
:func:`ohlc_candles_from` takes the ones from a given interval on, or says that they do not reach back that far.

**Trades** answers up to 1,000 trades from ``since`` (a nanosecond cursor, exclusive) and ``last``, the ``since``
of the next page. :class:`TradesPager` is the paging state machine: it says what to ask next
(:class:`FetchTrades`, :class:`FetchTime`, or :class:`CaughtUp`) and is told the answers. It drops repeats (a trade
id at or below the newest one taken) and trades before the first wanted interval, and refuses a full page that
does not move the cursor (paging would never end). A page shorter than asked means the present is reached; then
the pager asks for Kraken's clock and pages once more, so that every trade before that moment is known: intervals
ending ``settle_ns`` before it are complete (:attr:`CaughtUp.through_ns`).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from engine.domain.market_data import NS_PER_SECOND, Candle, TradeTick
from engine.exchanges.kraken.protocol.errors import KrakenProtocolError
from engine.exchanges.kraken.protocol.rest import OhlcResult, TradesResult
from engine.market.history_file import TradesCursor

__all__ = [
    "OHLC_WINDOW",
    "PAGE_SIZE",
    "SETTLE_NS",
    "CaughtUp",
    "FetchTime",
    "FetchTrades",
    "TradesPager",
    "interval_start_ns",
    "ohlc_candles_from",
]

PAGE_SIZE = 1000
"""Trades per page: Kraken's maximum (``count`` 1 to 1000)."""
OHLC_WINDOW = 720
"""Committed candles OHLC answers for any interval."""
SETTLE_NS = 5 * NS_PER_SECOND
"""An interval counts as complete only this long after it ended by Kraken's clock: a margin for trades that reach
the public history a moment after they happened (a precaution; not a documented figure)."""


def interval_start_ns(ts_ns: int, interval_s: int) -> int:
    """The start of the ``interval_s`` interval (aligned to the unix epoch) that holds ``ts_ns``."""
    span = interval_s * NS_PER_SECOND
    return ts_ns - ts_ns % span


def ohlc_candles_from(result: OhlcResult, start_ns: int) -> list[Candle] | None:
    """The committed candles of an OHLC answer from the interval ``start_ns`` on, oldest first; None when they
    do not reach back to it (the oldest committed candle starts later).

    Committed means at or before Kraken's ``last``; the still-open candle is never among them.
    """
    last_ns = result.last * NS_PER_SECOND
    committed = [c for c in result.candles if c.ts_ns <= last_ns]
    if not committed or committed[0].ts_ns > start_ns:
        return None
    return [c for c in committed if c.ts_ns >= start_ns]


@dataclass(frozen=True, slots=True)
class FetchTrades:
    """Ask ``/0/public/Trades`` for ``count`` trades after ``since_ns``."""

    since_ns: int
    count: int


@dataclass(frozen=True, slots=True)
class FetchTime:
    """Ask ``/0/public/Time`` for Kraken's clock."""


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """Every trade up to ``through_ns`` is known: the intervals ending by then are complete."""

    through_ns: int


Action = FetchTrades | FetchTime | CaughtUp
_Phase = Literal["paging", "stamp", "confirm", "done"]


class TradesPager:
    """Pages through Kraken's trades from a cursor up to the present.

    Args:
        cursor: where to start (a saved cursor, or ``TradesCursor(first_start_ns - 1)`` for a new download: the
            cursor is exclusive, so a trade at the very start of the first interval is included).
        floor_ns: trades before this time are dropped (the first interval not yet written).
        page_size: trades asked per page.
        settle_ns: see :data:`SETTLE_NS`.
    """

    def __init__(
        self,
        cursor: TradesCursor,
        *,
        floor_ns: int,
        page_size: int = PAGE_SIZE,
        settle_ns: int = SETTLE_NS,
    ) -> None:
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be 1 to {PAGE_SIZE}, got {page_size}")
        self._since = cursor.since_ns
        self._last_id = cursor.last_trade_id
        self._floor = floor_ns
        self._page_size = page_size
        self._settle = settle_ns
        self._phase: _Phase = "paging"
        self._stamp_ns: int | None = None
        self.pages = 0
        self.trades = 0

    @property
    def cursor(self) -> TradesCursor:
        """Where the next page starts (save it with the candles the pages so far made)."""
        return TradesCursor(self._since, self._last_id)

    @property
    def done(self) -> bool:
        return self._phase == "done"

    def next_action(self) -> Action:
        """What to ask Kraken next, or :class:`CaughtUp` when paging is over."""
        if self._phase == "stamp":
            return FetchTime()
        if self._phase == "done":
            assert self._stamp_ns is not None
            return CaughtUp(self._stamp_ns - self._settle)
        return FetchTrades(self._since, self._page_size)

    def on_time(self, server_ns: int) -> None:
        """Kraken's clock, asked after the present was reached."""
        if self._phase != "stamp":
            raise RuntimeError(f"on_time in phase {self._phase}")
        self._stamp_ns = server_ns
        self._phase = "confirm"

    def on_trades(self, page: TradesResult) -> list[TradeTick]:
        """Take one Trades answer; return its trades that are new and wanted, oldest first.

        Raises:
            KrakenProtocolError: a full page that does not move the cursor forward.
        """
        if self._phase not in ("paging", "confirm"):
            raise RuntimeError(f"on_trades in phase {self._phase}")
        fresh = self._fresh(page.trades)
        full = len(page.trades) >= self._page_size
        if full and page.last <= self._since:
            raise KrakenProtocolError(
                f"Trades: a full page of {len(page.trades)} trades left the cursor at {page.last} "
                f"(asked since {self._since}); paging cannot go on"
            )
        self._since = max(self._since, page.last)
        self.pages += 1
        self.trades += len(fresh)
        if full:
            self._phase = "paging"
            self._stamp_ns = None
        elif self._phase == "paging":
            self._phase = "stamp"
        else:
            self._phase = "done"
        return fresh

    def _fresh(self, trades: Sequence[TradeTick]) -> list[TradeTick]:
        fresh: list[TradeTick] = []
        last_id = self._last_id
        for trade in trades:
            trade_id = trade.trade_id
            if trade_id is not None:
                if last_id is not None and trade_id <= last_id:
                    continue  # a repeat: already taken from an earlier page
                last_id = trade_id
            if trade.ts_ns >= self._floor:
                fresh.append(trade)
        self._last_id = last_id
        return fresh
