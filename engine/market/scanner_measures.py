"""The scanner's measures over many pairs at once (numpy, float64): Wilder ATR, the efficiency ratio, percentiles.

Every function takes a matrix with one row per pair (all rows of one length) or a vector with one value per pair,
and returns one value per pair; NaN means "cannot be told" (too few candles, a zero price). Signals only: nothing
here is money.

* :func:`wilder_atr_last`: the last value of TA-Lib's ATR (the one :class:`engine.market.wilder.ATR` computes one
  bar at a time): true range ``max(high, prev_close) − min(low, prev_close)``, seeded with the plain mean of the
  first ``n`` true ranges, then ``atr = (atr · (n − 1) + tr) / n``. Unrolled, the last value is
  ``seed · aᴷ + Σ (1/n) · a^(K−1−m) · tr[n+m]`` with ``a = (n − 1)/n`` and ``K`` the updates after the seed: one
  matrix-vector product for every pair instead of a Python loop per candle.
* :func:`efficiency_ratio_last`: Kaufman's efficiency ratio over the last ``n`` candles,
  ``|close[-1] − close[-1-n]| / Σ |close[i] − close[i-1]|``: 1 for a straight line, near 0 for noise, 0 when the
  price did not move at all.
* :func:`percentiles`: where each value stands among the others, 0 (worst) to 1 (best); equal values share the
  mean of their places.
"""

import numpy as np
from numpy.typing import NDArray

__all__ = ["Floats", "efficiency_ratio_last", "percentiles", "wilder_atr_last"]

Floats = NDArray[np.float64]


def wilder_atr_last(high: Floats, low: Floats, close: Floats, period: int) -> Floats:
    """The last Wilder ATR of each row (NaN for rows of fewer than ``period + 1`` candles).

    Args:
        high, low, close: one row per pair, one column per candle, oldest first; the same shape.
        period: the ATR period (14 is Wilder's).
    """
    rows, length = close.shape
    if length < period + 1:
        return np.full(rows, np.nan)
    prev = close[:, :-1]
    true_range = np.maximum(high[:, 1:], prev) - np.minimum(low[:, 1:], prev)
    seed = true_range[:, :period].mean(axis=1)
    updates = length - 1 - period
    decay = (period - 1) / period
    weights = (1.0 / period) * decay ** np.arange(updates - 1, -1, -1, dtype=np.float64)
    result: Floats = seed * decay**updates + true_range[:, period:] @ weights
    return result


def efficiency_ratio_last(close: Floats, period: int) -> Floats:
    """Kaufman's efficiency ratio of the last ``period`` candles of each row (NaN for rows that are too short)."""
    rows, length = close.shape
    if length < period + 1:
        return np.full(rows, np.nan)
    window = close[:, -(period + 1) :]
    path = np.abs(np.diff(window, axis=1)).sum(axis=1)
    net = np.abs(window[:, -1] - window[:, 0])
    ratio = np.zeros(rows)
    np.divide(net, path, out=ratio, where=path > 0)
    return ratio


def percentiles(values: Floats, *, higher_is_better: bool) -> Floats:
    """Each value's place among the values present, as a fraction: 0 for the worst, 1 for the best.

    A value's place is its 0-based rank among the ``m`` values that are not NaN, divided by ``m − 1``; equal
    values share the mean of their ranks. A lone value gets 0.5 (no better or worse than anything). NaN stays NaN.
    """
    out = np.full(values.shape, np.nan)
    present = ~np.isnan(values)
    chosen = values[present] if higher_is_better else -values[present]
    count = chosen.size
    if count == 0:
        return out
    if count == 1:
        out[present] = 0.5
        return out
    order = np.argsort(chosen, kind="stable")
    ranks = np.empty(count)
    ranks[order] = np.arange(count, dtype=np.float64)
    _, group, sizes = np.unique(chosen, return_inverse=True, return_counts=True)
    shared = np.bincount(group, weights=ranks) / sizes
    out[present] = shared[group] / (count - 1)
    return out
