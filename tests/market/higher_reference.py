"""The plain higher-candle grouping the tests compare :mod:`engine.market.higher_candles` with."""

from collections.abc import Sequence
from decimal import Decimal

from engine.domain.market_data import NS_PER_SECOND, Candle

S = NS_PER_SECOND


def plain(candles: Sequence[Candle], period_s: int) -> list[Candle]:
    """The higher candles a feed of ``candles`` has closed by its last candle, the plain way: group by
    ``floor(ts / period)``, skip the period the feed starts inside, fill whole missing periods with the previous
    close (volume 0), and keep the last period only if the last candle closes it."""
    span = period_s * S
    first = -(-candles[0].ts_ns // span) * span
    groups: dict[int, list[Candle]] = {}
    for c in candles:
        if c.ts_ns >= first:
            groups.setdefault(c.ts_ns // span * span, []).append(c)
    if not groups:
        return []
    out: list[Candle] = []
    prev: Decimal | None = None
    starts = sorted(groups)
    for start in range(starts[0], starts[-1] + span, span):
        g = groups.get(start)
        if g is None:
            assert prev is not None
            out.append(Candle(candles[0].pair, start, period_s, prev, prev, prev, prev, Decimal(0), 0))
            continue
        out.append(
            Candle(
                candles[0].pair,
                start,
                period_s,
                g[0].open,
                max(c.high for c in g),
                min(c.low for c in g),
                g[-1].close,
                sum((c.volume for c in g), Decimal(0)),
                sum(c.trades for c in g),
            )
        )
        prev = g[-1].close
    if candles[-1].close_ns < starts[-1] + span:
        out.pop()  # still forming
    return out
