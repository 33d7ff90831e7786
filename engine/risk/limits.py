"""Risk limits: the values in force and, with the same shape, the operator's caps."""

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["UNBOUNDED_AMOUNT", "RiskLimits"]

UNBOUNDED_AMOUNT = Decimal(10) ** 30
"""What "no limit" is for an amount (sizes, notionals): more than anything a run can reach."""
PositiveDec = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


class RiskLimits(BaseModel):
    """Pre-trade limits. Notional amounts are in the quote currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_order_qty: PositiveDec = Field(Decimal(1), description="Largest order, in base units.")
    max_order_notional: PositiveDec = Field(Decimal(2500), description="Largest order value.")
    max_pair_notional: PositiveDec = Field(Decimal(5000), description="Largest exposure in one pair.")
    max_total_notional: PositiveDec = Field(Decimal(10000), description="Largest exposure over all pairs.")
    max_open_orders: Annotated[int, Field(gt=0, le=10000)] = Field(20, description="Most open orders at once.")

    @classmethod
    def unbounded(cls) -> "RiskLimits":
        """No limit at all (a backtest's default): every amount :data:`UNBOUNDED_AMOUNT`, open orders the most
        allowed (10,000; a backtest's strategy holds one at a time)."""
        return cls(
            max_order_qty=UNBOUNDED_AMOUNT,
            max_order_notional=UNBOUNDED_AMOUNT,
            max_pair_notional=UNBOUNDED_AMOUNT,
            max_total_notional=UNBOUNDED_AMOUNT,
            max_open_orders=10000,
        )

    def is_unbounded(self) -> bool:
        """Whether these are :meth:`unbounded`'s limits."""
        return self == RiskLimits.unbounded()
