"""Risk limits: the values in force and, with the same shape, the operator's caps."""

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RiskLimits"]

PositiveDec = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


class RiskLimits(BaseModel):
    """Pre-trade limits. Notional amounts are in the quote currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_order_qty: PositiveDec = Field(Decimal(1), description="Largest order, in base units.")
    max_order_notional: PositiveDec = Field(Decimal(2500), description="Largest order value.")
    max_pair_notional: PositiveDec = Field(Decimal(5000), description="Largest exposure in one pair.")
    max_total_notional: PositiveDec = Field(Decimal(10000), description="Largest exposure over all pairs.")
    max_open_orders: Annotated[int, Field(gt=0, le=10000)] = Field(20, description="Most open orders at once.")
