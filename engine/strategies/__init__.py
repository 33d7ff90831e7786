"""Strategies: one base class with declared parameters, one module per strategy, and the registry of kinds."""

from engine.strategies.base import Param, ParamError, ParamValue, Signal, Strategy, StrategyContext
from engine.strategies.ema_cross import EmaCross
from engine.strategies.mean_reversion import MeanReversion

__all__ = [
    "REGISTRY",
    "EmaCross",
    "MeanReversion",
    "Param",
    "ParamError",
    "ParamValue",
    "Signal",
    "Strategy",
    "StrategyContext",
    "strategy_class",
]

REGISTRY: dict[str, type[Strategy]] = {cls.kind: cls for cls in (EmaCross, MeanReversion)}


def strategy_class(kind: str) -> type[Strategy]:
    """The strategy class for ``kind``.

    Raises:
        ParamError: for an unknown kind (the message lists the known ones).
    """
    try:
        return REGISTRY[kind]
    except KeyError:
        raise ParamError(f"unknown strategy kind {kind!r} (known: {', '.join(sorted(REGISTRY))})") from None
