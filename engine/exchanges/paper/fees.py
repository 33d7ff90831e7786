"""Fee arithmetic of the simulated venue.

Kraken charges spot fees in the quote asset and rounds them up; the simulated venue rounds up to the pair's
``cost_decimals`` too. Rounding each fill separately would let an order split into many small fills pay one
rounding quantum per fill (and a 1-satoshi fill could pay more fee than its cost), so the meter rounds the
order's running total per liquidity type instead: each fill pays ``ceil(cumulative cost × rate)`` minus what
the order has already paid at that rate. A single fill pays exactly ``ceil(cost × rate)``. The running fee is
also capped at the running cost (rounded down), so an order never costs a seller more than it brings in.
"""

from decimal import ROUND_DOWN, ROUND_UP, Decimal
from functools import cache

from engine.domain.money import ZERO, quantum

__all__ = ["FEE_ROUNDING", "FeeMeter"]

FEE_ROUNDING = ROUND_UP
"""Kraken rounds fees up (in the trader's disfavour); so do we."""


# money.quantize builds its quantum Decimal at every call; a fill needs the same one twice, every time.
_quantum = cache(quantum)


class FeeMeter:
    """The fees one order has paid, kept per liquidity type (maker, taker)."""

    __slots__ = ("_charged", "_cost")

    def __init__(self) -> None:
        self._cost = [ZERO, ZERO]
        self._charged = [ZERO, ZERO]

    def record(self, *, maker: bool, cost: Decimal, fee: Decimal) -> None:
        """Account a fill the order made before (restoring the order after a restart) without charging it."""
        i = 1 if maker else 0
        self._cost[i] += cost
        self._charged[i] += fee

    def charge(self, *, maker: bool, cost: Decimal, rate: Decimal, cost_decimals: int) -> Decimal:
        """Record a fill of ``cost`` (quote) at fee ``rate`` and return the fee it pays, rounded up.

        Args:
            maker: whether the fill added liquidity.
            cost: ``qty * price`` of the fill.
            rate: the fee as a fraction (0.0040 for 0.40 %).
            cost_decimals: the pair's cost precision.
        """
        i = 1 if maker else 0
        total_cost = self._cost[i] + cost
        self._cost[i] = total_cost
        step = _quantum(cost_decimals)
        owed = min(
            (total_cost * rate).quantize(step, FEE_ROUNDING),
            total_cost.quantize(step, ROUND_DOWN),
        )
        fee = max(owed - self._charged[i], ZERO)
        self._charged[i] += fee
        return fee
