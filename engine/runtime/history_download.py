"""Kraken's history into a file the replay reads: the I/O loop around :mod:`engine.exchanges.kraken.history`.

One run: read the progress file beside the output (if any) and cut the output back to what it describes, then
either take candles from OHLC (when Kraken's latest 720 reach back to the first interval still missing) or page
through Trades and build candles from them (:class:`~engine.market.candles_from_trades.CandleBuilder`). After
every answer the complete candles are appended to the output and synced, then the progress file is replaced
(written to a temporary file, synced, renamed), so a run stopped at any instant (Ctrl-C, SIGKILL, a Kraken error)
is continued by the next one with the same bytes. Calls are paced (:class:`~engine.runtime.markets_view.
PublicPacer`, one a second by default); the REST client retries rate limits, HTTP 5xx and timeouts a bounded
number of times (:data:`DOWNLOAD_RETRY`), then the error reaches the caller with everything before it kept.

Errors::

    DownloadError     the download cannot start (a progress file for another pair, a changed output) or OHLC was
                      asked for and does not reach back far enough; nothing was changed
    KrakenError       (from the REST client) Kraken refused or did not answer; what was downloaded is kept
"""

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

import anyio

from engine.domain.instrument import Instrument
from engine.domain.market_data import NS_PER_SECOND, Candle
from engine.exchanges.kraken.backoff import Backoff
from engine.exchanges.kraken.history import (
    OHLC_WINDOW,
    PAGE_SIZE,
    CaughtUp,
    FetchTime,
    TradesPager,
    interval_start_ns,
    ohlc_candles_from,
)
from engine.exchanges.kraken.protocol.errors import KrakenProtocolError
from engine.exchanges.kraken.rest_client import KrakenRestClient
from engine.market.candles_from_trades import BuilderState, CandleBuilder, TradeOrderError
from engine.market.history_file import (
    DownloadProgress,
    ProgressFileError,
    TradesCursor,
    ohlcvt_line,
    progress_path,
)
from engine.runtime.markets_view import PublicPacer

__all__ = [
    "DOWNLOAD_RETRY",
    "DownloadError",
    "DownloadReport",
    "DownloadRequest",
    "HistoryDownload",
    "ProgressEvent",
    "SourceChoice",
    "iso_minute",
]

SourceChoice = Literal["auto", "ohlc", "trades"]
DOWNLOAD_RETRY = Backoff(initial=1.0, factor=2.0, cap=30.0, max_attempts=6)
"""Six retries over at most about a minute (rate limits wait at least the call counter's decay)."""


class DownloadError(Exception):
    """The download cannot start or go on as asked; the message says why (and that nothing was changed)."""


def iso_minute(ts_ns: int) -> str:
    """``2024-01-01 00:00Z``: how times are shown to the user."""
    return datetime.fromtimestamp(ts_ns // NS_PER_SECOND, UTC).strftime("%Y-%m-%d %H:%MZ")


@dataclass(frozen=True, slots=True)
class DownloadRequest:
    """What to download.

    Attributes:
        instrument: the pair (from the catalogue).
        interval_min: the candle interval in minutes.
        since_s: the first interval wanted (unix seconds; aligned down to an interval start); None continues the
            download the progress file describes.
        out: the candle file.
        source: ``auto`` (OHLC when it reaches back far enough, else Trades), ``ohlc`` or ``trades``.
    """

    instrument: Instrument
    interval_min: int
    since_s: int | None
    out: Path
    source: SourceChoice = "auto"


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """How far a run is: market time ``begin_ns`` .. ``target_ns`` (the present when it began), done to
    ``done_ns``; ``candles`` in the file, complete up to ``file_end_ns``; ``pages`` fetched this run."""

    source: str
    begin_ns: int
    target_ns: int
    done_ns: int
    candles: int
    pages: int
    file_end_ns: int = 0


@dataclass(frozen=True, slots=True)
class DownloadReport:
    """What a run did.

    Attributes:
        source: where this run's candles came from: ``ohlc``, ``trades``, or ``none`` (nothing was new).
        written: candles added by this run; total: candles in the file.
        first_start_ns: the file's first candle (the first interval asked for while the file is empty: a pair
            starts where its first trade is); next_start_ns: the first interval not in the file.
        pages: Trades pages fetched; trades: trades taken from them.
        resumed: a progress file was continued.
        note: why this source was used, in words.
    """

    source: str
    written: int
    total: int
    first_start_ns: int
    next_start_ns: int
    pages: int
    trades: int
    resumed: bool
    note: str


class HistoryDownload:
    """One run of a download.

    Args:
        request: what to download.
        pacer: spaces the calls (one a second by default; None: no pacing, for a local fake).
        clock_ns: the wall clock (the present is where a download ends).
        on_progress: told after every answer.
        page_size: trades asked per Trades page.
    """

    def __init__(
        self,
        request: DownloadRequest,
        *,
        pacer: PublicPacer | None,
        clock_ns: Callable[[], int],
        on_progress: Callable[[ProgressEvent], None] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.request = request
        self._rest: KrakenRestClient | None = None
        self._pacer = pacer
        self._clock_ns = clock_ns
        self._on_progress = on_progress or (lambda event: None)
        self._page_size = page_size
        self._interval_s = request.interval_min * 60
        self._span = self._interval_s * NS_PER_SECOND
        self._zero_volume = Decimal(0).scaleb(-request.instrument.lot_decimals)
        self._progress_path = progress_path(request.out)
        self.progress: DownloadProgress | None = None
        self.resumed = False
        self._written = 0
        self._target_ns = 0

    # -- before any call: what is there, and is it ours? ------------------------------------------------------
    def prepare(self) -> DownloadProgress:
        """Read the progress file (if any), check it is this download's, and cut the output back to the complete
        candles it describes. No network.

        Raises:
            DownloadError: the files belong to another download or were changed, or a new download lacks
                ``since_s`` or starts in the future; nothing was changed.
            OSError: a file cannot be read.
        """
        req = self.request
        out = req.out
        size = out.stat().st_size if out.exists() else None
        if self._progress_path.exists():
            progress = self._read_progress()
            if size is None and progress.out_bytes:
                raise DownloadError(
                    f"{out} is missing but {self._progress_path.name} says it held {progress.candles} candles; "
                    f"remove {self._progress_path} to start over"
                )
            if size is not None and size < progress.out_bytes:
                raise DownloadError(
                    f"{out} is shorter ({size} bytes) than its progress file says ({progress.out_bytes}): it was "
                    f"changed; remove {self._progress_path} and the file to start over (nothing was changed)"
                )
            if size is not None and size > progress.out_bytes:
                # The tail an interrupted run wrote before it could say so: the next pages write it again.
                os.truncate(out, progress.out_bytes)
            self.resumed = True
        else:
            if size:
                raise DownloadError(
                    f"{out} already exists and no download progress file is beside it; choose another --out "
                    "(nothing was changed)"
                )
            if req.since_s is None:
                raise DownloadError("--since is needed to start a download (a date such as 2024-01-01)")
            first = interval_start_ns(req.since_s * NS_PER_SECOND, self._interval_s)
            if first >= self._clock_ns():
                raise DownloadError(f"--since {iso_minute(req.since_s * NS_PER_SECOND)} is not in the past")
            progress = DownloadProgress(
                pair=req.instrument.pair,
                interval_min=req.interval_min,
                first_start_s=first // NS_PER_SECOND,
                builder=BuilderState(first),
            )
        self.progress = progress
        return progress

    def _read_progress(self) -> DownloadProgress:
        req = self.request
        try:
            text = self._progress_path.read_text(encoding="utf-8")
            progress = DownloadProgress.from_json(text, where=str(self._progress_path))
        except ProgressFileError as exc:
            raise DownloadError(f"{exc}; remove it and {req.out} to start over (nothing was changed)") from None
        if progress.pair != req.instrument.pair or progress.interval_min != req.interval_min:
            raise DownloadError(
                f"{req.out} holds {progress.pair} {progress.interval_min}-minute candles, not {req.instrument.pair} "
                f"{req.interval_min}-minute ones; choose another --out (nothing was changed)"
            )
        if req.since_s is not None:
            asked = interval_start_ns(req.since_s * NS_PER_SECOND, self._interval_s)
            if asked < progress.first_start_s * NS_PER_SECOND:
                raise DownloadError(
                    f"{req.out} starts at {iso_minute(progress.first_start_s * NS_PER_SECOND)}; a download adds "
                    f"only newer candles, not older ones before {iso_minute(asked)}: choose another --out "
                    "(nothing was changed)"
                )
        return progress

    # -- the run --------------------------------------------------------------------------------------------
    async def run(self, rest: KrakenRestClient) -> DownloadReport:
        """Download from where the file stops to the present, through ``rest`` (its base URL and retry policy;
        tests point it at the fake Kraken).

        Raises:
            DownloadError: ``source="ohlc"`` and OHLC does not reach back to the first missing interval.
            KrakenError: Kraken refused, or kept failing after the retries; what came before is kept.
        """
        progress = self.progress if self.progress is not None else self.prepare()
        self._rest = rest
        source = self.request.source
        self._target_ns = self._clock_ns()
        paging = progress.trades is not None and not progress.finished
        if source == "trades" or (source == "auto" and paging):
            why = "continuing a Trades download" if paging else "--source trades"
            return await self._from_trades(why)
        await self._pace()
        ohlc = await rest.ohlc(self.request.instrument.rest_name, interval=self.request.interval_min)
        start = progress.builder.next_start_ns
        candles = ohlc_candles_from(ohlc, start)
        reach = (
            f"Kraken's OHLC holds the latest {OHLC_WINDOW} candles, from {iso_minute(ohlc.candles[0].ts_ns)}"
            if ohlc.candles
            else "Kraken's OHLC answered no candle"
        )
        if candles is not None:
            await self._commit(candles, replace(self._after(candles, progress), source="ohlc", finished=True))
            self._emit("ohlc", pages=0)
            return self._report("ohlc", pages=0, trades=0, note=reach)
        if source == "ohlc":
            raise DownloadError(
                f"{reach}, not back to {iso_minute(start)}; use --source trades (or auto) "
                "to build older candles from Kraken's trades (nothing was changed)"
            )
        return await self._from_trades(f"{reach}, not back to {iso_minute(start)}" if ohlc.candles else reach)

    def _after(self, candles: list[Candle], progress: DownloadProgress) -> DownloadProgress:
        """The progress once ``candles`` (from OHLC) are written: Trades paging, if any, starts over after them."""
        if not candles:
            return progress
        last = candles[-1]
        return replace(progress, builder=BuilderState(last.ts_ns + self._span, last.close), trades=None)

    async def _from_trades(self, why: str) -> DownloadReport:
        progress = self.progress
        rest = self._rest
        assert progress is not None and rest is not None
        state = progress.builder
        cursor = progress.trades or TradesCursor(state.next_start_ns - 1)
        pager = TradesPager(cursor, floor_ns=state.next_start_ns, page_size=self._page_size)
        builder = CandleBuilder(progress.pair, self._interval_s, state, zero_volume=self._zero_volume)
        pair = self.request.instrument.rest_name
        while True:
            action = pager.next_action()
            if isinstance(action, CaughtUp):
                done = builder.close_through(action.through_ns)
                await self._commit(done, replace(progress, builder=builder.state, trades=pager.cursor, finished=True))
                self._emit("trades", pages=pager.pages, done_ns=self._target_ns)
                break
            await self._pace()
            if isinstance(action, FetchTime):
                pager.on_time((await rest.server_time()).ts_ns)
                continue
            page = await rest.trades(pair, since=action.since_ns, count=action.count)
            done = []
            try:
                for trade in pager.on_trades(page):
                    done.extend(builder.add(trade.ts_ns, trade.price, trade.qty))
            except TradeOrderError as exc:
                raise KrakenProtocolError(f"Trades: {exc}") from None
            progress = await self._commit(
                done, replace(progress, builder=builder.state, trades=pager.cursor, source="trades", finished=False)
            )
            self._emit("trades", pages=pager.pages, done_ns=pager.cursor.since_ns)
        note = f"built from {pager.trades:,} trades in {pager.pages} pages of Kraken's Trades ({why})"
        return self._report("trades", pages=pager.pages, trades=pager.trades, note=note)

    async def _pace(self) -> None:
        if self._pacer is not None:
            await self._pacer.wait()

    # -- the files ------------------------------------------------------------------------------------------
    async def _commit(self, candles: list[Candle], progress: DownloadProgress) -> DownloadProgress:
        """Write in a worker thread (a cancellation waits for it: a commit is never left half done)."""
        return await anyio.to_thread.run_sync(self._commit_now, candles, progress)

    def _commit_now(self, candles: list[Candle], progress: DownloadProgress) -> DownloadProgress:
        """Append ``candles`` to the output (synced), then replace the progress file (synced, renamed)."""
        data = "".join(map(ohlcvt_line, candles)).encode("ascii")
        if data:
            with self.request.out.open("ab") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        progress = replace(progress, out_bytes=progress.out_bytes + len(data), candles=progress.candles + len(candles))
        _replace_atomically(self._progress_path, progress.to_json())
        self.progress = progress
        self._written += len(candles)
        return progress

    def _emit(self, source: str, *, pages: int, done_ns: int | None = None) -> None:
        progress = self.progress
        assert progress is not None
        begin = progress.first_start_s * NS_PER_SECOND
        done = max(progress.builder.next_start_ns, done_ns or 0)
        self._on_progress(
            ProgressEvent(source, begin, max(self._target_ns, begin), min(done, self._target_ns), progress.candles,
                          pages, progress.builder.next_start_ns)
        )  # fmt: skip

    def _first_candle_ns(self, progress: DownloadProgress) -> int:
        if progress.out_bytes:
            with self.request.out.open("rb") as out:
                head = out.readline().split(b",", 1)[0]
            if head.isdigit():
                return int(head) * NS_PER_SECOND
        return progress.first_start_s * NS_PER_SECOND

    def _report(self, source: str, *, pages: int, trades: int, note: str) -> DownloadReport:
        progress = self.progress
        assert progress is not None
        return DownloadReport(
            source=source if self._written else "none",
            written=self._written,
            total=progress.candles,
            first_start_ns=self._first_candle_ns(progress),
            next_start_ns=progress.builder.next_start_ns,
            pages=pages,
            trades=trades,
            resumed=self.resumed,
            note=note,
        )


def _replace_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
