"""The instruments the engine knows without asking Kraken (shipped in ``engine/data/instruments.json``).

Live runs replace these with what Kraken's AssetPairs says at start-up.
"""

import json
from functools import cache
from importlib import resources

from engine.domain.instrument import Instrument

__all__ = ["default_instruments"]


@cache
def default_instruments() -> dict[str, Instrument]:
    """Shipped instruments keyed by pair name (``XBTUSD``, ``XBTUSDT``, ``ETHXBT``)."""
    raw = json.loads(resources.files("engine").joinpath("data/instruments.json").read_text(encoding="utf-8"))
    instruments = {}
    for rest_name, info in raw.items():
        if rest_name.startswith("_"):
            continue
        instrument = Instrument.from_kraken(rest_name, info)
        instruments[instrument.pair] = instrument
    return instruments
