"""``trading-mcp download``: Kraken's history into a file that ``backtest --data`` and ``run --data`` read.

    trading-mcp download --pair ETH/USD --interval 60 --since 2024-01-01 --out ETHUSD_60.csv
        [--source auto|ohlc|trades] [--pace 1] [--config FILE] [--no-progress]

The pair is named in any spelling (the catalogue resolves it before any call to Kraken). The file is Kraken's
OHLCVT CSV; ``FILE.progress.json`` beside it lets the same command continue an interrupted download, or add what
is new to a finished one (:mod:`engine.runtime.history_download`). A progress bar with the time left goes to
stderr when it is a terminal, else a plain line every ``PLAIN_EVERY_S`` seconds. Bad input, a refused pair or a
Kraken error ends with one line on stderr and exit status 2 (what was downloaded is kept); Ctrl-C keeps it too.
"""

import argparse
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import anyio
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from engine.domain.instrument import Instrument
from engine.domain.market_data import NS_PER_SECOND
from engine.exchanges.kraken.protocol.errors import KrakenError
from engine.exchanges.kraken.rest_client import KrakenRestClient, KrakenTransportError
from engine.market.catalog import UnknownPair
from engine.market.catalog_files import current_catalog
from engine.redaction import Redactor
from engine.runtime.config import ConfigError, load_config
from engine.runtime.history_download import (
    DOWNLOAD_RETRY,
    DownloadError,
    DownloadReport,
    DownloadRequest,
    HistoryDownload,
    ProgressEvent,
    SourceChoice,
    iso_minute,
)
from engine.runtime.markets_view import PublicPacer

__all__ = ["INTERVALS", "ProgressDisplay", "add_download_parser", "cmd_download", "find_instrument", "parse_since"]

INTERVALS = (1, 5, 15, 30, 60, 240, 1440)
"""Kraken's OHLC intervals up to a day (minutes): the ones whose epoch-aligned windows are Kraken's."""
PLAIN_EVERY_S = 10.0
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?Z?")
_UNIX = re.compile(r"\d{1,11}")
_PACE = re.compile(r"\d{1,3}(?:\.\d{1,3})?")


def find_instrument(name: str) -> Instrument:
    """The pair ``name`` spells, from the catalogue in use (the one place a download looks pairs up).

    Raises:
        UnknownPair: no pair of the catalogue answers to ``name``.
    """
    return current_catalog().resolve(name)


def add_download_parser(sub: Any) -> None:
    """Add ``download`` to the command line's sub-commands."""
    dl = sub.add_parser(
        "download",
        help="download Kraken history (OHLC, or candles built from Trades) into a file backtest and run --data read",
    )
    dl.add_argument("--pair", required=True, help="the pair, in any spelling (ETH/USD, ETHUSD, XETHZUSD)")
    dl.add_argument("--interval", default="60", help=f"candle minutes: {', '.join(map(str, INTERVALS))} (default 60)")
    dl.add_argument("--since", help="the first candle: a UTC date or time (2024-01-01, 2024-01-01T12:00) or unix s")
    dl.add_argument("--out", type=Path, required=True, help="the candle file (Kraken's OHLCVT CSV)")
    dl.add_argument(
        "--source",
        choices=["auto", "ohlc", "trades"],
        default="auto",
        help="auto: OHLC when Kraken's latest 720 candles reach back far enough, else Trades (default)",
    )
    dl.add_argument("--pace", default="1", help="seconds between calls to Kraken (default 1)")
    dl.add_argument("--config", type=Path, help="TOML configuration ([kraken] rest_url)")
    dl.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")


def parse_since(text: str) -> int:
    """``2024-01-01``, ``2024-01-01T12:00[:00][Z]`` (UTC) or unix seconds, as unix seconds.

    Raises:
        DownloadError: anything else.
    """
    text = text.strip()
    if _UNIX.fullmatch(text):
        return int(text)
    if _DATE.fullmatch(text):
        try:
            moment = datetime.fromisoformat(text.rstrip("Z").replace(" ", "T"))
        except ValueError:
            pass
        else:
            return int(moment.replace(tzinfo=UTC).timestamp())
    raise DownloadError(
        f"--since {text!r}: use a UTC date such as 2024-01-01, a time such as 2024-01-01T12:00, or unix seconds"
    )


def _interval(text: str) -> int:
    if not text.isdigit() or int(text) not in INTERVALS:
        raise DownloadError(f"--interval must be one of {', '.join(map(str, INTERVALS))} minutes, not {text!r}")
    return int(text)


def _pace(text: str) -> float:
    if not _PACE.fullmatch(text):
        raise DownloadError(f"--pace must be seconds between calls such as 1 or 1.5, not {text!r}")
    return float(text)


def cmd_download(args: argparse.Namespace) -> int:
    """Run ``trading-mcp download``; every refusal and error is one line on stderr and exit status 2."""
    try:
        return _download(args)
    except (DownloadError, UnknownPair, ConfigError) as exc:
        print(f"trading-mcp download: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _download(args: argparse.Namespace) -> int:
    instrument = find_instrument(args.pair)  # before anything else: an unknown pair costs no call
    interval = _interval(args.interval)
    since = None if args.since is None else parse_since(args.since)
    pace = _pace(args.pace)
    source: SourceChoice = args.source
    url = load_config(args.config).kraken.rest_url
    if not args.out.parent.is_dir():
        raise DownloadError(f"--out {args.out}: the folder {args.out.parent} does not exist")
    request = DownloadRequest(instrument, interval, since, args.out, source)
    show = not args.no_progress
    display = ProgressDisplay(sys.stderr, rich=show and sys.stderr.isatty(), plain=show and not sys.stderr.isatty())

    job = HistoryDownload(
        request,
        pacer=PublicPacer(burst=1, interval_s=pace) if pace > 0 else None,
        clock_ns=time.time_ns,
        on_progress=display,
    )
    job.prepare()

    async def main() -> DownloadReport:
        async with KrakenRestClient(url, retry=DOWNLOAD_RETRY, timeout_s=20.0) as rest:
            return await job.run(rest)

    try:
        with display:
            report = anyio.run(main)
    except KeyboardInterrupt:
        print(f"trading-mcp download: interrupted; {_kept(job)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KrakenTransportError as exc:
        text = Redactor().foreign(str(exc))
        print(f"trading-mcp download: Kraken did not answer at {url} ({text}); {_kept(job)}", file=sys.stderr)
        return EXIT_ERROR
    except KrakenError as exc:
        text = Redactor().foreign(", ".join(exc.errors) if exc.errors else str(exc))
        print(f"trading-mcp download: Kraken answered {text}; {_kept(job)}", file=sys.stderr)
        return EXIT_ERROR
    print(render_report(report, request))
    return 0


def _kept(job: HistoryDownload) -> str:
    progress = job.progress
    if progress is None or not progress.candles:
        return f"no candle was written yet; run the same command to start again ({job.request.out})"
    span = job.request.interval_min * 60 * NS_PER_SECOND
    last = iso_minute(progress.builder.next_start_ns - span)
    return f"kept {progress.candles:,} candles through {last} in {job.request.out}; run the same command to continue"


def render_report(report: DownloadReport, request: DownloadRequest) -> str:
    """What a run did, for a person: the span in the file, where the candles came from, and how to use it."""
    span = request.interval_min * 60 * NS_PER_SECOND
    pair = request.instrument.pair
    if report.total:
        held = (
            f"{pair} {request.interval_min}-minute candles {iso_minute(report.first_start_ns)} .. "
            f"{iso_minute(report.next_start_ns - span)}: {report.total:,} in {request.out} ({report.written:,} new)"
        )
    else:
        since = iso_minute(report.first_start_ns)
        held = f"{pair}: no complete {request.interval_min}-minute candle with a trade since {since} yet"
    source = {"ohlc": "Kraken's OHLC", "trades": "Kraken's Trades", "none": "nothing new"}[report.source]
    lines = [held, f"  source: {source}; {report.note}"]
    if report.resumed:
        lines.append(f"  continued the download described by {request.out.name}.progress.json")
    if report.total:
        lines.append(
            f"  backtest it: trading-mcp backtest --data {request.out} --pair {pair} --interval {request.interval_min} "
            "--strategy ema_cross"
        )
    return "\n".join(lines)


class ProgressDisplay:
    """Progress on stderr: a rich bar with the time left on a terminal, else a plain line now and then."""

    def __init__(
        self, stream: TextIO, *, rich: bool, plain: bool, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._plain = plain
        self._monotonic = monotonic
        self._last_line = -PLAIN_EVERY_S
        self._task: TaskID | None = None
        self._bar: Progress | None = None
        if rich:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>5.1f}%"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[detail]}"),
                console=Console(file=stream),
                transient=False,
            )

    def __enter__(self) -> "ProgressDisplay":
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, event: ProgressEvent) -> None:
        total = max(1, (event.target_ns - event.begin_ns) // NS_PER_SECOND)
        done = max(0, (event.done_ns - event.begin_ns) // NS_PER_SECOND)
        detail = f"{event.candles:,} candles, {event.pages} pages"
        if event.candles:
            detail += f", to {iso_minute(event.file_end_ns)}"
        if self._bar is not None:
            if self._task is None:
                self._task = self._bar.add_task(f"{event.source}", total=total, detail=detail)
            self._bar.update(self._task, completed=done, total=total, detail=detail, description=event.source)
            return
        if not self._plain:
            return
        now = self._monotonic()
        if now - self._last_line >= PLAIN_EVERY_S or done >= total:
            self._last_line = now
            share = 100 * done / total
            print(f"download: {share:5.1f}% ({event.source}) {detail}", file=self._stream, flush=True)
