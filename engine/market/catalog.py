"""The instrument catalogue: which Kraken spot pairs exist, their rules, and every name each answers to.

A :class:`Catalog` holds instruments under their canonical name (Kraken's WebSocket v2 symbol, ``BTC/USD``: see
:mod:`engine.market.pair_names`) and resolves any spelling of a pair to one of them: ``BTC/USD``, ``XBT/USD``,
``XBTUSD``, ``BTCUSD``, ``XXBTZUSD``, ``btc-usd`` all name the same instrument. A name that two instruments could
answer to (only possible for run-together spellings such as ``ABCDUSD``) is refused as ambiguous with the
spellings that are not.

Catalogues come from Kraken's AssetPairs (a refresh, a kept copy of the last one) or from the file the project
ships (:func:`shipped_catalog`); :mod:`engine.market.catalog_files` loads and keeps them.
"""

import difflib
import json
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any

from engine.domain.instrument import Instrument
from engine.errors import NotFound
from engine.market.pair_names import canonical_asset, compact, spellings, split_pair

__all__ = ["Catalog", "UnknownPair", "catalog_from_asset_pairs", "shipped_catalog"]

_AMBIGUOUS = ""  # index value of a spelling that more than one instrument answers to


class UnknownPair(NotFound):
    """No instrument of the catalogue answers to this name (or more than one does)."""


class Catalog:
    """Instruments by canonical name, and the index of every spelling.

    Attributes:
        source: where the instruments come from, in words (``shipped with the engine``, ``Kraken AssetPairs,
            kept 2026-12-04T10:00Z``), shown wherever a user needs to know how current the rules are.
    """

    def __init__(self, instruments: Iterable[Instrument], source: str) -> None:
        self.source = source
        self._by_name: dict[str, Instrument] = {}
        for instrument in instruments:
            self._by_name.setdefault(instrument.pair, instrument)
        self._index = self._build_index(self._by_name.values())

    @staticmethod
    def _build_index(instruments: Iterable[Instrument]) -> dict[str, str]:
        # Kraken's own keys first (the REST key, the altname, v1 and v2 symbols): they never give way to a
        # spelling made up by joining aliases, which only fills the gaps they leave.
        exact: dict[str, str] = {}
        made_up: dict[str, str] = {}
        for inst in instruments:
            for key in {
                compact(k) for k in (inst.pair, inst.ws_symbol, inst.rest_name, inst.altname, inst.wsname) if k
            }:
                exact[key] = inst.pair if exact.get(key, inst.pair) == inst.pair else _AMBIGUOUS
            for key in spellings(inst.base, inst.quote):
                made_up[key] = inst.pair if made_up.get(key, inst.pair) == inst.pair else _AMBIGUOUS
        return {**made_up, **exact}

    # -- reading ----------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_name)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_name.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def find(self, name: str) -> Instrument | None:
        """The instrument ``name`` spells, or None (unknown or ambiguous)."""
        exact = self._by_name.get(name)
        if exact is not None:
            return exact
        split = split_pair(name)
        if split is not None:
            # Written with a separator: base and quote are known apart, so their aliases resolve without guessing.
            key = self._index.get(canonical_asset(split[0]) + canonical_asset(split[1]))
            if key:
                return self._by_name[key]
        key = self._index.get(compact(name))
        return self._by_name[key] if key else None

    def resolve(self, name: str) -> Instrument:
        """The instrument ``name`` spells, in any of Kraken's spellings or the usual human ones.

        Raises:
            UnknownPair: no instrument answers to ``name``, or more than one does (the message says which, and
                how to load Kraken's whole list).
        """
        if not isinstance(name, str) or not name.strip():
            raise UnknownPair("a pair name is needed, such as BTC/USD")
        found = self.find(name)
        if found is not None:
            return found
        if self._index.get(compact(name)) == _AMBIGUOUS:
            raise UnknownPair(f"pair {name!r} is ambiguous here: write it as BASE/QUOTE, such as BTC/USD")
        close = [
            c for c in difflib.get_close_matches(compact(name), list(self._index), n=5, cutoff=0.75) if self._index[c]
        ]
        hint = f" (did you mean {', '.join(sorted({self._index[c] for c in close}))}?)" if close else ""
        raise UnknownPair(
            f"unknown pair {name!r}: not among the {len(self)} pairs of the catalogue ({self.source}){hint}; "
            "`trading-mcp pairs --refresh` loads Kraken's whole list"
        )

    def with_instruments(self, extra: Iterable[Instrument], source: str | None = None) -> "Catalog":
        """A catalogue of these instruments and ``extra`` (``extra`` wins where both name one pair)."""
        merged = {**self._by_name, **{i.pair: i for i in extra}}
        return Catalog(merged.values(), source or self.source)


def catalog_from_asset_pairs(result: Mapping[str, Any], source: str) -> Catalog:
    """A catalogue of every entry of an AssetPairs ``result`` (Kraken's REST key → entry).

    Raises:
        engine.domain.instrument.InstrumentError: an entry is malformed.
    """
    return Catalog(
        (Instrument.from_kraken(key, info) for key, info in result.items() if not key.startswith("_")), source
    )


@cache
def shipped_catalog() -> Catalog:
    """The pairs shipped in ``engine/data/instruments.json`` (real AssetPairs entries; see its ``_source``)."""
    raw = json.loads(resources.files("engine").joinpath("data/instruments.json").read_text(encoding="utf-8"))
    return catalog_from_asset_pairs(raw, "shipped with the engine")
