"""Slippage models and fee rounding of the simulated venue."""

from decimal import Decimal

import pytest

from engine.domain.instrument import Instrument
from engine.domain.orders import OrderSide
from engine.exchanges.paper import NO_SLIPPAGE, FixedBpsSlippage
from engine.exchanges.paper.fees import FeeMeter

D = Decimal
XBTUSDT = Instrument(
    pair="BTC/USDT",
    ws_symbol="BTC/USDT",
    rest_name="BTC/USDT",
    base="BTC",
    quote="USDT",
    pair_decimals=1,
    lot_decimals=8,
    cost_decimals=5,
    ordermin=D("0.00005"),
    costmin=D("0.5"),
    tick_size=D("0.1"),
)


def test_no_slippage_returns_the_price() -> None:
    assert NO_SLIPPAGE.adjust(OrderSide.BUY, D("100000.05"), XBTUSDT) == D("100000.05")
    assert NO_SLIPPAGE.adjust(OrderSide.SELL, D("1"), XBTUSDT) == D("1")


@pytest.mark.parametrize(
    ("bps", "price", "buy", "sell"),
    [
        ("10", "100000.0", "100100.0", "99900.0"),
        ("10", "100000.3", "100100.4", "99900.2"),  # 100100.3003 up, 99900.2997 down
        ("0", "100000.3", "100000.3", "100000.3"),
        ("2.5", "105944.3", "105970.8", "105917.8"),  # 105970.786075 up, 105917.813925 down
    ],
)
def test_fixed_bps_rounds_against_the_trader(bps: str, price: str, buy: str, sell: str) -> None:
    model = FixedBpsSlippage(D(bps))
    assert model.adjust(OrderSide.BUY, D(price), XBTUSDT) == D(buy)
    assert model.adjust(OrderSide.SELL, D(price), XBTUSDT) == D(sell)


def test_fixed_bps_sell_never_reaches_zero() -> None:
    assert FixedBpsSlippage(D("9999")).adjust(OrderSide.SELL, D("0.5"), XBTUSDT) == D("0.1")


@pytest.mark.parametrize("bps", [D("-1"), D("10000"), D("NaN")])
def test_fixed_bps_refuses_nonsense(bps: Decimal) -> None:
    with pytest.raises(ValueError, match="bps"):
        FixedBpsSlippage(bps)


def test_fee_meter_rounds_up_once_per_order_and_liquidity() -> None:
    meter = FeeMeter()
    rate = D("0.004")
    # A single fill pays ceil(cost × rate).
    assert meter.charge(maker=False, cost=D("13.078823835"), rate=rate, cost_decimals=5) == D("0.05232")
    # The next fills pay the order's rounded-up running total minus what it already paid:
    # ceil(26.15764767 × 0.004 = 0.10463059068) = 0.10464, then ceil(0.15694588602) = 0.15695.
    assert meter.charge(maker=False, cost=D("13.078823835"), rate=rate, cost_decimals=5) == D("0.05232")
    assert meter.charge(maker=False, cost=D("13.078823835"), rate=rate, cost_decimals=5) == D("0.05231")
    # Maker fills are metered on their own.
    assert meter.charge(maker=True, cost=D("1000"), rate=D("0.0025"), cost_decimals=5) == D("2.50000")


def test_fee_meter_never_charges_more_than_the_cost() -> None:
    meter = FeeMeter()
    # 1 satoshi at 100 USDT costs 0.000001: the rounded-up fee (0.00001) would exceed it.
    assert meter.charge(maker=False, cost=D("0.000001"), rate=D("0.004"), cost_decimals=5) == 0
    fees = [meter.charge(maker=False, cost=D("0.000001"), rate=D("0.004"), cost_decimals=5) for _ in range(19)]
    # After 20 such fills (0.00002 in all) the order has paid its rounded-up fee of 0.00001, once.
    assert sum(fees) == D("0.00001")
