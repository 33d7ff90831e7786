"""The simulated account's 30-day trade volume, which picks its fee tier as Kraken's does.

Kraken counts an account's trade volume over the last 30 days in USD and charges the tier that volume reaches
(engine/domain/fee_schedule.py). The simulated venue does the same with its own fills: each fill adds its cost,
and a fill pays the rate of the tier reached by the volume of the 30 days before it. Counted are the fills of
pairs quoted in USD and in the USD stablecoins Kraken values at par here (USDT, USDC); a pair quoted in another
asset (ETH/BTC, anything in EUR) adds nothing, so the tier is never better than Kraken's would be. Because the
volume is a function of the fills alone, a restart rebuilds it exactly from the stored fills.
"""

from collections import deque
from decimal import Decimal

from engine.domain.money import ZERO

__all__ = ["COUNTED_QUOTES", "WINDOW_NS", "FeeVolume"]

WINDOW_NS = 30 * 24 * 3600 * 10**9
COUNTED_QUOTES = frozenset({"USD", "USDT", "USDC"})


class FeeVolume:
    """Fills' costs in the rolling 30-day window, oldest first, and their running sum."""

    __slots__ = ("_fills", "_sum")

    def __init__(self) -> None:
        self._fills: deque[tuple[int, Decimal]] = deque()
        self._sum = ZERO

    def add(self, ts_ns: int, quote: str, cost: Decimal) -> None:
        """Count a fill of ``cost`` (in ``quote``) made at ``ts_ns``."""
        if quote in COUNTED_QUOTES and cost > 0:
            self._fills.append((ts_ns, cost))
            self._sum += cost

    def at(self, ts_ns: int) -> Decimal:
        """The volume of the 30 days before ``ts_ns`` (fills at or before ``ts_ns - 30 days`` have left)."""
        fills = self._fills
        horizon = ts_ns - WINDOW_NS
        while fills and fills[0][0] <= horizon:
            self._sum -= fills.popleft()[1]
        return self._sum
