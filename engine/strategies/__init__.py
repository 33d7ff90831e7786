"""Strategies: one base class with declared parameters, one module per strategy, and the registry of kinds.

The registry holds the built-in strategies and the plug-ins found in configured files and installed packages
(:mod:`engine.strategies.discovery`).
"""

from engine.strategies.base import (
    BookContext,
    Param,
    ParamError,
    ParamValue,
    Quote,
    Signal,
    Strategy,
    StrategyContext,
)
from engine.strategies.breakout import Breakout
from engine.strategies.discovery import REGISTRY, ensure_entry_points, load_problems
from engine.strategies.ema_cross import EmaCross
from engine.strategies.mean_reversion import MeanReversion
from engine.strategies.micro_scalper import MicroScalper
from engine.strategies.portfolio import Book, PlannedOrder, PortfolioStrategy
from engine.strategies.portfolio_rebalance import PortfolioRebalance
from engine.strategies.rsi_reversal import RsiReversal

__all__ = [
    "REGISTRY",
    "Book",
    "BookContext",
    "Breakout",
    "EmaCross",
    "MeanReversion",
    "MicroScalper",
    "Param",
    "ParamError",
    "ParamValue",
    "PlannedOrder",
    "PortfolioRebalance",
    "PortfolioStrategy",
    "Quote",
    "RsiReversal",
    "Signal",
    "Strategy",
    "StrategyContext",
    "strategy_class",
]


def strategy_class(kind: str) -> type[Strategy]:
    """The strategy class for ``kind`` (the installed packages' plug-ins are read at the first call).

    Raises:
        ParamError: for an unknown kind (the message lists the known ones).
    """
    ensure_entry_points()
    try:
        return REGISTRY[kind]
    except KeyError:
        n = len(load_problems())
        hint = (
            f"; {n} strategy plug-in{'' if n == 1 else 's'} failed to load (trading-mcp strategies says why)"
            if n
            else ""
        )
        raise ParamError(f"unknown strategy kind {kind!r} (known: {', '.join(sorted(REGISTRY))}){hint}") from None
