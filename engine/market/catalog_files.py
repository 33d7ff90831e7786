"""Where the catalogue comes from: the kept copy of Kraken's last AssetPairs, else the file the engine ships.

``trading-mcp pairs --refresh`` (and every live or ``--market kraken`` start) loads Kraken's whole AssetPairs and
Assets and keeps them in ``kraken_asset_pairs.json`` in the user's data folder (platformdirs:
``~/.local/share/trading-mcp`` on Linux; ``TRADING_MCP_HOME`` moves it). The catalogue in use is the shipped
pairs overlaid with the kept ones (a kept entry wins: it is newer). A kept copy that cannot be read is reported
and left alone, never half-used: the shipped catalogue stands in.
"""

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs

from engine.domain.instrument import InstrumentError
from engine.market.catalog import Catalog, catalog_from_asset_pairs, shipped_catalog
from engine.market.inferred import split_unknown
from engine.market.pair_names import compact

__all__ = [
    "HOME_ENV",
    "KeptCatalogError",
    "canonical_pair_name",
    "current_catalog",
    "home",
    "kept_path",
    "load_kept",
    "save_kept",
]

HOME_ENV = "TRADING_MCP_HOME"
KEPT_NAME = "kraken_asset_pairs.json"
log = logging.getLogger(__name__)


class KeptCatalogError(Exception):
    """The kept copy exists but cannot be used (unreadable, malformed); the message says which and why."""


def home() -> Path:
    """The user's data folder for files shared by every state file (the kept catalogue)."""
    override = os.environ.get(HOME_ENV)
    return Path(override) if override else platformdirs.user_data_path("trading-mcp", appauthor=False)


def kept_path() -> Path:
    return home() / KEPT_NAME


def save_kept(pairs: Mapping[str, Any], assets: Mapping[str, Any], fetched_ns: int, path: Path | None = None) -> Path:
    """Keep Kraken's AssetPairs and Assets results (as Kraken sent them), written atomically."""
    target = path or kept_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    document = {"fetched_ns": fetched_ns, "asset_pairs": dict(pairs), "assets": dict(assets)}
    fd, tmp = tempfile.mkstemp(prefix=".catalog-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            # Kraken's JSON numbers arrive as Decimals (their digits kept); they are kept as strings.
            json.dump(document, out, separators=(",", ":"), default=str)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _cache.clear()
    return target


def _stamp(fetched_ns: int) -> str:
    return datetime.fromtimestamp(fetched_ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%MZ")


def load_kept(path: Path | None = None) -> Catalog | None:
    """The kept copy as a catalogue, or None when there is none.

    Raises:
        KeptCatalogError: it exists but cannot be read or holds a malformed entry.
    """
    source = path or kept_path()
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise KeptCatalogError(f"the kept catalogue {source} cannot be read ({exc})") from None
    try:
        pairs = document["asset_pairs"]
        fetched = int(document["fetched_ns"])
        if not isinstance(pairs, dict):
            raise TypeError("asset_pairs is not an object")
        return catalog_from_asset_pairs(pairs, f"Kraken AssetPairs of {_stamp(fetched)}, kept in {source}")
    except (KeyError, TypeError, ValueError, InstrumentError) as exc:
        raise KeptCatalogError(f"the kept catalogue {source} is malformed ({exc})") from None


_cache: dict[tuple[str, int], Catalog] = {}


def current_catalog() -> Catalog:
    """The catalogue in use: the shipped pairs overlaid with the kept copy when there is a usable one."""
    path = kept_path()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return shipped_catalog()
    key = (str(path), stamp)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    try:
        kept = load_kept(path)
    except KeptCatalogError as exc:
        log.warning("%s; using the shipped catalogue", exc)
        kept = None
    catalog = shipped_catalog() if kept is None else shipped_catalog().with_instruments(kept, kept.source)
    _cache.clear()
    _cache[key] = catalog
    return catalog


def canonical_pair_name(text: str) -> str:
    """The canonical name of the pair ``text`` spells (``xbtusd`` → ``BTC/USD``), as far as it can be told.

    A pair of the catalogue in use gets its own name; an unknown one written with a separator gets plain asset
    codes (``foo-xbt`` → ``FOO/BTC``); an unknown run-together name is only upper-cased (its base and quote cannot
    be told apart) unless it ends in a quote asset Kraken lists (``FOOUSD`` → ``FOO/USD``). Whether the pair can be
    traded is decided later, where an instrument is needed.
    """
    found = current_catalog().find(text)
    if found is not None:
        return found.pair
    split = split_unknown(text)
    return f"{split[0]}/{split[1]}" if split is not None else compact(text)
