"""Kraken's published spot fee schedule (Kraken Pro), for pairs whose AssetPairs entry carries no fee tiers.

Since 2026 Kraken sends empty ``fees`` and ``fees_maker`` arrays in AssetPairs (every pair of the 2026-09-25
recording, also with ``?info=fees``): the rate an account pays comes from its 30-day trade volume in USD through
the published schedule, or for a live account from the private ``TradeVolume`` endpoint. These tiers are the
schedule Kraken published and that AssetPairs still carried on 2025-11-11 (the shipped XBTUSDT capture, whose
arrays a test compares with this table). Stablecoin and FX pairs have a schedule of their own, which this table
does not hold: their fees are overestimated here until a refresh of a live account reads its own rates.
"""

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["PUBLISHED_MAKER", "PUBLISHED_TAKER", "SCHEDULE_NAME", "FeeTier"]


@dataclass(frozen=True, slots=True)
class FeeTier:
    """From ``volume`` (30-day, in the fee volume currency) on, the fee is ``percent`` of the cost."""

    volume: Decimal
    percent: Decimal


SCHEDULE_NAME = "Kraken Pro spot schedule"

# (30-day volume in USD from which the tier applies, taker %, maker %)
_TIERS = (
    ("0", "0.40", "0.25"),
    ("10000", "0.35", "0.20"),
    ("50000", "0.24", "0.14"),
    ("100000", "0.22", "0.12"),
    ("250000", "0.20", "0.10"),
    ("500000", "0.18", "0.08"),
    ("1000000", "0.16", "0.06"),
    ("2500000", "0.14", "0.04"),
    ("5000000", "0.12", "0.02"),
    ("10000000", "0.10", "0.00"),
)

PUBLISHED_TAKER: tuple[FeeTier, ...] = tuple(FeeTier(Decimal(v), Decimal(t)) for v, t, _m in _TIERS)
PUBLISHED_MAKER: tuple[FeeTier, ...] = tuple(FeeTier(Decimal(v), Decimal(m)) for v, _t, m in _TIERS)
