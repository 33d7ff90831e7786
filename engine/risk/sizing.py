"""Entry sizing and entry orders: how much a buy spends, and whether it goes as a market or a limit order.

Pure: the trader hands in the strategy's parameter values (:mod:`engine.strategies.common_params`), the equity and
the prices; amounts are Decimal.

Sizing, in the account currency, before the strategy's weight:

- fixed (the default): the slot's ``order_quote_amount``;
- ``equity_fraction_pct`` > 0: ``equity × pct / 100``;
- ``risk_per_trade_pct`` > 0 (takes precedence): volatility targeting. The quantity is the one a move of
  ``atr_multiple × ATR`` against it costs ``risk_per_trade_pct`` of equity:
  ``qty = equity × pct / 100 / (atr_multiple × ATR)``; its cost is ``qty × price``. The ATR is in the pair's
  quote asset, like the price, so for a pair quoted in another asset the conversion cancels out:
  ``budget = equity × pct / 100 × price / (atr_multiple × ATR)`` in the account currency. No ATR yet (warming
  up) or a zero ATR: no entry (the trader records why).

Then × weight, then capped by the risk limits in force: the budget by ``max_order_notional``, and the trader
caps the quantity by ``max_order_qty``. A cap makes the order smaller instead of refusing it, so a sizing rule
never trips a limit by itself; the risk checks still run on what is sent.

Entry orders: ``entry_limit_bps`` of -1 sends market orders; 0 or more sends a limit buy at
``close × (1 − bps / 10,000)`` rounded down to the tick (never above what was asked), post-only when
``entry_post_only``, expiring ``entry_ttl_candles`` candles after the decision candle's close (good-till-date
at the venue), and sent again at the then-current close up to ``entry_reprices`` times when it expires.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from engine.domain.instrument import Instrument

__all__ = ["EntryPolicy", "entry_budget", "limit_entry_price"]

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_BPS = Decimal(10_000)


def _dec(values: Mapping[str, object], name: str, default: Decimal) -> Decimal:
    value = values.get(name, default)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def entry_budget(
    values: Mapping[str, object],
    fixed_amount: Decimal,
    weight: Decimal,
    equity: Decimal,
    price: Decimal,
    atr: Decimal | None,
    max_notional: Decimal,
) -> tuple[Decimal | None, str]:
    """The amount an entry spends in the account currency, and how it was sized (a short phrase).

    Returns ``(None, why)`` when the rule cannot size now (no ATR yet, a zero ATR, no equity).
    """
    risk_pct = _dec(values, "risk_per_trade_pct", _ZERO)
    fraction = _dec(values, "equity_fraction_pct", _ZERO)
    if risk_pct > 0:
        if atr is None or atr <= 0:
            return None, "risk_per_trade_pct: no ATR yet (warming up)" if atr is None else "risk_per_trade_pct: ATR 0"
        if equity <= 0:
            return None, "risk_per_trade_pct: no equity"
        multiple = _dec(values, "atr_multiple", Decimal(2))
        budget = equity * risk_pct / _HUNDRED * price / (multiple * atr)
        how = f"risk {risk_pct}% of equity over {multiple} ATR"
    elif fraction > 0:
        if equity <= 0:
            return None, "equity_fraction_pct: no equity"
        budget = equity * fraction / _HUNDRED
        how = f"{fraction}% of equity"
    else:
        budget = fixed_amount
        how = "fixed amount"
    budget *= weight
    if budget > max_notional:
        return max_notional, how + ", capped by max_order_notional"
    return budget, how


@dataclass(frozen=True, slots=True)
class EntryPolicy:
    """How a strategy's entries go to the venue (see the module's docstring)."""

    limit_bps: Decimal | None
    """``None``: market orders; else the limit's distance below the close, in basis points."""
    post_only: bool
    ttl_candles: int
    reprices: int

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> "EntryPolicy":
        bps = _dec(values, "entry_limit_bps", Decimal(-1))
        return cls(
            limit_bps=None if bps < 0 else bps,
            post_only=bool(values.get("entry_post_only", False)),
            ttl_candles=int(str(values.get("entry_ttl_candles", 3))),
            reprices=int(str(values.get("entry_reprices", 0))),
        )

    @property
    def is_market(self) -> bool:
        return self.limit_bps is None


def limit_entry_price(close: Decimal, bps: Decimal, instrument: Instrument) -> Decimal:
    """A limit buy's price: ``close × (1 − bps/10,000)`` rounded down to the pair's tick (never above it)."""
    return instrument.round_price(close * (1 - bps / _BPS), ROUND_DOWN)
