"""Incremental moving-window indicators: SMA, EMA, rolling standard deviation and Bollinger bands.

Every indicator takes one value per ``update`` in O(1) and answers with its new value, or ``None`` while it
is still warming up. Arithmetic is :class:`decimal.Decimal` in the caller's current context (28 significant
digits by default). Sums are kept running rather than recomputed; with the usual exchange prices (a dozen
significant digits) every addition and subtraction is exact, so the running sums never drift. Inputs with more
digits than the context holds are rounded at each step, as any Decimal arithmetic would be.

These objects sit on the backtest hot path, so they use ``__slots__``, precompute their Decimal constants and
expose their results as plain attributes (``value`` and friends) that callers must treat as read-only.

Exceptions::

    ValueError
     └── IndicatorError    a parameter is invalid (period < 1, negative band width); fix the caller
"""

from collections import deque
from decimal import Decimal
from typing import Protocol

__all__ = [
    "EMA",
    "SMA",
    "Bollinger",
    "EMASpread",
    "Indicator",
    "IndicatorError",
    "StdDev",
    "check_period",
    "zscore",
]

_ZERO = Decimal(0)


class IndicatorError(ValueError):
    """An indicator was built with an invalid parameter."""


class Indicator(Protocol):
    """What every single-input indicator offers (:class:`~engine.market.wilder.ATR` takes bars instead)."""

    @property
    def value(self) -> Decimal | None:
        """The latest output, ``None`` until warmed up."""
        ...

    @property
    def ready(self) -> bool:
        """Whether the indicator has produced an output yet."""
        ...

    @property
    def period(self) -> int:
        """The look-back length."""
        ...

    def update(self, value: Decimal) -> Decimal | None:
        """Feed one input; return the new output or ``None`` while warming up."""
        ...


def check_period(period: int) -> int:
    """Return ``period`` if it is an int of at least 1.

    Raises:
        IndicatorError: otherwise.
    """
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise IndicatorError(f"period must be an int >= 1, got {period!r}")
    return period


def zscore(value: Decimal, mean: Decimal, stdev: Decimal) -> Decimal | None:
    """How many standard deviations ``value`` lies from ``mean``; ``None`` when ``stdev`` is zero."""
    if not stdev:
        return None
    return (value - mean) / stdev


class SMA:
    """Simple moving average of the last ``period`` values (first output at the ``period``-th value)."""

    __slots__ = ("_dn", "_n", "_sum", "_window", "value")

    def __init__(self, period: int) -> None:
        self._n = check_period(period)
        self._dn = Decimal(period)
        self._window: deque[Decimal] = deque(maxlen=period)
        self._sum = _ZERO
        self.value: Decimal | None = None

    @property
    def period(self) -> int:
        return self._n

    @property
    def ready(self) -> bool:
        return self.value is not None

    def update(self, value: Decimal) -> Decimal | None:
        window = self._window
        if len(window) == self._n:
            # The deque drops window[0] on append; take it out of the sum first.
            self._sum += value - window[0]
            window.append(value)
        else:
            self._sum += value
            window.append(value)
            if len(window) < self._n:
                return None
        result = self._sum / self._dn
        self.value = result
        return result


class EMA:
    """Exponential moving average seeded the way TA-Lib seeds it.

    ``alpha = 2 / (period + 1)``. The first output comes at the ``period``-th value and is the simple average
    of the first ``period`` values; after that ``ema += alpha * (value - ema)`` (TA-Lib's operation order).
    """

    __slots__ = ("_alpha", "_count", "_dn", "_n", "_seed_sum", "value")

    def __init__(self, period: int) -> None:
        self._n = check_period(period)
        self._dn = Decimal(period)
        self._alpha = Decimal(2) / Decimal(period + 1)
        self._count = 0
        self._seed_sum = _ZERO
        self.value: Decimal | None = None

    @property
    def period(self) -> int:
        return self._n

    @property
    def alpha(self) -> Decimal:
        return self._alpha

    @property
    def ready(self) -> bool:
        return self.value is not None

    def update(self, value: Decimal) -> Decimal | None:
        ema = self.value
        if ema is not None:
            ema = (value - ema) * self._alpha + ema
            self.value = ema
            return ema
        self._seed_sum += value
        self._count += 1
        if self._count < self._n:
            return None
        ema = self._seed_sum / self._dn
        self.value = ema
        return ema


class EMASpread:
    """``EMA(fast) - EMA(slow)`` of the same input, both updated by one call (crossover strategies).

    Each average is exactly what an :class:`EMA` of its period gives (same seeding, same operation order), and
    ``value`` is their difference once both are warmed up. One call and no per-average method dispatch: this is
    the hot path of an EMA-crossover backtest. ``fast`` and ``slow`` hold the two averages (``None`` while
    warming up).
    """

    __slots__ = ("_fast_alpha", "_fast_seed", "_slow_alpha", "_slow_seed", "fast", "slow", "value")

    def __init__(self, fast: int, slow: int) -> None:
        self._fast_seed = EMA(fast)
        self._slow_seed = EMA(slow)
        self._fast_alpha = self._fast_seed.alpha
        self._slow_alpha = self._slow_seed.alpha
        self.fast: Decimal | None = None
        self.slow: Decimal | None = None
        self.value: Decimal | None = None

    @property
    def periods(self) -> tuple[int, int]:
        return self._fast_seed.period, self._slow_seed.period

    @property
    def ready(self) -> bool:
        return self.value is not None

    def update(self, value: Decimal) -> Decimal | None:
        fast = self.fast
        slow = self.slow
        if fast is not None and slow is not None:
            # EMA.update's arithmetic, in its order, for both averages.
            fast = (value - fast) * self._fast_alpha + fast
            slow = (value - slow) * self._slow_alpha + slow
            self.fast = fast
            self.slow = slow
            spread = fast - slow
            self.value = spread
            return spread
        # Warming up: the EMA objects seed each average with the simple mean of its first ``period`` values.
        fast = self.fast = self._fast_seed.update(value)
        slow = self.slow = self._slow_seed.update(value)
        if fast is None or slow is None:
            return None
        spread = fast - slow
        self.value = spread
        return spread


class StdDev:
    """Rolling population standard deviation (divisor ``period``) of the last ``period`` values.

    Kept as a running sum and sum of squares: ``stdev = sqrt(n·Σx² − (Σx)²) / n`` with ``Decimal.sqrt()``,
    and zero when rounding would make the radicand negative. ``value`` is the standard deviation and ``mean``
    the window's average. ``Decimal.sqrt()`` dominates the cost (about 1.5 µs of an update's 3 µs).
    """

    __slots__ = ("_dn", "_n", "_sum", "_sumsq", "_window", "mean", "value")

    def __init__(self, period: int) -> None:
        self._n = check_period(period)
        self._dn = Decimal(period)
        self._window: deque[Decimal] = deque(maxlen=period)
        self._sum = _ZERO
        self._sumsq = _ZERO
        self.mean: Decimal | None = None
        self.value: Decimal | None = None

    @property
    def period(self) -> int:
        return self._n

    @property
    def ready(self) -> bool:
        return self.value is not None

    def update(self, value: Decimal) -> Decimal | None:
        window = self._window
        if len(window) == self._n:
            old = window[0]
            self._sum += value - old
            self._sumsq += value * value - old * old
            window.append(value)
        else:
            self._sum += value
            self._sumsq += value * value
            window.append(value)
            if len(window) < self._n:
                return None
        total = self._sum
        dn = self._dn
        self.mean = total / dn
        # n²·variance = n·Σx² − (Σx)², exact for ordinary prices; one sqrt and one division instead of two.
        scaled = dn * self._sumsq - total * total
        stdev = scaled.sqrt() / dn if scaled > _ZERO else _ZERO
        self.value = stdev
        return stdev

    def zscore(self, value: Decimal) -> Decimal | None:
        """``(value - mean) / stdev`` against the current window; ``None`` before ready or when stdev is 0."""
        if self.mean is None or self.value is None:
            return None
        return zscore(value, self.mean, self.value)


class Bollinger:
    """Bollinger bands: middle = SMA(period), upper/lower = middle ± k · population standard deviation.

    The deviation divides by ``period`` (not ``period - 1``), as Bollinger and TA-Lib's BBANDS do. ``update``
    returns (and ``value`` holds) the middle band; ``upper``, ``lower`` and ``stdev`` are attributes. The running
    mean and deviation are a :class:`StdDev`'s.
    """

    __slots__ = ("_dev", "_k", "lower", "stdev", "upper", "value")

    def __init__(self, period: int = 20, k: Decimal | int = 2) -> None:
        k_dec = Decimal(k)
        if not k_dec.is_finite() or k_dec < 0:
            raise IndicatorError(f"k must be a finite number >= 0, got {k!r}")
        self._dev = StdDev(period)
        self._k = k_dec
        self.value: Decimal | None = None
        self.upper: Decimal | None = None
        self.lower: Decimal | None = None
        self.stdev: Decimal | None = None

    @property
    def period(self) -> int:
        return self._dev.period

    @property
    def k(self) -> Decimal:
        return self._k

    @property
    def ready(self) -> bool:
        return self.value is not None

    @property
    def middle(self) -> Decimal | None:
        return self.value

    def update(self, value: Decimal) -> Decimal | None:
        dev = self._dev
        stdev = dev.update(value)
        middle = dev.mean
        if stdev is None or middle is None:
            return None
        width = self._k * stdev
        self.value = middle
        self.stdev = stdev
        self.upper = middle + width
        self.lower = middle - width
        return middle

    def zscore(self, value: Decimal) -> Decimal | None:
        """``(value - middle) / stdev``; ``None`` before ready or when the window is flat."""
        if self.value is None or self.stdev is None:
            return None
        return zscore(value, self.value, self.stdev)
