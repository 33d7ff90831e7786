"""The instruments the engine knows without asking Kraken: the catalogue in use (see :mod:`engine.market.catalog`).

Live and ``--market kraken`` runs refresh it from Kraken's AssetPairs at start-up (``trading-mcp pairs
--refresh`` does it by hand); everything else uses the kept copy of the last refresh, else the shipped file.
"""

from engine.domain.instrument import Instrument
from engine.market.catalog_files import current_catalog

__all__ = ["default_instruments"]


def default_instruments() -> dict[str, Instrument]:
    """The catalogue's instruments keyed by canonical pair name (``BTC/USD``)."""
    return {i.pair: i for i in current_catalog()}
