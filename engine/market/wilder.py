"""Indicators built on Wilder's smoothing, computed as TA-Lib computes them: RSI and ATR.

Wilder's smoothing is ``avg = (avg · (n − 1) + x) / n``, seeded with the plain average of the first ``n``
inputs. Both indicators need a previous value before their first input exists (a change for RSI, a previous
close for ATR), so the first output comes after ``n + 1`` updates — TA-Lib's lookback of ``n``.
"""

from decimal import Decimal

from engine.market.indicators import check_period

__all__ = ["ATR", "RSI"]

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


class RSI:
    """Relative strength index with Wilder smoothing (TA-Lib's RSI, default compatibility).

    ``RSI = 100 · avg_gain / (avg_gain + avg_loss)``, which equals ``100 − 100 / (1 + RS)``. When the window
    has neither gains nor losses the output is 0, as TA-Lib returns.
    """

    __slots__ = ("_count", "_dn", "_dn1", "_gain", "_loss", "_n", "_prev", "value")

    def __init__(self, period: int = 14) -> None:
        self._n = check_period(period)
        self._dn = Decimal(period)
        self._dn1 = Decimal(period - 1)
        self._prev: Decimal | None = None
        self._count = 0
        self._gain = _ZERO
        self._loss = _ZERO
        self.value: Decimal | None = None

    @property
    def period(self) -> int:
        return self._n

    @property
    def ready(self) -> bool:
        return self.value is not None

    @property
    def avg_gain(self) -> Decimal | None:
        return self._gain if self.value is not None else None

    @property
    def avg_loss(self) -> Decimal | None:
        return self._loss if self.value is not None else None

    def update(self, value: Decimal) -> Decimal | None:
        prev = self._prev
        self._prev = value
        if prev is None:
            return None
        change = value - prev
        if self.value is not None:
            gain = self._gain * self._dn1
            loss = self._loss * self._dn1
            if change < 0:
                loss -= change
            else:
                gain += change
            gain /= self._dn
            loss /= self._dn
        else:
            # Warm-up: accumulate raw sums over the first n changes, average them once.
            if change < 0:
                self._loss -= change
            else:
                self._gain += change
            self._count += 1
            if self._count < self._n:
                return None
            gain = self._gain / self._dn
            loss = self._loss / self._dn
        self._gain = gain
        self._loss = loss
        total = gain + loss
        result = _HUNDRED * (gain / total) if total else _ZERO
        self.value = result
        return result


class ATR:
    """Average true range with Wilder smoothing (TA-Lib's ATR). Fed bars via :meth:`update_bar`.

    True range is ``max(high, prev_close) − min(low, prev_close)``: the largest of high − low,
    |high − prev_close| and |low − prev_close|. The first bar only provides a previous close, so the first
    output (the average of the first ``period`` true ranges) comes at bar ``period + 1``.
    """

    __slots__ = ("_count", "_dn", "_dn1", "_n", "_prev_close", "_sum", "true_range", "value")

    def __init__(self, period: int = 14) -> None:
        self._n = check_period(period)
        self._dn = Decimal(period)
        self._dn1 = Decimal(period - 1)
        self._prev_close: Decimal | None = None
        self._count = 0
        self._sum = _ZERO
        self.true_range: Decimal | None = None
        self.value: Decimal | None = None

    @property
    def period(self) -> int:
        return self._n

    @property
    def ready(self) -> bool:
        return self.value is not None

    def update_bar(self, high: Decimal, low: Decimal, close: Decimal) -> Decimal | None:
        """Feed one bar; return the new ATR or ``None`` while warming up."""
        prev_close = self._prev_close
        self._prev_close = close
        if prev_close is None:
            return None
        top = high if high > prev_close else prev_close
        bottom = low if low < prev_close else prev_close
        true_range = top - bottom
        self.true_range = true_range
        atr = self.value
        if atr is not None:
            atr = (atr * self._dn1 + true_range) / self._dn
        else:
            self._sum += true_range
            self._count += 1
            if self._count < self._n:
                return None
            atr = self._sum / self._dn
        self.value = atr
        return atr
