"""Risk limits: the values in force and, with the same shape, the operator's caps.

For every limit a larger value is looser: the MCP client may lower any of them freely and raise none above its cap.
"""

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["UNBOUNDED_AMOUNT", "UNBOUNDED_RATE", "RiskLimits"]

UNBOUNDED_AMOUNT = Decimal(10) ** 30
"""What "no limit" is for an amount (sizes, notionals, the price band): more than anything a run can reach."""
UNBOUNDED_RATE = 1_000_000
"""What "no limit" is for orders per minute: more than any engine sends (the largest value allowed)."""
PositiveDec = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


class RiskLimits(BaseModel):
    """Pre-trade limits. Notional amounts are in the quote currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_order_qty: PositiveDec = Field(Decimal(1), description="Largest order, in base units.")
    max_order_notional: PositiveDec = Field(Decimal(2500), description="Largest order value.")
    max_pair_notional: PositiveDec = Field(Decimal(5000), description="Largest exposure in one pair.")
    max_total_notional: PositiveDec = Field(Decimal(10000), description="Largest exposure over all pairs.")
    max_open_orders: Annotated[int, Field(gt=0, le=10000)] = Field(20, description="Most open orders at once.")
    max_orders_per_minute: Annotated[int, Field(gt=0, le=UNBOUNDED_RATE)] = Field(
        60, description="Most orders accepted in any 60 s of the orders' own time (exits pass but count)."
    )
    price_band_pct: PositiveDec = Field(
        Decimal(10),
        description="Farthest a limit price may be from the mark, in %, on the fat-finger side (buys above, "
        "sells below); exits included.",
    )

    @classmethod
    def unbounded(cls) -> "RiskLimits":
        """No limit at all (a backtest's default): every amount and the price band :data:`UNBOUNDED_AMOUNT`, open
        orders the most allowed (10,000; a backtest's strategy holds one at a time), orders per minute
        :data:`UNBOUNDED_RATE`."""
        return cls(
            max_order_qty=UNBOUNDED_AMOUNT,
            max_order_notional=UNBOUNDED_AMOUNT,
            max_pair_notional=UNBOUNDED_AMOUNT,
            max_total_notional=UNBOUNDED_AMOUNT,
            max_open_orders=10000,
            max_orders_per_minute=UNBOUNDED_RATE,
            price_band_pct=UNBOUNDED_AMOUNT,
        )

    def is_unbounded(self) -> bool:
        """Whether these are :meth:`unbounded`'s limits."""
        return self == RiskLimits.unbounded()

    @property
    def band_unbounded(self) -> bool:
        """Whether the price band is off (:data:`UNBOUNDED_AMOUNT` or more: no price can leave it)."""
        return self.price_band_pct >= UNBOUNDED_AMOUNT
