"""Instruments for tests whose figures were worked out on three pairs: Kraken's official AssetPairs example
(krakenfx/api-specs, MIT: XXBTZUSD and XETHXXBT) and the real XBTUSDT capture, with the fee schedule AssetPairs
carried in 2025 (``instruments_example.json``). The engine ships more pairs and newer figures
(engine/data/instruments.json); a test that needs a small, fixed world uses these."""

import json
from functools import cache
from pathlib import Path

from engine.domain.instrument import Instrument

__all__ = ["example_instruments"]


@cache
def _loaded() -> tuple[Instrument, ...]:
    raw = json.loads((Path(__file__).parent / "instruments_example.json").read_text(encoding="utf-8"))
    return tuple(Instrument.from_kraken(key, info) for key, info in raw.items() if not key.startswith("_"))


def example_instruments() -> dict[str, Instrument]:
    """BTC/USD, BTC/USDT and ETH/BTC, keyed by canonical name (a fresh dict each call)."""
    return {i.pair: i for i in _loaded()}
