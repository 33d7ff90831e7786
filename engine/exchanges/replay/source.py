"""Replay sources: a market-data file turned into time-ordered :data:`MarketEvent` values.

A :class:`ReplaySource` loads its file once, eagerly, then hands out events by index so a restarted run can
resume exactly where it stopped. A CSV candle file is kept as :class:`CandleColumns` (parsed and checked up
front; each candle object is made when it is read, which spares the garbage collector 50k tracked objects per
50k-candle file); other formats as a list of events. It is synchronous; the async runtime wraps it and paces it
with :class:`~engine.exchanges.replay.pacing.Pacer`.

Event time: a candle is only known once it has closed, so the simulated clock must reach ``close_ns`` before a
candle is emitted (:func:`event_time_ns`). ``first_ts_ns``, ``last_ts_ns``, ``times_ns`` and ``index_at`` all
use that time; trades and other events use their own ``ts_ns``.
"""

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from engine.domain.market_data import NS_PER_SECOND, Candle, MarketEvent, TradeTick, event_time_ns
from engine.exchanges.replay.aggregate import aggregate_trades
from engine.exchanges.replay.columns import CandleColumns
from engine.exchanges.replay.csv_stream import CHUNK_BYTES, STREAM_ABOVE_BYTES, StreamedCandles
from engine.exchanges.replay.detect import ReplayFormat, detect_format
from engine.exchanges.replay.errors import ReplayConfigError, ReplayFormatError, ReplayOrderError
from engine.exchanges.replay.ohlcvt_csv import parse_ohlcvt_columns, split_kraken_csv_name
from engine.exchanges.replay.rest_json import parse_ohlc_json, parse_trades_json
from engine.market.catalog_files import canonical_pair_name

__all__ = ["ReplaySource", "event_time_ns", "load_events"]


def load_events(
    path: str | Path,
    *,
    fmt: ReplayFormat | None = None,
    pair: str | None = None,
    interval_s: int | None = None,
    drop_open: bool = True,
) -> list[Candle] | list[TradeTick]:
    """Read a replay file into candles or trades in time order.

    Args:
        path: the file.
        fmt: its format; detected from the content when ``None``.
        pair: the pair name for the events; defaults to the JSON result key or the CSV name (``XBTUSD``).
        interval_s: the candle length; else from the CSV name (``_60`` = 60 min) or the most common gap.
        drop_open: for OHLC JSON, drop the still-open last candle.

    Raises:
        ReplayFormatError: the content is not a supported format or has a bad row (with its line or row).
        OSError: the file cannot be read.
    """
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt is ReplayFormat.OHLCVT_CSV:
        return list(_load_csv(path, pair, interval_s))
    return _load_json(path, fmt, pair, interval_s, drop_open)


def _load_csv(
    path: Path, pair: str | None, interval_s: int | None, stream_above: int | None = None
) -> CandleColumns | StreamedCandles:
    """The file's candles: parsed at once, or (a file over ``stream_above`` bytes) checked and streamed by
    chunks (:mod:`engine.exchanges.replay.csv_stream`)."""
    name_pair, name_interval = split_kraken_csv_name(path)
    # The events carry the canonical name whatever spelling named the file or was passed (XBTUSD -> BTC/USD):
    # strategies name their pair canonically, and a candle under another spelling would reach none of them.
    given = pair or name_pair
    label = canonical_pair_name(given) if given else None
    if label is None:
        raise ReplayFormatError(str(path), "cannot tell the pair from the file name; pass it")
    if stream_above is not None and path.stat().st_size > stream_above:
        # Chunks of at most a quarter of the threshold (CHUNK_BYTES by default): a streamed file never holds more.
        chunk = min(CHUNK_BYTES, max(4_096, stream_above // 4))
        interval = interval_s or name_interval
        return StreamedCandles.scan(path, pair=label, interval_s=interval, source=str(path), chunk_bytes=chunk)
    text = path.read_text(encoding="utf-8")
    return parse_ohlcvt_columns(text, pair=label, interval_s=interval_s or name_interval, source=str(path))


def _load_json(
    path: Path, fmt: ReplayFormat, pair: str | None, interval_s: int | None, drop_open: bool
) -> list[Candle] | list[TradeTick]:
    source = str(path)
    data = path.read_bytes()
    events: list[Candle] | list[TradeTick]
    if fmt is ReplayFormat.OHLC_JSON:
        events = parse_ohlc_json(data, pair=pair, interval_s=interval_s, drop_open=drop_open, source=source)
    else:
        events = parse_trades_json(data, pair=pair, source=source)
    if events:
        # Named after the file's result key (Kraken's REST name, XBTUSDT) or as passed: shown canonically.
        name = canonical_pair_name(events[0].pair)
        if name != events[0].pair:
            events = (
                [c._replace(pair=name) for c in events if isinstance(c, Candle)]
                if isinstance(events[0], Candle)
                else [replace(t, pair=name) for t in events if isinstance(t, TradeTick)]
            )
    return events


class ReplaySource:
    """Market events from one file (or an in-memory list), in time order, addressable by index.

    Loading is lazy: the first use of any data attribute calls :meth:`load` (call it explicitly, e.g. in a
    worker thread, to control when the parsing cost is paid). Parsing errors surface there.

    Args:
        path: the replay file (OHLCVT CSV, saved OHLC or Trades JSON).
        pair: the pair name for the events (see :func:`load_events`).
        interval_s: the candle length of a candle file (see :func:`load_events`).
        fmt: the file format; detected from the content when ``None``.
        aggregate_s: for a trades file, emit candles of this many seconds built from the trades instead of
            the trades themselves. For a candle file it must equal the file's interval (no resampling).
        fill_gaps: with ``aggregate_s``, emit Kraken's flat zero-volume candles for windows without trades.
        drop_open: for OHLC JSON, drop the still-open last candle.
        stream_above_bytes: a candle CSV file larger than this is checked once and then read chunk by chunk
            (:class:`~engine.exchanges.replay.csv_stream.StreamedCandles`: memory does not grow with the file);
            ``None`` reads any file at once.
    """

    __slots__ = (
        "_aggregate_s",
        "_drop_open",
        "_events",
        "_fill_gaps",
        "_fmt",
        "_interval_s",
        "_pair",
        "_path",
        "_stream_above",
        "_times",
        "name",
    )

    def __init__(
        self,
        path: str | Path,
        *,
        pair: str | None = None,
        interval_s: int | None = None,
        fmt: ReplayFormat | None = None,
        aggregate_s: int | None = None,
        fill_gaps: bool = False,
        drop_open: bool = True,
        stream_above_bytes: int | None = STREAM_ABOVE_BYTES,
    ) -> None:
        if aggregate_s is not None and (
            isinstance(aggregate_s, bool) or not isinstance(aggregate_s, int) or aggregate_s <= 0
        ):
            raise ReplayConfigError(f"aggregate_s must be a positive int or None, got {aggregate_s!r}")
        self._path: Path | None = Path(path)
        self.name = str(path)
        self._pair = pair
        self._interval_s = interval_s
        self._fmt = fmt
        self._aggregate_s = aggregate_s
        self._fill_gaps = fill_gaps
        self._drop_open = drop_open
        self._stream_above = stream_above_bytes
        self._events: Sequence[MarketEvent] | None = None
        self._times: list[int] | None = None

    @classmethod
    def from_events(cls, events: Iterable[MarketEvent], *, name: str = "<events>") -> "ReplaySource":
        """A source over events already in memory (tests, merged feeds, other loaders).

        Raises:
            ReplayOrderError: the events are not in :func:`event_time_ns` order.
            ReplayFormatError: there are no events.
        """
        self = cls._blank(name)
        self._install(list(events))
        return self

    @classmethod
    def _blank(cls, name: str) -> "ReplaySource":
        self = cls.__new__(cls)
        self._path = None
        self.name = name
        self._pair = None
        self._interval_s = None
        self._fmt = None
        self._aggregate_s = None
        self._fill_gaps = False
        self._drop_open = True
        self._stream_above = None
        self._events = None
        self._times = None
        return self

    def window(self, start_ns: int | None, end_ns: int | None) -> "ReplaySource | None":
        """A source over the candles that open at or after ``start_ns`` and close at or before ``end_ns`` (None: no
        bound on that side), or ``None`` when no candle does. A streamed file stays streamed (its window is found by
        its index, not by reading every candle); other events are filtered in memory."""
        events = self.events
        start = start_ns if start_ns is not None else -(2**62)
        end = end_ns if end_ns is not None else 2**62
        if isinstance(events, StreamedCandles):
            first = events.index_at(start + events.interval_s * NS_PER_SECOND)  # opens at or after start
            stop = events.index_at(end + 1)  # closes after end
            if first >= stop:
                return None
            windowed = ReplaySource._blank(self.name)
            windowed._events = events.window(first, stop)  # in order: a window of a checked file
            return windowed
        inside = [e for e in events if isinstance(e, Candle) and e.ts_ns >= start and e.close_ns <= end]
        return ReplaySource.from_events(inside, name=self.name) if inside else None

    def load(self) -> "ReplaySource":
        """Read and parse the file now (once); return ``self``.

        Raises:
            ReplayFormatError: the file is not a supported format, has a bad row, or holds no events.
            ReplayConfigError: ``aggregate_s`` does not fit the file.
            OSError: the file cannot be read.
        """
        if self._events is not None or self._path is None:
            return self
        fmt = self._fmt or detect_format(self._path)
        self._fmt = fmt
        if fmt is ReplayFormat.OHLCVT_CSV:
            columns = _load_csv(self._path, self._pair, self._interval_s, self._stream_above)
            if columns and self._aggregate_s is not None and columns.interval_s != self._aggregate_s:
                raise ReplayConfigError(f"{self.name}: {self._resampling(columns.interval_s)} is not supported")
            if not columns:
                raise ReplayFormatError(self.name, "no events to replay")
            # Strictly increasing open times (checked by the parser) and one interval: close times increase too.
            self._events = columns
            return self
        loaded = _load_json(self._path, fmt, self._pair, self._interval_s, self._drop_open)
        events: list[MarketEvent]
        if self._aggregate_s is None:
            events = list(loaded)
        elif fmt is ReplayFormat.TRADES_JSON:
            trades = [e for e in loaded if isinstance(e, TradeTick)]
            events = list(aggregate_trades(trades, self._aggregate_s, fill_gaps=self._fill_gaps))
        elif loaded and isinstance(loaded[0], Candle) and loaded[0].interval_s != self._aggregate_s:
            raise ReplayConfigError(f"{self.name}: {self._resampling(loaded[0].interval_s)} is not supported")
        else:
            events = list(loaded)
        self._install(events)
        return self

    def _resampling(self, interval_s: int) -> str:
        return f"the file holds {interval_s} s candles; resampling to {self._aggregate_s} s"

    def _install(self, events: list[MarketEvent]) -> None:
        if not events:
            raise ReplayFormatError(self.name, "no events to replay")
        times = [event_time_ns(e) for e in events]
        for index in range(1, len(times)):
            if times[index] < times[index - 1]:
                detail = f"event time {times[index]} ns is before the previous {times[index - 1]} ns"
                raise ReplayOrderError(self.name, detail, row=index + 1)
        self._events = events
        self._times = times

    @property
    def format(self) -> ReplayFormat | None:
        """The file's format once known (``None`` for :meth:`from_events`)."""
        return self._fmt

    @property
    def events(self) -> Sequence[MarketEvent]:
        """All events, in time order (do not mutate)."""
        self.load()
        assert self._events is not None
        return self._events

    @property
    def times_ns(self) -> Sequence[int]:
        """:func:`event_time_ns` of every event, index for index (do not mutate)."""
        events = self.events
        if self._times is None:
            # Only a CSV file's columns leave the times to be computed when first asked for (a streamed file's
            # make a list as long as the file: its first and last times and index_at do without).
            assert isinstance(events, CandleColumns | StreamedCandles)
            self._times = events.close_times_ns()
        return self._times

    @property
    def first_ts_ns(self) -> int:
        """When the first event becomes known (a candle's close)."""
        events = self.events
        if isinstance(events, StreamedCandles):
            return events.first_close_ns
        return self.times_ns[0]

    @property
    def last_ts_ns(self) -> int:
        """When the last event becomes known (a candle's close)."""
        events = self.events
        if isinstance(events, StreamedCandles):
            return events.last_close_ns
        return self.times_ns[-1]

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[MarketEvent]:
        return iter(self.events)

    def iter_from(self, index: int) -> Iterator[MarketEvent]:
        """Events from ``index`` on (0-based): resume a run that has processed ``index`` events.

        ``iter_from(len(self))`` yields nothing.

        Raises:
            ReplayConfigError: ``index`` is negative or beyond ``len(self)``.
        """
        events = self.events
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= len(events):
            raise ReplayConfigError(f"index must be an int in 0..{len(events)}, got {index!r}")
        if isinstance(events, CandleColumns | StreamedCandles):
            return events.iter_from(index)
        # map over a range starts at index in O(1) and iterates at C speed, without copying the list.
        return map(events.__getitem__, range(index, len(events)))

    def index_at(self, ts_ns: int) -> int:
        """The index of the first event known at or after ``ts_ns`` (``len(self)`` if none)."""
        events = self.events
        if isinstance(events, StreamedCandles):
            return events.index_at(ts_ns)
        return bisect.bisect_left(self.times_ns, ts_ns)

    def __repr__(self) -> str:
        state = f"{len(self._events)} events" if self._events is not None else "not loaded"
        return f"ReplaySource({self.name!r}, {state})"
