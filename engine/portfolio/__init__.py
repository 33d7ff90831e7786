"""Portfolio accounting and performance metrics."""

from engine.portfolio.equity_meter import EquityMeter
from engine.portfolio.portfolio import Portfolio, TripState
from engine.portfolio.valuation import DIVISION_CONTEXT, Hop, ValuationPath, valuation_paths, value_along

__all__ = [
    "DIVISION_CONTEXT",
    "EquityMeter",
    "Hop",
    "Portfolio",
    "TripState",
    "ValuationPath",
    "valuation_paths",
    "value_along",
]
