"""Parameters every strategy has besides its own: position guards, sizing and entry orders.

They are declared like a strategy's own parameters (:class:`~engine.strategies.base.Param`), so the configuration,
``tune_strategy`` over MCP and the operator's ``[tuning.bounds]`` validate and bound them the same way. Every one
defaults to "off" (0, or the plain behaviour), so a strategy configured without them trades as before.

What they do is implemented elsewhere: the guards in :mod:`engine.risk.position_guards`, sizing and entry orders
in :mod:`engine.runtime.sizing` (both read by the trader).
"""

from decimal import Decimal

from engine.strategies.base import Param

__all__ = ["COMMON_PARAMS", "ENTRY_PARAMS", "GUARD_PARAMS", "SIZING_PARAMS"]

_D = Decimal

GUARD_PARAMS: tuple[Param, ...] = (
    Param(
        "stop_loss_pct",
        "decimal",
        _D(0),
        _D(0),
        _D(90),
        "Sell the whole position when a candle's low is this % below the average entry price (0 = off).",
    ),
    Param(
        "take_profit_pct",
        "decimal",
        _D(0),
        _D(0),
        _D(1000),
        "Take profit when a candle's high is this % above the average entry price (0 = off).",
    ),
    Param(
        "take_profit_share",
        "decimal",
        _D(1),
        _D("0.01"),
        _D(1),
        "Share of the position sold at the take-profit: 1 sells it all; less scales out once and leaves the rest "
        "to the other guards and the strategy's own exit.",
    ),
    Param(
        "trailing_stop_pct",
        "decimal",
        _D(0),
        _D(0),
        _D(90),
        "Sell the whole position when a candle's low is this % below the highest high since entry (0 = off).",
    ),
    Param(
        "time_stop_candles",
        "int",
        0,
        0,
        1_000_000,
        "Sell the whole position once it has been held this many candles (0 = off).",
    ),
)

SIZING_PARAMS: tuple[Param, ...] = (
    Param(
        "equity_fraction_pct",
        "decimal",
        _D(0),
        _D(0),
        _D(100),
        "Spend this % of equity (× weight) per entry instead of order_quote_amount (0 = off); capped by the "
        "risk limits.",
    ),
    Param(
        "risk_per_trade_pct",
        "decimal",
        _D(0),
        _D(0),
        _D(10),
        "Volatility targeting: size each entry so that a move of atr_multiple × ATR costs this % of equity "
        "(0 = off; takes precedence over equity_fraction_pct); capped by the risk limits.",
    ),
    Param("atr_period", "int", 14, 2, 500, "ATR period (Wilder, as TA-Lib) for risk_per_trade_pct, in candles."),
    Param(
        "atr_multiple", "decimal", _D(2), _D("0.1"), _D(50), "How many ATRs of adverse move risk_per_trade_pct covers."
    ),
)

ENTRY_PARAMS: tuple[Param, ...] = (
    Param(
        "entry_limit_bps",
        "decimal",
        _D(-1),
        _D(-1),
        _D(1000),
        "Entries as limit orders this many basis points below the decision candle's close (0 = at the close); "
        "-1 = market orders (the default).",
    ),
    Param("entry_post_only", "bool", False, description="Limit entries are post-only (maker or nothing)."),
    Param(
        "entry_ttl_candles",
        "int",
        3,
        1,
        10_000,
        "A limit entry still open this many candles after it was sent expires (at the venue: good-till-date).",
    ),
    Param(
        "entry_reprices",
        "int",
        0,
        0,
        100,
        "How many times an expired limit entry is sent again at the new close (0 = abandoned at expiry).",
    ),
)

COMMON_PARAMS: tuple[Param, ...] = GUARD_PARAMS + SIZING_PARAMS + ENTRY_PARAMS
