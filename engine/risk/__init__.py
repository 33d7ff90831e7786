"""Pre-trade risk: limits, their operator caps, and the engine's trading state (active, paused, halted)."""

from engine.risk.checks import ExposureSnapshot, RiskEngine, TradingState
from engine.risk.limits import RiskLimits

__all__ = ["ExposureSnapshot", "RiskEngine", "RiskLimits", "TradingState"]
