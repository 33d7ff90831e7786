"""The simulated exchange: one matching engine behind :class:`~engine.exchanges.port.ExchangePort` for paper
trading and backtests.

Modules: ``exchange`` (the adapter: state and events), ``admission`` (refusals and holds),
``matching`` (which event fills which order), ``book`` (the consumable copy of the latest book), ``fees`` (fee
rounding), ``slippage`` (taker price models).

Errors::

    ExchangeError (engine.exchanges.port)
    ├── OrderRefused      cancel of an unknown or closed order; a reused client order id
    └── PaperSetupError   no handler bound, or restore() given inconsistent state: fix the caller
"""

from engine.exchanges.paper.admission import (
    ERR_CANCEL_ONLY,
    ERR_INVALID_ARGUMENTS,
    ERR_POST_ONLY,
    ERR_POST_ONLY_MODE,
    ERR_UNKNOWN_ORDER,
    ERR_UNKNOWN_PAIR,
    MARKET_BUY_MARGIN,
)
from engine.exchanges.paper.exchange import PaperExchange, PaperSetupError
from engine.exchanges.paper.matching import REASON_PRICE_PROTECTION
from engine.exchanges.paper.slippage import NO_SLIPPAGE, FixedBpsSlippage, NoSlippage, SlippageModel

__all__ = [
    "ERR_CANCEL_ONLY",
    "ERR_INVALID_ARGUMENTS",
    "ERR_POST_ONLY",
    "ERR_POST_ONLY_MODE",
    "ERR_UNKNOWN_ORDER",
    "ERR_UNKNOWN_PAIR",
    "MARKET_BUY_MARGIN",
    "NO_SLIPPAGE",
    "REASON_PRICE_PROTECTION",
    "FixedBpsSlippage",
    "NoSlippage",
    "PaperExchange",
    "PaperSetupError",
    "SlippageModel",
]
