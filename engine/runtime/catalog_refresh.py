"""Refreshing the catalogue from Kraken, and choosing the one a run uses.

``trading-mcp pairs --refresh`` and every live or ``--market kraken`` start load Kraken's whole AssetPairs and
Assets (two public REST calls), check every entry, and keep them (:mod:`engine.market.catalog_files`). A run
that cannot reach Kraken falls back to the kept copy, then to the shipped file, and says which it uses.
"""

import time
from dataclasses import dataclass

from engine.domain.instrument import InstrumentError
from engine.exchanges.kraken.protocol.errors import KrakenError
from engine.exchanges.kraken.rest_client import KrakenRestClient
from engine.exchanges.port import ExchangeError
from engine.market.catalog import Catalog, catalog_from_asset_pairs
from engine.market.catalog_files import KeptCatalogError, current_catalog, load_kept, save_kept
from engine.redaction import Redactor

__all__ = ["CatalogChoice", "RefreshError", "choose_catalog", "refresh_catalog"]


class RefreshError(Exception):
    """Kraken's list could not be loaded or is malformed; nothing was kept (the message says why)."""


@dataclass(frozen=True, slots=True)
class CatalogChoice:
    """The catalogue a run uses, and in one line where it comes from (and why, when it is not fresh)."""

    catalog: Catalog
    note: str


async def refresh_catalog(rest: KrakenRestClient, *, clock_ns: int | None = None) -> Catalog:
    """Load Kraken's AssetPairs and Assets, check every entry, keep them, and return the catalogue in use.

    Raises:
        RefreshError: Kraken refused or could not be reached, or an entry is malformed (nothing is kept then).
    """
    try:
        pairs = await rest.asset_pairs_raw()
        assets = await rest.assets_raw()
    except (KrakenError, ExchangeError, OSError) as exc:
        raise RefreshError(f"Kraken's AssetPairs could not be loaded: {Redactor().foreign(str(exc))}") from None
    try:
        # Checked whole before anything is kept: a kept copy is never half good.
        catalog_from_asset_pairs(pairs, "Kraken AssetPairs")
    except (InstrumentError, TypeError, ValueError, AttributeError) as exc:
        raise RefreshError(f"Kraken's AssetPairs has a malformed entry: {exc}") from None
    save_kept(pairs, assets, clock_ns if clock_ns is not None else time.time_ns())
    return current_catalog()


async def choose_catalog(rest: KrakenRestClient) -> CatalogChoice:
    """For a run on Kraken: a fresh list when Kraken answers, else the kept copy, else the shipped file."""
    try:
        catalog = await refresh_catalog(rest)
        return CatalogChoice(catalog, f"pairs: {len(catalog)} from Kraken's AssetPairs, just refreshed")
    except RefreshError as exc:
        reason = str(exc)
    try:
        kept = load_kept()
    except KeptCatalogError as exc:
        kept, reason = None, f"{reason}; {exc}"
    catalog = current_catalog()
    if kept is not None:
        return CatalogChoice(catalog, f"pairs: the kept copy ({catalog.source}), since {reason}")
    return CatalogChoice(catalog, f"pairs: the {len(catalog)} shipped with the engine, since {reason}")
