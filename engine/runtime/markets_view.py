"""The market scanner as the CLI and the MCP client see it: its data sources, its JSON view, and its cache.

Where the data comes from (the measures and the score: :mod:`engine.market.scanner`):

* **Kraken** (``trading-mcp scan``; an engine on ``--market kraken`` or live): AssetPairs and Ticker, one public
  REST call each for every pair, then OHLC (``interval`` minutes, default 60; Kraken returns the last 720) for the
  pairs that rank best on the Ticker alone, ``candles`` of them (default: as many as are shown). Kraken limits
  public calls per IP; the reference we hold gives no figure, so OHLC calls go in a burst of
  :data:`OHLC_BURST` and then one a second (:class:`PublicPacer`).
* **Replayed files** (``scan --data F1 F2 ...``): one pair per file, Kraken OHLCVT CSV or a saved REST OHLC (or
  Trades, made into one-minute candles) JSON, as the replay reads them; the pair from the file's name or key.
* **The engine's replayed data** (a paper engine on a file, no network): the candles it has replayed so far.

Files and the engine's replay have no bid or ask: their pairs are ranked without spread and liquidity, and say so.

Repeated scans are cheap for Kraken: AssetPairs is kept for an hour, the Ticker for 30 s, a pair's candles for
5 minutes (:class:`KrakenMarkets`); an engine keeps its last answer per argument set for :data:`VIEW_TTL_S`.
"""

import re
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from engine.domain.instrument import Instrument, normalize_asset
from engine.domain.market_data import Candle
from engine.errors import InvalidRequest
from engine.exchanges.kraken.backoff import Backoff
from engine.exchanges.kraken.protocol.errors import KrakenError
from engine.exchanges.kraken.protocol.rest import envelope_result
from engine.exchanges.kraken.rest_client import KrakenRestClient
from engine.exchanges.replay import ReplayFormat, ReplaySource, detect_format
from engine.exchanges.replay.columns import CandleColumns
from engine.market.catalog_files import current_catalog
from engine.market.scanner import (
    METRICS,
    CandleSeries,
    MarketInput,
    RankedPair,
    Ranking,
    ScanSettings,
    rank,
    rank_tiers,
)
from engine.market.scanner_inputs import candles_from_events, guess_base_quote, instrument_index, markets_from_tickers
from engine.redaction import Redactor

if TYPE_CHECKING:
    from engine.runtime.app import Engine

__all__ = [
    "OHLC_BURST",
    "TOP_MAX",
    "VIEW_TTL_S",
    "ExcludedMarketView",
    "KrakenMarkets",
    "MarketScoreView",
    "MarketsView",
    "PublicPacer",
    "ScanData",
    "catalogue_instruments",
    "engine_scan",
    "file_markets",
    "parse_quote",
    "scan_settings",
    "scan_view",
]

TOP_MAX = 2000
SIZE_MAX = 1e9
OHLC_BURST = 5
VIEW_TTL_S = 5.0
ANY_QUOTE = "ANY"
KEEP_CANDLES = 720
_WALK_BACK_MAX = 50_000
_DECIMAL_TEXT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,12})?")
_SCAN_RETRY = Backoff(initial=0.5, factor=2.0, cap=2.0, max_attempts=2)


def catalogue_instruments() -> list[Instrument]:
    """The instruments the scanner names pairs by: the catalogue in use (the one place to change it)."""
    return list(current_catalog())


# -- the view -------------------------------------------------------------------------------------------------
class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class MarketScoreView(_View):
    rank: int
    pair: str
    base: str
    quote: str
    status: str | None = Field(description="The catalogue's status; null when no catalogue knows the pair.")
    score: float = Field(description="0 (worst) to 1 (best): the weighted mean of the metrics' percentiles.")
    coverage: float = Field(description="Share of the weights this pair's metrics carry (1: it has them all).")
    last: float | None
    volume_24h_quote: float | None = Field(description="Volume of the last 24 h in the quote currency.")
    volume_24h_usd: float | None
    spread_bps: float | None = Field(description="(ask - bid) / mid, in basis points.")
    atr_pct: float | None = Field(description="Wilder ATR / last close, in percent.")
    trend: float | None = Field(description="Kaufman's efficiency ratio, 0 (noise) to 1 (a straight line).")
    liquidity: float | None = Field(description="Share of an order of size_usd the best level alone fills.")
    top_depth_usd: float | None = Field(description="Value at the best level, the thinner side, in USD.")
    candles: int
    tier: int = Field(
        description="1: ranked on every metric it has; 2: a Kraken pair whose candles were not fetched, ranked after "
        "the first tier on the Ticker alone (its score is its tier's)."
    )
    percentiles: dict[str, float | None]
    missing: list[str] = Field(description="What this pair lacks, and why; it is ranked on the rest.")


class ExcludedMarketView(_View):
    pair: str
    reason: str


class MarketsView(_View):
    source: str
    as_of: str | None = Field(description="When the data is from (UTC; a replay's market time).")
    quote: str = Field(description="The quote currency ranked, or 'any'.")
    size_usd: float
    ranked: int = Field(description="How many pairs were ranked (pairs holds the best of them).")
    pairs: list[MarketScoreView]
    excluded: list[ExcludedMarketView]
    weights: dict[str, float]
    method: dict[str, str]
    notes: list[str]


def _method(settings: ScanSettings, interval: str) -> dict[str, str]:
    return {
        "volume": "Ticker v[1] x p[1] (24 h base volume x its VWAP); from candles: sum of volume x close over the "
        "last 24 h; in USD at the mid of QUOTE/USD (or 1/mid of USD/QUOTE) in the same data",
        "spread": "(ask - bid) / mid from the Ticker's best ask a[0] and bid b[0]; lower is better",
        "volatility": f"ATR %: Wilder ATR({settings.atr_period}) over {interval} candles / last close x 100",
        "trend": f"Kaufman efficiency ratio over {settings.trend_period} {interval} candles: |net move| / path",
        "liquidity": f"share of a {settings.size_usd:g} USD order the best level fills on the thinner side, from "
        "the Ticker's lot volumes a[2], b[2]: the best level only, printed with 3 decimals, one instant",
        "score": "weighted mean of each metric's percentile among the ranked pairs, over the metrics a pair has",
    }


def _round(value: float | None, places: int) -> float | None:
    return None if value is None else round(value, places)


def _score_view(r: RankedPair) -> MarketScoreView:
    m = r.metrics
    return MarketScoreView(
        rank=r.rank,
        pair=r.pair,
        base=r.base,
        quote=r.quote,
        status=r.status,
        score=round(r.score, 4),
        coverage=round(r.coverage, 4),
        last=m.last,
        volume_24h_quote=_round(m.volume_quote_24h, 2),
        volume_24h_usd=_round(m.volume_usd_24h, 2),
        spread_bps=_round(None if m.spread is None else m.spread * 10_000, 3),
        atr_pct=_round(m.atr_pct, 4),
        trend=_round(m.trend, 4),
        liquidity=_round(m.liquidity, 4),
        top_depth_usd=_round(m.top_depth_usd, 2),
        candles=m.candles,
        tier=r.tier,
        percentiles={k: _round(v, 4) for k, v in r.percentiles.items()},
        missing=list(r.missing),
    )


def _iso(ts_ns: int | None) -> str | None:
    if ts_ns is None:
        return None
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class ScanData:
    """Markets to rank, where they come from, and what was noticed on the way."""

    markets: list[MarketInput]
    source: str
    as_of_ns: int | None
    interval: str
    notes: list[str] = field(default_factory=list)
    tiers: list[list[MarketInput]] | None = None
    """When set, ranked tier by tier (:func:`~engine.market.scanner.rank_tiers`) instead of all together."""


def parse_quote(text: str | None) -> str | None:
    """The quote currency asked for (``usd`` → ``USD``, ``XBT`` → ``BTC``), or None for ``any``.

    Raises:
        InvalidRequest: not an asset code.
    """
    raw = (text or "").strip().upper()
    if raw in (ANY_QUOTE, "ALL"):
        return None
    if not (2 <= len(raw) <= 12 and raw.isascii() and raw.replace(".", "").isalnum()):
        raise InvalidRequest(f"quote {text!r} is not an asset code such as USD, EUR or USDT (or 'any')")
    return normalize_asset(raw)


def scan_settings(quote: str | None, top: object, size: object) -> tuple[ScanSettings, int]:
    """Settings and the number of pairs to show, from a caller's arguments (``size`` a number, or its plain
    decimal text as the control socket carries it).

    Raises:
        InvalidRequest: ``top`` is not a whole number from 1 to :data:`TOP_MAX`, or ``size`` not a positive number
            of USD up to 1e9.
    """
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= TOP_MAX:
        raise InvalidRequest(f"top must be a whole number from 1 to {TOP_MAX}, not {top!r}")
    if isinstance(size, str) and _DECIMAL_TEXT.fullmatch(size):
        size = float(size)
    if isinstance(size, bool) or not isinstance(size, int | float) or not 0 < size <= SIZE_MAX:
        raise InvalidRequest(f"size must be a positive number of USD up to {SIZE_MAX:g}, not {size!r}")
    return ScanSettings(quote=parse_quote(quote), size_usd=float(size), max_candles=KEEP_CANDLES), top


def _check_quote(settings: ScanSettings, markets: Sequence[MarketInput], source: str) -> None:
    quotes = sorted({m.quote for m in markets})
    if settings.quote is not None and settings.quote not in quotes:
        listing = ", ".join(quotes[:30]) + (", ..." if len(quotes) > 30 else "")
        raise InvalidRequest(
            f"unknown quote {settings.quote!r}: no pair of {source} is quoted in it (quotes: {listing or 'none'})"
        )


def scan_view(data: ScanData, settings: ScanSettings, top: int) -> MarketsView:
    """Rank ``data`` and show the best ``top``.

    Raises:
        InvalidRequest: no pair of the data is quoted in ``settings.quote``.
    """
    _check_quote(settings, data.markets, data.source)
    ranking: Ranking = rank(data.markets, settings) if data.tiers is None else rank_tiers(data.tiers, settings)
    return MarketsView(
        source=data.source,
        as_of=_iso(data.as_of_ns),
        quote=settings.quote or "any",
        size_usd=settings.size_usd,
        ranked=len(ranking.ranked),
        pairs=[_score_view(r) for r in ranking.top(top)],
        excluded=[ExcludedMarketView(pair=e.pair, reason=e.reason) for e in ranking.excluded],
        weights={m: settings.weights[m] for m in METRICS},
        method=_method(settings, data.interval),
        notes=list(data.notes),
    )


# -- replayed files and the engine's replay ---------------------------------------------------------------------
def _market_for(label: str, series: CandleSeries, index: dict[str, Instrument], where: str) -> MarketInput:
    inst = index.get("".join(ch for ch in label.upper() if ch.isalnum()))
    if inst is not None:
        return MarketInput(inst.pair, inst.base, inst.quote, inst.status, None, series)
    guessed = guess_base_quote(label)
    if guessed is None:
        raise InvalidRequest(f"{where}: no catalogue knows pair {label!r} and its quote cannot be told from the name")
    base, quote = guessed
    return MarketInput(f"{base}/{quote}", base, quote, None, None, series)


def _interval_text(seconds: set[int]) -> str:
    return " and ".join(f"{s // 60} min" if s % 3600 else f"{s // 3600} h" for s in sorted(seconds)) or "no"


def file_markets(paths: Sequence[Path], instruments: Iterable[Instrument] | None = None) -> ScanData:
    """One market per file (see the module's docstring), its candles the last :data:`KEEP_CANDLES`.

    Raises:
        InvalidRequest: two files hold the same pair, or a file's pair tells no quote.
        ReplayError: a file is not a replay file (the message names it and the row).
        OSError: a file cannot be read.
    """
    index = instrument_index(catalogue_instruments() if instruments is None else instruments)
    markets: dict[str, MarketInput] = {}
    last_close = 0
    intervals: set[int] = set()
    for path in paths:
        trades = detect_format(path) is ReplayFormat.TRADES_JSON
        events = ReplaySource(path, aggregate_s=60 if trades else None, fill_gaps=trades).load().events
        candles = events if isinstance(events, CandleColumns) else [e for e in events if isinstance(e, Candle)]
        if not candles:
            raise InvalidRequest(f"{path}: no candles to scan")
        series = candles_from_events(candles, KEEP_CANDLES)
        market = _market_for(candles[0].pair, series, index, str(path))
        if market.pair in markets:
            raise InvalidRequest(f"{path}: a second file for {market.pair}; give one file per pair")
        markets[market.pair] = market
        last_close = max(last_close, int(series.close_ns[-1]))
        intervals.add(series.interval_s)
    names = ", ".join(p.name for p in paths)
    notes = []
    if len(intervals) > 1:
        lengths = _interval_text(intervals)
        notes.append(f"the files' candles differ in length ({lengths}): ATR % and trend are not comparable across them")
    return ScanData(list(markets.values()), f"replayed files {names}", last_close, _interval_text(intervals), notes)


def replayed_markets(engine: "Engine") -> ScanData:
    """The candles the engine has replayed so far, per pair (the last :data:`KEEP_CANDLES` of each).

    Raises:
        InvalidRequest: the engine's data is not a replay (a live feed is scanned on Kraken instead).
    """
    replay = getattr(engine.source, "replay", None)
    if not isinstance(replay, ReplaySource):
        raise InvalidRequest("this engine's market data is neither Kraken's nor a replay: nothing to scan")
    events = replay.events
    stop = min(engine.state.cursor, len(events))
    per_pair: dict[str, list[Candle]] = {}
    if isinstance(events, CandleColumns):
        if stop:
            per_pair[events.pair] = events[max(0, stop - KEEP_CANDLES) : stop]
    else:
        for index in range(stop - 1, max(-1, stop - 1 - _WALK_BACK_MAX), -1):
            event = events[index]
            if isinstance(event, Candle):
                bucket = per_pair.setdefault(event.pair, [])
                if len(bucket) < KEEP_CANDLES:
                    bucket.append(event)
        per_pair = {pair: bucket[::-1] for pair, bucket in per_pair.items()}
    known = instrument_index([*catalogue_instruments(), *engine.instruments.values()])
    markets = [_market_for(pair, candles_from_events(c), known, "the replay") for pair, c in per_pair.items() if c]
    intervals = {c[-1].interval_s for c in per_pair.values() if c}
    notes = [] if markets else ["the engine has replayed no candle yet"]
    source = f"the engine's replayed data ({engine.source.description}, {stop} events so far)"
    return ScanData(markets, source, engine.clock.now_ns() or None, _interval_text(intervals), notes)


# -- Kraken ---------------------------------------------------------------------------------------------------------
class PublicPacer:
    """Spaces Kraken public calls: ``burst`` at once, then one every ``interval_s`` (a token bucket)."""

    def __init__(
        self,
        burst: int = OHLC_BURST,
        interval_s: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._burst = float(burst)
        self._interval = interval_s
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._at = clock()

    async def wait(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) / self._interval)
        self._at = now
        if self._tokens < 1.0:
            await self._sleep((1.0 - self._tokens) * self._interval)
            self._tokens = 1.0
            self._at = self._clock()
        self._tokens -= 1.0


class _PublicRest(KrakenRestClient):
    """The REST client, plus the whole Ticker as Kraken sends it (the typed ``ticker`` keeps only the book)."""

    async def every_ticker(self) -> dict[str, Any]:
        return await self._call("Ticker", None, lambda text: envelope_result(text, "Ticker"), private=False)


@dataclass
class _Kept:
    at: float
    value: Any


class KrakenMarkets:
    """Kraken's data for the scanner, kept between scans (AssetPairs 1 h, Ticker 30 s, a pair's candles 5 min).

    Args:
        rest_url: Kraken's REST API, or the fake's.
        interval_min: the OHLC interval.
        pacer: spaces OHLC calls (default :class:`PublicPacer`).
        clock: monotonic seconds, for keeping; wall_ns: wall-clock nanoseconds, for ``as_of``.
    """

    pairs_ttl_s = 3600.0
    ticker_ttl_s = 30.0
    candles_ttl_s = 300.0

    def __init__(
        self,
        rest_url: str,
        *,
        interval_min: int = 60,
        pacer: PublicPacer | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
        transport: Any = None,
    ) -> None:
        self.rest_url = rest_url
        self.interval_min = interval_min
        self.pacer = pacer or PublicPacer(clock=clock)
        self._clock = clock
        self._wall_ns = wall_ns
        self._transport = transport
        self._lock = anyio.Lock()
        self._pairs: _Kept | None = None
        self._tickers: _Kept | None = None
        self._candles: dict[str, _Kept] = {}
        self.ohlc_calls = 0

    def _fresh(self, kept: _Kept | None, ttl: float) -> bool:
        return kept is not None and self._clock() - kept.at <= ttl

    async def data(self, settings: ScanSettings, candle_count: int) -> ScanData:
        """Every pair's Ticker, with candles for the ``candle_count`` best on the Ticker alone.

        Raises:
            KrakenError: AssetPairs or the Ticker failed (OHLC failures are noted, and the pair goes on without).
            InvalidRequest: no pair is quoted in ``settings.quote``.
        """
        rest = _PublicRest(self.rest_url, transport=self._transport, retry=_SCAN_RETRY)
        async with self._lock, rest:
            if not self._fresh(self._pairs, self.pairs_ttl_s):
                self._pairs = _Kept(self._clock(), instrument_index((await rest.asset_pairs()).values()))
            if not self._fresh(self._tickers, self.ticker_ttl_s):
                self._tickers = _Kept(self._clock(), (self._wall_ns(), await rest.every_ticker()))
            assert self._pairs is not None and self._tickers is not None
            as_of, tickers = self._tickers.value
            # Reading 1,500 entries and ranking them is CPU work: off the event loop (it may be the engine's).
            markets, notes = await anyio.to_thread.run_sync(markets_from_tickers, tickers, self._pairs.value)
            source = f"Kraken AssetPairs and Ticker ({len(tickers)} pairs) at {self.rest_url}"
            _check_quote(settings, list(markets.values()), source)
            ranking = await anyio.to_thread.run_sync(rank, list(markets.values()), settings)
            best = {r.pair for r in ranking.top(candle_count)}
            wanted = [key for key, m in markets.items() if m.pair in best]
            notes.extend(await self._fetch_candles(rest, wanted))
        first = [replace(markets[key], candles=self._candles[key].value) for key in wanted if key in self._candles]
        interval = f"{self.interval_min} min"
        if wanted:
            notes.append(
                f"OHLC ({interval}) for the {len(wanted)} best on the Ticker alone, ranked first on every metric "
                "(tier 1); the other pairs follow as ranked on the Ticker alone (tier 2)"
            )
        everything = list(markets.values())
        tiers = [[*first, *(markets[k] for k in wanted if k not in self._candles)], everything] if wanted else None
        return ScanData(everything, source + f", OHLC {interval}", as_of, interval, notes, tiers)

    async def _fetch_candles(self, rest: KrakenRestClient, keys: Sequence[str]) -> list[str]:
        notes: list[str] = []
        failures = 0
        for key in keys:
            if self._fresh(self._candles.get(key), self.candles_ttl_s):
                continue
            if failures >= 3:
                notes.append("OHLC stopped after 3 failures in a row")
                break
            await self.pacer.wait()
            self.ohlc_calls += 1
            try:
                result = await rest.ohlc(key, interval=self.interval_min)
            except KrakenError as exc:
                failures += 1
                notes.append(f"OHLC of {key} failed: {Redactor().foreign(str(exc))[:200]}")
                continue
            failures = 0
            if result.candles:
                self._candles[key] = _Kept(self._clock(), candles_from_events(result.candles, KEEP_CANDLES))
        return notes


# -- the engine's scan (its facade's ``markets``) ---------------------------------------------------------------
class _EngineScanner:
    def __init__(self, kraken: KrakenMarkets | None) -> None:
        self.kraken = kraken
        self.views: dict[tuple[str | None, int, float], _Kept] = {}
        self.lock = anyio.Lock()


_SCANNERS: "weakref.WeakKeyDictionary[Engine, _EngineScanner]" = weakref.WeakKeyDictionary()


def _scanner_of(engine: "Engine") -> _EngineScanner:
    scanner = _SCANNERS.get(engine)
    if scanner is None:
        config = engine.config
        on_kraken = config.market.source == "kraken" or config.mode == "live"
        kraken = KrakenMarkets(config.kraken.rest_url) if on_kraken else None
        scanner = _SCANNERS[engine] = _EngineScanner(kraken)
    return scanner


async def engine_scan(engine: "Engine", quote: str, top: int, size: float | str) -> MarketsView:
    """The engine's market scan: Kraken's pairs on a Kraken feed, else the pairs it replays (see the module).

    Raises:
        InvalidRequest: bad arguments, or an unknown quote.
        KrakenError: Kraken did not answer.
    """
    from engine.runtime.control import OFF_LOOP  # here: the control socket's modules import this one

    settings, top = scan_settings(quote, top, size)
    scanner = _scanner_of(engine)
    key = (settings.quote, top, settings.size_usd)
    started = time.perf_counter()
    on_loop = 0.0
    try:
        async with scanner.lock:
            kept = scanner.views.get(key)
            if kept is not None and time.monotonic() - kept.at <= VIEW_TTL_S:
                view: MarketsView = kept.value
                return view
            if scanner.kraken is not None:
                data = await scanner.kraken.data(settings, top)
            else:
                reading = time.perf_counter()
                data = replayed_markets(engine)
                on_loop = time.perf_counter() - reading
            view = await anyio.to_thread.run_sync(scan_view, data, settings, top)
            scanner.views[key] = _Kept(time.monotonic(), view)
            return view
    finally:
        # Waiting for Kraken, for another scan and for the worker thread holds no part of the engine's loop: the
        # control socket's read budget must not charge it (see engine.runtime.control.OFF_LOOP).
        waits = OFF_LOOP.get()
        if waits is not None:
            waits.append(max(0.0, time.perf_counter() - started - on_loop))
