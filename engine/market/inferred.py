"""An instrument for a pair no catalogue knows, inferred from its data, so that a backtest of any file runs.

The rules inferred are the loosest Kraken's data allow: prices at the most decimals the file's prices carry (the
tick one unit of the last), quantities at 8 decimals (Kraken's most common lot precision), no order or cost
minimum, Kraken's published fees. A run on such an instrument says so in one line, with the command that loads
Kraken's real rules: minimums it does not know it cannot enforce, so a backtest may trade sizes Kraken refuses.
"""

from collections.abc import Iterable
from decimal import Decimal

from engine.domain.instrument import Instrument
from engine.market.pair_names import canonical_asset, compact, split_pair

__all__ = ["QUOTES", "infer_instrument", "inferred_note", "split_unknown"]

# Quote assets Kraken lists, longest first so that USDT is tried before USD (FOOUSDT is FOO/USDT).
QUOTES = ("USDT", "USDC", "PYUSD", "ZUSD", "ZEUR", "ZGBP", "ZCAD", "ZJPY", "USD", "EUR", "GBP", "CAD", "JPY",
          "AUD", "CHF", "XBT", "BTC", "ETH", "DAI", "DOT", "SOL")  # fmt: skip
_LOT_DECIMALS = 8


def split_unknown(name: str) -> tuple[str, str] | None:
    """``(base, quote)`` of a pair name no catalogue knows: written with a separator, or ending in a quote asset
    Kraken lists (``FOOUSD`` → ``("FOO", "USD")``); None when it cannot be told."""
    written = split_pair(name)
    if written is not None:
        return canonical_asset(written[0]), canonical_asset(written[1])
    text = compact(name)
    for quote in sorted(QUOTES, key=len, reverse=True):
        if text.endswith(quote) and len(text) > len(quote):
            return canonical_asset(text[: -len(quote)]), canonical_asset(quote)
    return None


def infer_instrument(name: str, prices: Iterable[Decimal]) -> Instrument | None:
    """The instrument a file's prices suggest for ``name`` (see the module), or None when the name cannot be
    split into base and quote or there is no price to learn from."""
    split = split_unknown(name)
    decimals = [max(0, -int(p.as_tuple().exponent)) for p in prices if p.is_finite()]
    if split is None or not decimals:
        return None
    base, quote = split
    places = max(decimals)
    symbol = f"{base}/{quote}"
    return Instrument(
        pair=symbol,
        ws_symbol=symbol,
        rest_name=compact(symbol),
        base=base,
        quote=quote,
        pair_decimals=places,
        lot_decimals=_LOT_DECIMALS,
        cost_decimals=max(places, 5),
        ordermin=Decimal(0),
        costmin=Decimal(0),
        tick_size=Decimal(1).scaleb(-places),
        status="online",
    )


def inferred_note(inst: Instrument) -> str:
    """The one line a run on an inferred instrument prints."""
    return (
        f"{inst.pair} is in no catalogue: its rules are inferred from the data (price decimals "
        f"{inst.pair_decimals}, lot decimals {inst.lot_decimals}, no minimums); `trading-mcp pairs --refresh` "
        "loads Kraken's real rules"
    )
