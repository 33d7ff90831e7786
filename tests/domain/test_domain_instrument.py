"""Instruments from Kraken's AssetPairs: precision, minimums and fee tiers."""

import json
from decimal import Decimal
from pathlib import Path

from engine.domain.instrument import (
    ERR_COST_MIN,
    ERR_ORDER_MIN,
    ERR_TICK_SIZE,
    Instrument,
    normalize_asset,
)
from engine.exchanges.catalog import default_instruments


def test_shipped_real_capture_parses_with_kraken_figures(shared_dir: Path) -> None:
    raw = json.loads((shared_dir / "data/kraken-rest-xbtusdt/http_asset_pairs.json").read_text())["result"]
    inst = Instrument.from_kraken("XBTUSDT", raw["XBTUSDT"])
    assert inst == default_instruments()["BTC/USDT"]


def test_xbtusdt_rules() -> None:
    inst = default_instruments()["BTC/USDT"]
    assert (inst.base, inst.quote, inst.ws_symbol) == ("BTC", "USDT", "BTC/USDT")
    assert inst.ordermin == Decimal("0.00005") and inst.costmin == Decimal("0.5") and inst.tick_size == Decimal("0.1")
    assert inst.check_order(Decimal("0.00004"), Decimal("100000")) == ERR_ORDER_MIN
    assert inst.check_order(Decimal("0.00005"), Decimal("100000.05")) == ERR_TICK_SIZE
    assert inst.check_order(Decimal("0.00005"), Decimal("9000")) == ERR_COST_MIN  # 0.45 < 0.5
    assert inst.check_order(Decimal("0.00005"), Decimal("10000")) is None
    assert inst.fee_rate(maker=False) == Decimal("0.004")
    assert inst.fee_rate(maker=True, volume_30d=Decimal("60000")) == Decimal("0.0014")
    assert inst.round_qty_down(Decimal("0.123456789")) == Decimal("0.12345678")
    assert inst.round_price(Decimal("105944.26")) == Decimal("105944.3")


def test_asset_codes_are_normalised() -> None:
    assert normalize_asset("XXBT") == "BTC" and normalize_asset("ZUSD") == "USD" and normalize_asset("USDT") == "USDT"
