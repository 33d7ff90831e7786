"""The scanner ranks a fixed set of tickers and candles exactly as computed by hand here.

Every expected number below is worked out in the comments with plain arithmetic (none of it calls the scanner):
true ranges, Wilder's ATR, the efficiency ratio, spreads, depths, percentiles and weighted scores.
"""

from typing import Any

import numpy as np
import pytest

from engine.market.scanner import WEIGHTS, CandleSeries, MarketInput, RankedPair, ScanSettings, rank, rank_tiers
from engine.market.scanner_inputs import ticker_stats

HOUR_NS = 3600 * 1_000_000_000
SETTINGS = ScanSettings(quote="USD", size_usd=1000.0, atr_period=3, trend_period=4)


def entry(ask: str, ask_lots: str, bid: str, bid_lots: str, volume_24h: str, vwap_24h: str) -> dict[str, Any]:
    """A Ticker entry in Kraken's format (numbers as text); today's figures differ from the 24 h ones on purpose."""
    return {
        "a": [ask, "1", ask_lots],
        "b": [bid, "1", bid_lots],
        "c": [ask, "0.5"],
        "v": ["1", volume_24h],
        "p": ["999", vwap_24h],
        "t": [3, 77],
        "l": ["0.1", "0.2"],
        "h": ["1000", "1001"],
        "o": "1.5",
    }


def market(pair: str, status: str | None, *ticker: str) -> MarketInput:
    base, quote = pair.split("/")
    return MarketInput(pair, base, quote, status, ticker_stats(entry(*ticker)))


def candles(rows: list[tuple[float, float, float]]) -> CandleSeries:
    """Hourly candles (high, low, close), the first closing at hour 1."""
    count = len(rows)
    high, low, close = (np.array(column, dtype=np.float64) for column in zip(*rows, strict=True))
    return CandleSeries(3600, np.arange(1, count + 1, dtype=np.int64) * HOUR_NS, high, low, close, np.ones(count))


# AAA: true ranges of bars 1..5: max(10.5, 9.5) - min(9.4, 9.5) = 1.1; max(10.4, 10.2) - min(9.8, 10.2) = 0.6;
# max(11.0, 10.0) - min(10.1, 10.0) = 1.0; max(11.2, 10.9) - min(10.6, 10.9) = 0.6; max(12, 11) - min(11, 11) = 1.0.
# ATR(3): seed (1.1 + 0.6 + 1.0) / 3 = 0.9; (0.9·2 + 0.6) / 3 = 0.8; (0.8·2 + 1.0) / 3 = 2.6/3.
# ATR % = (2.6/3) / 11.8 · 100. ER(4) over closes 10.2, 10.0, 10.9, 11.0, 11.8: |11.8 - 10.2| / (0.2+0.9+0.1+0.8) = 0.8.
AAA_CANDLES = [(10.0, 9.0, 9.5), (10.5, 9.4, 10.2), (10.4, 9.8, 10.0), (11.0, 10.1, 10.9), (11.2, 10.6, 11.0)]
AAA_CANDLES.append((12.0, 11.0, 11.8))
# BBB: true ranges 0.6, 0.6, 0.5, 0.3, 0.4; seed 1.7/3; (1.7/3·2 + 0.3)/3 = 4.3/9; (4.3/9·2 + 0.4)/3 = 12.2/27.
# ATR % = (12.2/27) / 20.0 · 100. ER(4) over 20.2, 19.9, 20.0, 20.1, 20.0: 0.2 / (0.3+0.1+0.1+0.1) = 1/3.
BBB_CANDLES = [(20.5, 19.5, 20.0), (20.4, 19.8, 20.2), (20.3, 19.7, 19.9), (20.1, 19.6, 20.0), (20.2, 19.9, 20.1)]
BBB_CANDLES.append((20.3, 19.9, 20.0))
# DDD: true ranges 0.5, 0.3, 0.6, 0.6, 0.7; seed 1.4/3; (1.4/3·2 + 0.6)/3 = 4.6/9; (4.6/9·2 + 0.7)/3 = 15.5/27.
# ATR % = (15.5/27) / 4.0 · 100. ER(4) over 5.4, 5.5, 5.0, 4.6, 4.0: 1.4 / (0.1+0.5+0.4+0.6) = 0.875.
DDD_CANDLES = [(5.2, 4.8, 5.0), (5.5, 5.0, 5.4), (5.6, 5.3, 5.5), (5.5, 4.9, 5.0), (5.1, 4.5, 4.6), (4.7, 4.0, 4.0)]

USD_MARKETS = [
    # spread 0.2 / 11.8; depth ask 11.9·100 = 1190, bid 11.7·50 = 585 -> fills 585/1000; volume 10000·11.5 = 115000
    market("AAA/USD", "online", "11.9", "100", "11.7", "50", "10000", "11.5"),
    # spread 0.04 / 20; depth 2002 and 1998 -> fills all; volume 30000·20 = 600000
    market("BBB/USD", "online", "20.02", "100", "19.98", "100", "30000", "20"),
    # spread 0.02 / 0.5; depth 5100 and 4900 -> fills all; volume 100000·0.5 = 50000; no candles
    market("CCC/USD", "online", "0.51", "10000", "0.49", "10000", "100000", "0.5"),
    # no bid: no spread, no liquidity; volume 1000·5 = 5000
    market("DDD/USD", "online", "5", "10", "0", "0", "1000", "5"),
    market("EEE/USD", "cancel_only", "1", "1", "0.9", "1", "1", "1"),
    market("FFF/EUR", "online", "2.02", "100", "1.98", "100", "50000", "2"),
]


def with_candles(m: MarketInput, rows: list[tuple[float, float, float]]) -> MarketInput:
    return MarketInput(m.pair, m.base, m.quote, m.status, m.ticker, candles(rows))


def by_pair(ranked: tuple[RankedPair, ...]) -> dict[str, RankedPair]:
    return {r.pair: r for r in ranked}


def test_a_fixed_set_of_usd_pairs_ranks_and_measures_as_computed_by_hand() -> None:
    aaa, bbb, ccc, ddd, eee, fff = USD_MARKETS
    markets = [with_candles(aaa, AAA_CANDLES), with_candles(bbb, BBB_CANDLES), ccc, with_candles(ddd, DDD_CANDLES)]
    ranking = rank([*markets, eee, fff], SETTINGS)

    # Percentiles among the pairs that have each metric (0 worst, 1 best; ties share the mean of their places):
    #   volume      DDD 5000 < CCC 50000 < AAA 115000 < BBB 600000      -> 0, 1/3, 2/3, 1
    #   spread      CCC 0.04 > AAA 0.01695 > BBB 0.002 (lower is better) -> 0, 1/2, 1 (DDD has none)
    #   volatility  BBB 2.26 < AAA 7.34 < DDD 14.35                      -> 0, 1/2, 1 (CCC has no candles)
    #   trend       BBB 1/3 < AAA 0.8 < DDD 0.875                        -> 0, 1/2, 1
    #   liquidity   AAA 0.585 < BBB 1 = CCC 1                            -> 0, (1+2)/2/2 = 0.75, 0.75
    # Scores (weights 0.30 volume, 0.25 spread, 0.15 volatility, 0.15 trend, 0.15 liquidity, over those present):
    #   BBB 0.30·1 + 0.25·1 + 0 + 0 + 0.15·0.75 = 0.6625
    #   DDD (0.30·0 + 0.15·1 + 0.15·1) / 0.60 = 0.5
    #   AAA 0.30·2/3 + 0.25·0.5 + 0.15·0.5 + 0.15·0.5 + 0.15·0 = 0.475
    #   CCC (0.30·1/3 + 0.25·0 + 0.15·0.75) / 0.70 = 0.2125 / 0.7
    assert [r.pair for r in ranking.ranked] == ["BBB/USD", "DDD/USD", "AAA/USD", "CCC/USD"]
    assert [r.rank for r in ranking.ranked] == [1, 2, 3, 4]
    got = by_pair(ranking.ranked)
    expected_scores = {"BBB/USD": 0.6625, "DDD/USD": 0.5, "AAA/USD": 0.475, "CCC/USD": 0.2125 / 0.7}
    assert {p: r.score for p, r in got.items()} == pytest.approx(expected_scores, rel=1e-12)
    assert {p: r.coverage for p, r in got.items()} == pytest.approx(
        {"BBB/USD": 1.0, "DDD/USD": 0.6, "AAA/USD": 1.0, "CCC/USD": 0.7}, rel=1e-12
    )
    assert dict(got["AAA/USD"].percentiles) == pytest.approx(
        {"volume": 2 / 3, "spread": 0.5, "volatility": 0.5, "trend": 0.5, "liquidity": 0.0}
    )
    assert dict(got["CCC/USD"].percentiles) == {
        "volume": pytest.approx(1 / 3),
        "spread": 0.0,
        "volatility": None,
        "trend": None,
        "liquidity": 0.75,
    }

    a, b, c, d = (got[p].metrics for p in ("AAA/USD", "BBB/USD", "CCC/USD", "DDD/USD"))
    assert (a.volume_base_24h, a.volume_quote_24h, a.volume_usd_24h) == pytest.approx((10000, 115000, 115000))
    assert (a.spread, b.spread, c.spread) == pytest.approx((0.2 / 11.8, 0.002, 0.04))
    assert a.liquidity == pytest.approx(0.585) and b.liquidity == 1.0 and c.liquidity == 1.0
    assert (a.top_depth_usd, b.top_depth_usd, c.top_depth_usd) == pytest.approx((585, 1998, 4900))
    assert a.atr_pct == pytest.approx(2.6 / 3 / 11.8 * 100, rel=1e-12)
    assert b.atr_pct == pytest.approx(12.2 / 27 / 20.0 * 100, rel=1e-12)
    assert d.atr_pct == pytest.approx(15.5 / 27 / 4.0 * 100, rel=1e-12)
    assert (a.trend, b.trend, d.trend) == pytest.approx((0.8, 1 / 3, 0.875), rel=1e-12)
    assert (a.candles, b.candles, c.candles, d.candles) == (6, 6, 0, 6)
    assert d.spread is None and d.liquidity is None and c.atr_pct is None and c.trend is None
    assert a.last == 11.9 and a.usd_rate == 1.0

    assert got["AAA/USD"].missing == () and got["BBB/USD"].missing == ()
    assert got["CCC/USD"].missing == ("volatility: no candles", "trend: no candles")
    assert got["DDD/USD"].missing == (
        "spread: no two-sided book in the Ticker",
        "liquidity: no two-sided book in the Ticker",
    )
    (excluded,) = ranking.excluded
    assert excluded.pair == "EEE/USD" and "cancel_only" in excluded.reason and "online" in excluded.reason


def test_across_quotes_volume_and_size_are_converted_to_usd_by_hand() -> None:
    bbb, fff = USD_MARKETS[1], USD_MARKETS[5]
    eur = market("EUR/USD", "online", "1.11", "1000", "1.09", "1000", "1000000", "1.1")
    ggg = market("GGG/JPY", "online", "102", "10", "98", "10", "10000", "100")
    ranking = rank([bbb, eur, fff, ggg], ScanSettings(quote=None, size_usd=1000.0))

    # EUR is worth the mid of EUR/USD, (1.11 + 1.09) / 2 = 1.10 USD; JPY has no USD pair here.
    #   volume USD  EUR/USD 1e6·1.1 = 1100000; BBB 600000; FFF 50000·2 = 100000 EUR · 1.1 = 110000; GGG unknown
    #   spread      BBB 0.04/20 = 0.002; EUR/USD 0.02/1.1 = 0.01818; FFF 0.04/2 = 0.02; GGG 4/100 = 0.04
    #   liquidity   1000 USD = 1000/1.1 EUR; FFF best bid 1.98·100 = 198 EUR -> 198·1.1/1000 = 0.2178;
    #               EUR/USD min(1110, 1090) >= 1000 -> 1; BBB 1; GGG unknown (no rate)
    # Percentiles: volume FFF 0, BBB 1/2, EUR 1; spread GGG 0, FFF 1/3, EUR 2/3, BBB 1; liquidity FFF 0, 0.75, 0.75.
    # Scores over volume 0.30, spread 0.25, liquidity 0.15 (no candles at all):
    #   EUR (0.30·1 + 0.25·2/3 + 0.15·0.75) / 0.70 = (0.4125 + 0.5/3) / 0.7 = 0.827...
    #   BBB (0.30·0.5 + 0.25·1 + 0.15·0.75) / 0.70 = 0.5125 / 0.7 = 0.732...
    #   FFF (0 + 0.25·1/3 + 0) / 0.70;  GGG 0.25·0 / 0.25 = 0
    assert [r.pair for r in ranking.ranked] == ["EUR/USD", "BBB/USD", "FFF/EUR", "GGG/JPY"]
    got = by_pair(ranking.ranked)
    assert [got[p].score for p in ("EUR/USD", "BBB/USD", "FFF/EUR", "GGG/JPY")] == pytest.approx(
        [(0.4125 + 0.5 / 3) / 0.7, 0.5125 / 0.7, 0.25 / 3 / 0.7, 0.0], rel=1e-12
    )
    f, g = got["FFF/EUR"].metrics, got["GGG/JPY"].metrics
    assert (f.usd_rate, f.volume_quote_24h, f.volume_usd_24h) == pytest.approx((1.1, 100000, 110000), rel=1e-12)
    assert f.liquidity == pytest.approx(198 * 1.1 / 1000, rel=1e-12)
    assert f.top_depth_usd == pytest.approx(198 * 1.1, rel=1e-12) and f.spread == pytest.approx(0.02)
    assert g.usd_rate is None and g.volume_usd_24h is None and g.liquidity is None
    assert g.volume_quote_24h == pytest.approx(1_000_000) and g.spread == pytest.approx(0.04)
    assert got["GGG/JPY"].missing == (
        "liquidity: no USD rate for JPY (no JPY/USD pair in the data)",
        "volume in USD: no USD rate for JPY",
        "volatility: no candles",
        "trend: no candles",
    )
    assert got["GGG/JPY"].coverage == pytest.approx(0.25)


def test_candles_alone_give_volume_of_the_last_24_hours_and_no_spread() -> None:
    # 30 hourly candles closing at hours 1..30: close 100 + k, volume k (k = 1..30). The last 24 h are the candles
    # closing after hour 6, k = 7..30: base volume Σk = (7+30)·24/2 = 444; quote Σ k·(100 + k) = 100·444 + Σk².
    count = 30
    ks = np.arange(1, count + 1, dtype=np.float64)
    series = CandleSeries(3600, np.arange(1, count + 1, dtype=np.int64) * HOUR_NS, ks + 101, ks + 99, ks + 100, ks)
    squares = sum(k * k for k in range(7, 31))
    short = CandleSeries(3600, np.array([1, 2], dtype=np.int64) * HOUR_NS, *(np.array([1.0, 2.0]) for _ in range(4)))
    ranking = rank(
        [
            MarketInput("HHH/USD", "HHH", "USD", "online", None, series),
            MarketInput("III/USD", "III", "USD", None, None, short),
        ],
        SETTINGS,
    )
    got = by_pair(ranking.ranked)
    h = got["HHH/USD"].metrics
    assert (h.volume_base_24h, h.volume_quote_24h, h.volume_hours) == (444, 100 * 444 + squares, 24.0)
    assert h.last == 130 and h.spread is None and h.liquidity is None
    # Every candle's true range is 2 (high - low, the previous close inside): ATR 2, ATR % = 2 / 130 · 100;
    # the closes rise by 1 each hour: the efficiency ratio is 1.
    assert h.atr_pct == pytest.approx(200 / 130, rel=1e-12) and h.trend == pytest.approx(1.0)
    assert "spread: no Ticker (no bid or ask in candle data)" in got["HHH/USD"].missing
    i = got["III/USD"]
    # Two candles: 2 h of volume (1 + 2 base, 1·1 + 2·2 quote); too few for ATR(3) or ER(4).
    assert (i.metrics.volume_base_24h, i.metrics.volume_quote_24h, i.metrics.volume_hours) == (3, 5, 2.0)
    assert i.missing[0].startswith("catalogue: no catalogue knows this pair")
    assert "volume: only 2.0 h of candles, not 24 h" in i.missing
    assert "volatility: needs 4 candles, has 2" in i.missing and "trend: needs 5 candles, has 2" in i.missing


def test_tiers_rank_the_pairs_with_candles_first_then_the_rest_as_ranked_without() -> None:
    aaa, bbb, ccc, ddd, eee, _ = USD_MARKETS
    first = [with_candles(aaa, AAA_CANDLES), with_candles(ddd, DDD_CANDLES)]
    ranking = rank_tiers([first, [aaa, bbb, ccc, ddd, eee]], SETTINGS)
    # Tier 1, AAA and DDD alone: volume AAA 1, DDD 0; spread AAA alone 0.5; volatility and trend DDD 1, AAA 0;
    # liquidity AAA alone 0.5. AAA 0.30·1 + 0.25·0.5 + 0.15·0.5 = 0.5 (coverage 1); DDD (0.15 + 0.15) / 0.60 = 0.5
    # (coverage 0.6): equal scores, the higher coverage first.
    # Tier 2, all four on the Ticker alone: volume DDD 0, CCC 1/3, AAA 2/3, BBB 1; spread CCC 0, AAA 1/2, BBB 1;
    # liquidity AAA 0, BBB 0.75, CCC 0.75. BBB (0.30 + 0.25 + 0.1125) / 0.7; CCC (0.1 + 0.1125) / 0.7; AAA and
    # DDD are already listed.
    assert [(r.rank, r.pair, r.tier) for r in ranking.ranked] == [
        (1, "AAA/USD", 1),
        (2, "DDD/USD", 1),
        (3, "BBB/USD", 2),
        (4, "CCC/USD", 2),
    ]
    assert [r.score for r in ranking.ranked] == pytest.approx([0.5, 0.5, 0.6625 / 0.7, 0.2125 / 0.7], rel=1e-12)
    assert [r.metrics.candles for r in ranking.ranked] == [6, 6, 0, 0]
    assert [e.pair for e in ranking.excluded] == ["EEE/USD"]


def test_the_weights_are_one_documented_set_that_sums_to_one() -> None:
    assert set(WEIGHTS) == {"volume", "spread", "volatility", "trend", "liquidity"}
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
