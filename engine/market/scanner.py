"""The opportunity scanner: Kraken spot pairs ranked by what a short-term trader needs of a market.

For each pair the scanner measures, from its Ticker entry (Kraken's ``/0/public/Ticker``; the fields are read in
:mod:`engine.market.scanner_inputs`) and its recent candles when it has them:

``volume``
    24 h volume in the quote currency: Ticker ``v[1]`` (base volume of the last 24 h) × ``p[1]`` (the VWAP of the
    same 24 h), which is exactly the quote turned over. Without a Ticker (replayed files): Σ volume × close over
    the candles that closed in the data's last 24 h (an estimate: each candle's close stands in for its VWAP).
    In USD: × the quote's USD rate (:func:`usd_rates`). Higher is better.
``spread``
    ``(ask − bid) / mid`` with ``mid = (ask + bid) / 2``, from Ticker ``a[0]`` and ``b[0]``. Lower is better.
``volatility``
    ATR %: Wilder's ATR over ``atr_period`` candles (TA-Lib's ATR) / the last close × 100, how far the price
    moves in one candle. Higher is better: it is the room a trade has to beat the spread and the fees.
``trend``
    Kaufman's efficiency ratio over ``trend_period`` candles, 0 to 1: how much of the path went one way.
    Higher is better.
``liquidity``
    At ``size_usd``: the fraction of a market order of that size that the best level alone fills, on the thinner
    side: ``min(1, ask × ask_lot_volume / size, bid × bid_lot_volume / size)``, the size in the quote currency.
    It tells whether an order of that size trades at the quoted price. Its limits: the Ticker shows only the best
    level (0.3 says 30 % fills at the best price and the rest goes deeper, at prices it cannot tell); Kraken
    prints the lot volume with three decimals, so a best level under 0.0005 of the base reads as empty; it is
    one instant's snapshot. Higher is better.

**Score.** Each metric becomes a percentile among the ranked pairs that have it (0 worst, 1 best, equal values
share their places: :func:`~engine.market.scanner_measures.percentiles`), and
``score = Σ weight × percentile / Σ weight`` over the metrics the pair has, with the weights of :data:`WEIGHTS`
(the one place they are set). A pair missing a metric is ranked on the others and says what it misses;
``coverage`` is the share of the weight it has. Ties go to the higher coverage, then the higher volume, then the
name. With one quote currency the volume compared is the quote volume; across quotes, the USD volume.

A pair whose catalogue status is not ``online`` is excluded, with the reason. A pair no catalogue knows
(``status=None``) is ranked, and says so.

:func:`rank` is the whole scanner: market inputs in, pairs in order with their scores out.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from engine.market.scanner_measures import Floats, efficiency_ratio_last, percentiles, wilder_atr_last

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "WEIGHTS",
    "CandleSeries",
    "Excluded",
    "MarketInput",
    "Metric",
    "PairMetrics",
    "RankedPair",
    "Ranking",
    "ScanError",
    "ScanSettings",
    "TickerStats",
    "rank",
    "rank_tiers",
    "usd_rates",
]

Metric = Literal["volume", "spread", "volatility", "trend", "liquidity"]
METRICS: Final[tuple[Metric, ...]] = ("volume", "spread", "volatility", "trend", "liquidity")
WEIGHTS: Final[Mapping[Metric, float]] = MappingProxyType(
    {"volume": 0.30, "spread": 0.25, "volatility": 0.15, "trend": 0.15, "liquidity": 0.15}
)
"""The composite score's weights, the one place they are set (they sum to 1)."""
HIGHER_IS_BETTER: Final[Mapping[Metric, bool]] = MappingProxyType(
    {"volume": True, "spread": False, "volatility": True, "trend": True, "liquidity": True}
)
Ints = NDArray[np.int64]
DAY_NS = 86_400 * 1_000_000_000
_NAN = math.nan


class ScanError(ValueError):
    """A scan asked for something impossible (a size of 0, a period of 0, an unknown weight)."""


@dataclass(frozen=True, slots=True)
class TickerStats:
    """One pair's Ticker entry as numbers (Kraken's field in brackets).

    ``ask_volume`` and ``bid_volume`` are the lot volumes at the best level (``a[2]``, ``b[2]``); the 24 h figures
    are the rolling last 24 hours (the second item of ``v``, ``p``, ``t``, ``l``, ``h``); ``open_today`` is
    ``o``, the price at 00:00 UTC.
    """

    ask: float
    ask_volume: float
    bid: float
    bid_volume: float
    last: float
    volume_24h: float
    vwap_24h: float
    trades_24h: int
    low_24h: float
    high_24h: float
    open_today: float


@dataclass(frozen=True, slots=True, eq=False)
class CandleSeries:
    """One pair's candles, oldest first, as float64 columns (``close_ns``: when each candle closed)."""

    interval_s: int
    close_ns: Ints = field(repr=False)
    high: Floats = field(repr=False)
    low: Floats = field(repr=False)
    close: Floats = field(repr=False)
    volume: Floats = field(repr=False)

    def __len__(self) -> int:
        return int(self.close.shape[0])


@dataclass(frozen=True, slots=True)
class MarketInput:
    """What the scanner knows of one pair.

    Attributes:
        pair: the name shown (the engine's canonical name).
        base, quote: plain asset codes (``BTC``, ``USD``).
        status: the catalogue's status (``online``, ``cancel_only``, ...); None when no catalogue knows the pair.
        ticker: its Ticker entry, if any; candles: its recent candles, if any.
    """

    pair: str
    base: str
    quote: str
    status: str | None
    ticker: TickerStats | None = None
    candles: CandleSeries | None = None


@dataclass(frozen=True, slots=True)
class ScanSettings:
    """What to rank and how.

    Attributes:
        quote: rank only pairs quoted in this currency (``USD``); None ranks every quote (volume compared in USD).
        size_usd: the order size the liquidity metric is measured at, in USD.
        atr_period: Wilder ATR period, in candles; trend_period: efficiency-ratio period, in candles.
        max_candles: only the last this many candles of a pair are used.
        weights: the composite's weights (default :data:`WEIGHTS`).
    """

    quote: str | None = "USD"
    size_usd: float = 1000.0
    atr_period: int = 14
    trend_period: int = 20
    max_candles: int = 720
    weights: Mapping[Metric, float] = field(default_factory=lambda: WEIGHTS)

    def __post_init__(self) -> None:
        if not (isinstance(self.size_usd, int | float) and math.isfinite(self.size_usd) and self.size_usd > 0):
            raise ScanError(f"the size must be a positive number of USD, not {self.size_usd!r}")
        for name in ("atr_period", "trend_period", "max_candles"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ScanError(f"{name} must be a whole number of candles, at least 1, not {value!r}")
        unknown = set(self.weights) - set(METRICS)
        if unknown or not all(math.isfinite(w) and w > 0 for w in self.weights.values()):
            raise ScanError(f"weights are positive numbers for {', '.join(METRICS)}")


@dataclass(frozen=True, slots=True)
class PairMetrics:
    """One pair's measures (None: cannot be told; see ``RankedPair.missing`` for why)."""

    last: float | None
    volume_base_24h: float | None
    volume_quote_24h: float | None
    volume_usd_24h: float | None
    volume_hours: float | None
    usd_rate: float | None
    spread: float | None
    atr_pct: float | None
    trend: float | None
    liquidity: float | None
    top_depth_usd: float | None
    candles: int


@dataclass(frozen=True, slots=True)
class RankedPair:
    rank: int
    pair: str
    base: str
    quote: str
    status: str | None
    score: float
    coverage: float
    percentiles: Mapping[Metric, float | None]
    metrics: PairMetrics
    missing: tuple[str, ...]
    tier: int = 1


@dataclass(frozen=True, slots=True)
class Excluded:
    pair: str
    base: str
    quote: str
    reason: str


@dataclass(frozen=True, slots=True)
class Ranking:
    """The pairs ranked best first, the pairs left out and why, and the settings used."""

    ranked: tuple[RankedPair, ...]
    excluded: tuple[Excluded, ...]
    settings: ScanSettings

    def top(self, count: int) -> tuple[RankedPair, ...]:
        return self.ranked[:count]


def _price(market: MarketInput) -> float | None:
    """A pair's price for conversions: the Ticker's mid, else its last trade, else the last candle's close."""
    ticker = market.ticker
    if ticker is not None:
        if 0 < ticker.bid <= ticker.ask:
            return (ticker.ask + ticker.bid) / 2
        if ticker.last > 0:
            return ticker.last
    candles = market.candles
    if candles is not None and len(candles) and candles.close[-1] > 0:
        return float(candles.close[-1])
    return None


def usd_rates(markets: Sequence[MarketInput]) -> dict[str, float]:
    """USD per unit of each asset the data can price: 1 for USD; else the price (mid, else last) of ASSET/USD;
    else 1 / the price of USD/ASSET. Assets with neither pair have no rate (their USD figures stay unknown)."""
    direct: dict[str, float] = {"USD": 1.0}
    inverse: dict[str, float] = {}
    for market in markets:
        price = _price(market)
        if price is None:
            continue
        if market.quote == "USD" and market.base != "USD":
            direct.setdefault(market.base, price)
        elif market.base == "USD" and market.quote != "USD":
            inverse.setdefault(market.quote, 1.0 / price)
    return {**inverse, **direct}


class _Columns:
    """The chosen pairs' measures, one float64 vector each (NaN: missing)."""

    def __init__(self, count: int) -> None:
        self.last, self.volume_base, self.volume_quote, self.volume_hours = (np.full(count, _NAN) for _ in range(4))
        self.rate, self.spread, self.atr_pct, self.trend = (np.full(count, _NAN) for _ in range(4))
        self.liquidity, self.depth_usd = np.full(count, _NAN), np.full(count, _NAN)
        self.candles = np.zeros(count, dtype=np.int64)


def _ticker_columns(chosen: Sequence[MarketInput], cols: _Columns, rates: Mapping[str, float], size: float) -> None:
    count = len(chosen)
    has = np.zeros(count, dtype=bool)
    fields = np.full((count, 7), _NAN)
    for i, market in enumerate(chosen):
        t = market.ticker
        if t is not None:
            has[i] = True
            fields[i] = (t.ask, t.ask_volume, t.bid, t.bid_volume, t.last, t.volume_24h, t.vwap_24h)
        cols.rate[i] = rates.get(market.quote, _NAN)
    ask, ask_vol, bid, bid_vol, last, vol, vwap = fields.T
    cols.last[has] = last[has]
    cols.volume_base[has] = vol[has]
    cols.volume_quote[has] = vol[has] * vwap[has]
    cols.volume_hours[has] = 24.0
    book = has & (bid > 0) & (ask >= bid)
    mid = (ask + bid) / 2
    cols.spread[book] = (ask[book] - bid[book]) / mid[book]
    priced = book & ~np.isnan(cols.rate)
    size_quote = size / cols.rate[priced]
    ask_depth, bid_depth = ask[priced] * ask_vol[priced], bid[priced] * bid_vol[priced]
    cols.liquidity[priced] = np.minimum(1.0, np.minimum(ask_depth, bid_depth) / size_quote)
    cols.depth_usd[priced] = np.minimum(ask_depth, bid_depth) * cols.rate[priced]


def _candle_columns(chosen: Sequence[MarketInput], cols: _Columns, settings: ScanSettings) -> None:
    by_length: dict[int, list[int]] = {}
    keep = settings.max_candles
    for i, market in enumerate(chosen):
        candles = market.candles
        if candles is None or not len(candles):
            continue
        cols.candles[i] = min(len(candles), keep)
        by_length.setdefault(min(len(candles), keep), []).append(i)
        if market.ticker is None:
            _volume_from_candles(i, candles, cols)
    for length, rows in by_length.items():
        high = np.stack([_tail(chosen[i], "high", length) for i in rows])
        low = np.stack([_tail(chosen[i], "low", length) for i in rows])
        close = np.stack([_tail(chosen[i], "close", length) for i in rows])
        atr = wilder_atr_last(high, low, close, settings.atr_period)
        last = close[:, -1]
        atr_pct = np.full(len(rows), _NAN)
        np.divide(100.0 * atr, last, out=atr_pct, where=(last > 0) & ~np.isnan(atr))
        cols.atr_pct[rows] = atr_pct
        cols.trend[rows] = efficiency_ratio_last(close, settings.trend_period)


def _tail(market: MarketInput, column: str, length: int) -> Floats:
    candles = market.candles
    assert candles is not None
    values: Floats = getattr(candles, column)
    return values[-length:]


def _volume_from_candles(i: int, candles: CandleSeries, cols: _Columns) -> None:
    last_close = int(candles.close_ns[-1])
    recent = candles.close_ns > last_close - DAY_NS
    volume, close = candles.volume[recent], candles.close[recent]
    first_open = int(candles.close_ns[recent][0]) - candles.interval_s * 1_000_000_000
    cols.last[i] = float(candles.close[-1])
    cols.volume_base[i] = float(volume.sum())
    cols.volume_quote[i] = float((volume * close).sum())
    cols.volume_hours[i] = min(24.0, (last_close - first_open) / 3.6e12)


def _opt(value: float | np.floating | np.integer) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


def _missing(market: MarketInput, cols: _Columns, i: int, settings: ScanSettings) -> tuple[str, ...]:
    notes: list[str] = []
    if market.status is None:
        notes.append("catalogue: no catalogue knows this pair (base and quote told from its name)")
    ticker, candles = market.ticker, int(cols.candles[i])
    if ticker is None:
        notes.append("spread: no Ticker (no bid or ask in candle data)")
        notes.append("liquidity: no Ticker (no book in candle data)")
    elif math.isnan(cols.spread[i]):
        notes.append("spread: no two-sided book in the Ticker")
        notes.append("liquidity: no two-sided book in the Ticker")
    elif math.isnan(cols.rate[i]):
        notes.append(f"liquidity: no USD rate for {market.quote} (no {market.quote}/USD pair in the data)")
    if math.isnan(cols.volume_quote[i]):
        notes.append("volume: no Ticker and no candles")
    else:
        if math.isnan(cols.rate[i]):
            notes.append(f"volume in USD: no USD rate for {market.quote}")
        if cols.volume_hours[i] < 24.0 - 1e-9:
            notes.append(f"volume: only {cols.volume_hours[i]:.1f} h of candles, not 24 h")
    for metric, period in (("volatility", settings.atr_period), ("trend", settings.trend_period)):
        if candles == 0:
            notes.append(f"{metric}: no candles")
        elif candles < period + 1:
            notes.append(f"{metric}: needs {period + 1} candles, has {candles}")
    return tuple(notes)


def rank(
    markets: Sequence[MarketInput], settings: ScanSettings | None = None, rates: Mapping[str, float] | None = None
) -> Ranking:
    """Rank ``markets`` (see the module's docstring for every measure and the score).

    Pairs of other quotes are left out silently (``settings.quote``); pairs whose status is not ``online`` are
    listed in ``excluded`` with the reason. USD rates are ``rates``, else from all of ``markets`` whatever their
    quote (:func:`usd_rates`).
    """
    settings = settings or ScanSettings()
    rates = usd_rates(markets) if rates is None else rates
    chosen: list[MarketInput] = []
    excluded: list[Excluded] = []
    for market in markets:
        if settings.quote is not None and market.quote != settings.quote:
            continue
        if market.status is not None and market.status != "online":
            reason = f"catalogue status is {market.status!r}, not 'online' (Kraken restricts new orders on it)"
            excluded.append(Excluded(market.pair, market.base, market.quote, reason))
            continue
        chosen.append(market)
    count = len(chosen)
    cols = _Columns(count)
    _ticker_columns(chosen, cols, rates, settings.size_usd)
    _candle_columns(chosen, cols, settings)
    volume_usd = cols.volume_quote * cols.rate
    values: dict[Metric, Floats] = {
        "volume": cols.volume_quote if settings.quote is not None else volume_usd,
        "spread": cols.spread,
        "volatility": cols.atr_pct,
        "trend": cols.trend,
        "liquidity": cols.liquidity,
    }
    places = {m: percentiles(values[m], higher_is_better=HIGHER_IS_BETTER[m]) for m in METRICS}
    weighted, weight = np.zeros(count), np.zeros(count)
    total = sum(settings.weights.get(m, 0.0) for m in METRICS)
    for metric in METRICS:
        w = settings.weights.get(metric, 0.0)
        present = ~np.isnan(places[metric])
        weighted[present] += w * places[metric][present]
        weight[present] += w
    score = np.zeros(count)
    np.divide(weighted, weight, out=score, where=weight > 0)
    coverage = weight / total
    volume_key = np.where(np.isnan(values["volume"]), -np.inf, values["volume"])
    order = sorted(range(count), key=lambda i: (-score[i], -coverage[i], -volume_key[i], chosen[i].pair))
    ranked = []
    for place, i in enumerate(order, start=1):
        market = chosen[i]
        metrics = PairMetrics(
            last=_opt(cols.last[i]),
            volume_base_24h=_opt(cols.volume_base[i]),
            volume_quote_24h=_opt(cols.volume_quote[i]),
            volume_usd_24h=_opt(volume_usd[i]),
            volume_hours=_opt(cols.volume_hours[i]),
            usd_rate=_opt(cols.rate[i]),
            spread=_opt(cols.spread[i]),
            atr_pct=_opt(cols.atr_pct[i]),
            trend=_opt(cols.trend[i]),
            liquidity=_opt(cols.liquidity[i]),
            top_depth_usd=_opt(cols.depth_usd[i]),
            candles=int(cols.candles[i]),
        )
        ranked.append(
            RankedPair(
                rank=place,
                pair=market.pair,
                base=market.base,
                quote=market.quote,
                status=market.status,
                score=float(score[i]),
                coverage=float(coverage[i]),
                percentiles=MappingProxyType({m: _opt(places[m][i]) for m in METRICS}),
                metrics=metrics,
                missing=_missing(market, cols, i, settings),
            )
        )
    return Ranking(tuple(ranked), tuple(excluded), settings)


def rank_tiers(tiers: Sequence[Sequence[MarketInput]], settings: ScanSettings | None = None) -> Ranking:
    """Rank each tier on its own and list the tiers one after the other, ranks numbered through.

    A pair already listed by an earlier tier is left out of the later ones (after the later tier is ranked, so
    its percentiles are those of the whole tier). Kraken scans use two: the pairs that got candles, ranked on every
    metric, then every pair as ranked on the Ticker alone. USD rates come from all tiers together; each pair
    carries its ``tier`` (1, 2, ...), and its score is its tier's.
    """
    settings = settings or ScanSettings()
    rates = usd_rates([m for tier in tiers for m in tier])
    ranked: list[RankedPair] = []
    excluded: dict[str, Excluded] = {}
    seen: set[str] = set()
    for number, tier in enumerate(tiers, start=1):
        ranking = rank(tier, settings, rates)
        for gone in ranking.excluded:
            excluded.setdefault(gone.pair, gone)
        for pair in ranking.ranked:
            if pair.pair not in seen:
                seen.add(pair.pair)
                ranked.append(replace(pair, rank=len(ranked) + 1, tier=number))
    return Ranking(tuple(ranked), tuple(excluded.values()), settings)
