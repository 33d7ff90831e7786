"""The simulated account's fee tier follows its own 30-day volume (Kraken's published schedule)."""

from decimal import Decimal

import pytest

from engine.exchanges.paper.fee_volume import WINDOW_NS, FeeVolume

DAY = 24 * 3600 * 10**9


def test_fills_leave_the_window_thirty_days_after_they_were_made() -> None:
    volume = FeeVolume()
    volume.add(0, "USD", Decimal(6000))
    volume.add(10 * DAY, "USDT", Decimal(5000))
    volume.add(11 * DAY, "BTC", Decimal(3))  # ETH/BTC's cost is in BTC: not counted (never a better tier)
    volume.add(12 * DAY, "EUR", Decimal(9000))
    assert volume.at(10 * DAY) == Decimal(11000)
    assert volume.at(WINDOW_NS - 1) == Decimal(11000)
    assert volume.at(WINDOW_NS) == Decimal(5000)  # 30 days to the nanosecond after the first fill: gone
    assert volume.at(40 * DAY) == Decimal(0)


@pytest.mark.parametrize(
    ("volume", "taker", "maker"),
    [(0, "0.0040", "0.0025"), (9999, "0.0040", "0.0025"), (10000, "0.0035", "0.0020"), (10_000_000, "0.0010", "0")],
)
def test_the_published_schedule_gives_the_tier_rates(volume: int, taker: str, maker: str) -> None:
    from engine.market.catalog import shipped_catalog

    btc = shipped_catalog().resolve("BTC/USD")  # empty fee arrays in 2026: the published schedule
    assert btc.fee_rate(maker=False, volume_30d=Decimal(volume)) == Decimal(taker)
    assert btc.fee_rate(maker=True, volume_30d=Decimal(volume)) == Decimal(maker)
