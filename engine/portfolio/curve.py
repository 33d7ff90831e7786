"""The equity curve, kept as two parallel lists: appending is on the hot path (once per candle)."""

from decimal import Decimal

from engine.portfolio.curve_compaction import compact
from engine.portfolio.equity import EquityPoint

__all__ = ["EquityCurve"]


class EquityCurve:
    """Timestamps and equity values; :meth:`points` builds validated :class:`EquityPoint` objects when asked."""

    __slots__ = ("_cache", "equity", "ts_ns")

    def __init__(self) -> None:
        self.ts_ns: list[int] = []
        self.equity: list[Decimal] = []
        self._cache: list[EquityPoint] | None = None

    def append(self, ts_ns: int, equity: Decimal) -> None:
        self.ts_ns.append(ts_ns)
        self.equity.append(equity)
        self._cache = None

    def extend(self, rows: list[tuple[int, Decimal]]) -> None:
        for ts, value in rows:
            self.append(ts, value)

    def __len__(self) -> int:
        return len(self.ts_ns)

    def __getitem__(self, index: int) -> EquityPoint:
        return EquityPoint(self.ts_ns[index], self.equity[index])

    def points(self) -> list[EquityPoint]:
        # Appends may also go straight to the two lists (the hot loop does), so the cache checks the length.
        if self._cache is None or len(self._cache) != len(self.ts_ns):
            self._cache = [EquityPoint(ts, eq) for ts, eq in zip(self.ts_ns, self.equity, strict=True)]
        return self._cache

    def rows(self) -> list[tuple[int, Decimal]]:
        return list(zip(self.ts_ns, self.equity, strict=True))

    def compact(self) -> bool:
        """Thin the complete days of the curve to the few points every figure computed from it needs (see
        :mod:`engine.portfolio.curve_compaction`: the reports are unchanged); return whether anything went."""
        thinned = compact(self.ts_ns, self.equity)
        if thinned is None:
            return False
        # In place: the run loop holds the two lists.
        self.ts_ns[:], self.equity[:] = thinned
        self._cache = None
        return True
