"""Kraken's many spellings of one pair, and the one name the engine shows.

Kraken names a spot pair in several ways at once: the REST key (``XXBTZUSD``), its ``altname`` (``XBTUSD``),
the WebSocket v1 ``wsname`` (``XBT/USD``) and the WebSocket v2 symbol (``BTC/USD``); people add their own
(``BTCUSD``, ``btc-usd``). Assets likewise: ``XXBT``, ``XBT`` and ``BTC`` are one asset, and so are ``XXDG``,
``XDG`` and ``DOGE``.

The engine's canonical name is the WebSocket v2 symbol, ``BASE/QUOTE`` with plain asset codes (``BTC/USD``,
``DOGE/USD``, ``ETH/BTC``): the name Kraken's current API speaks, readable, and unambiguous because of its slash.
Everything here is pure text work: :mod:`engine.market.catalog` decides which names exist.
"""

import re
from collections.abc import Iterable

from engine.domain.instrument import legacy_asset_codes

__all__ = ["SEPARATORS", "asset_aliases", "canonical_asset", "compact", "split_pair"]

_LEGACY = legacy_asset_codes()

SEPARATORS = re.compile(r"\s*[/\-_:. ]\s*")
"""What people put between base and quote: ``BTC/USD``, ``btc-usd``, ``BTC_USD``, ``BTC:USD``, ``BTC USD``."""


def canonical_asset(code: str) -> str:
    """The plain code of a Kraken asset code (``XXBT`` → ``BTC``, ``ZUSD`` → ``USD``, ``SOL`` → ``SOL``)."""
    upper = code.strip().upper()
    return _LEGACY.get(upper, upper)


def asset_aliases(plain: str) -> tuple[str, ...]:
    """Every code that names ``plain`` (``BTC`` → ``BTC``, ``XXBT``, ``XBT``, ``XBT.M``), the plain one first."""
    return (plain, *(legacy for legacy, name in _LEGACY.items() if name == plain))


def split_pair(text: str) -> tuple[str, str] | None:
    """``(base, quote)`` as written when ``text`` separates them (``btc-usd`` → ``("BTC", "USD")``), else None."""
    parts = [p for p in SEPARATORS.split(text.strip().upper()) if p]
    if len(parts) != 2:
        return None
    return parts[0], parts[1]


def compact(text: str) -> str:
    """``text`` upper-cased with every separator and space removed (``btc/usd`` → ``BTCUSD``)."""
    return "".join(p for p in SEPARATORS.split(text.strip().upper()) if p)


def spellings(base: str, quote: str, extra: Iterable[str] = ()) -> list[str]:
    """The compact spellings of the pair ``base``/``quote``: every alias of one joined to every alias of the other
    (``BTCUSD``, ``XBTUSD``, ``XXBTZUSD``, ...), then ``extra`` (Kraken's own keys), upper-cased and compacted."""
    names = [a + q for a in asset_aliases(base) for q in asset_aliases(quote)]
    return [*names, *(compact(e) for e in extra if e)]
