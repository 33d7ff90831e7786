"""Risk refuses only what it should: Kraken's rules as Kraken applies them, and never an exit for a limit.

* No order that Kraken would accept (by the pair's AssetPairs rules, written out here) is refused locally for
  precision, minimum or tick reasons; a market order is never tick-checked.
* No exit (a sell within the position) is refused by a size, notional, exposure, open-order or tick rule, whatever
  the limits and the exposure; only for lacking the asset, or for what Kraken itself refuses (saying so).
"""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.instrument import Instrument
from engine.domain.orders import ClientOrderId, OrderSide, OrderType
from engine.exchanges.port import OrderRequest
from engine.risk.checks import ExposureSnapshot, Refusal, RiskEngine
from engine.risk.limits import RiskLimits

KRAKEN_ERRORS = ("EOrder:", "EGeneral:")
TINY = Decimal("0.0001")
TIGHT = RiskLimits(max_order_qty=TINY, max_order_notional=TINY, max_pair_notional=TINY, max_total_notional=TINY,
                   max_open_orders=1)  # fmt: skip


@st.composite
def instruments(draw: st.DrawFn) -> Instrument:
    pair_decimals = draw(st.integers(0, 6))
    tick = Decimal(draw(st.sampled_from([1, 5, 25]))).scaleb(-pair_decimals)
    lot_decimals = draw(st.integers(0, 8))
    lot = Decimal(1).scaleb(-lot_decimals)
    return Instrument(
        pair="AAA/USD",
        ws_symbol="AAA/USD",
        rest_name="AAAUSD",
        base="AAA",
        quote="USD",
        pair_decimals=pair_decimals,
        lot_decimals=lot_decimals,
        cost_decimals=draw(st.integers(2, 8)),
        ordermin=lot * draw(st.integers(0, 1000)),
        costmin=Decimal(draw(st.integers(0, 500))) / 100,
        tick_size=tick,
    )


def request(side: OrderSide, qty: Decimal, limit: Decimal | None) -> OrderRequest:
    order_type = OrderType.MARKET if limit is None else OrderType.LIMIT
    return OrderRequest(ClientOrderId("r-1"), "AAA/USD", side, order_type, qty, limit, 1, "s")


def exposure(*, quote: Decimal, base: Decimal, notional: Decimal, open_orders: int, unvalued: str) -> ExposureSnapshot:
    return ExposureSnapshot(notional, notional, open_orders, quote, base, base, "USD", None, unvalued)


def kraken_accepts(inst: Instrument, qty: Decimal, limit: Decimal | None, ref: Decimal) -> bool:
    """Kraken's AssetPairs rules, written out: whole lots, at least ordermin; a limit on the tick; the cost at
    least costmin (a market order's at any price within a tick of the reference: Kraken prices it at the book)."""
    lot = Decimal(1).scaleb(-inst.lot_decimals)
    if qty <= 0 or qty % lot != 0 or qty < inst.ordermin:
        return False
    if limit is not None:
        return limit > 0 and limit % inst.tick_size == 0 and qty * limit >= inst.costmin
    return qty * (ref - inst.tick_size) >= inst.costmin


@st.composite
def orders(draw: st.DrawFn, inst: Instrument) -> tuple[Decimal, Decimal | None, Decimal]:
    """(qty, limit or None, reference price): quantities in whole lots, reference prices anywhere (off the tick)."""
    lot = Decimal(1).scaleb(-inst.lot_decimals)
    qty = lot * draw(st.integers(1, 10**6))
    ref = draw(st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100000), places=6))
    limit = inst.tick_size * draw(st.integers(1, 10**6)) if draw(st.booleans()) else None
    return qty, limit, ref


@settings(max_examples=400, deadline=None)
@given(data=st.data(), side=st.sampled_from(list(OrderSide)))
def test_no_order_kraken_accepts_is_refused_for_precision_minimum_or_tick(data: st.DataObject, side: OrderSide) -> None:
    inst = data.draw(instruments())
    qty, limit, ref = data.draw(orders(inst))
    if not kraken_accepts(inst, qty, limit, ref):
        return
    risk = RiskEngine(data.draw(st.sampled_from([TIGHT, RiskLimits(), RiskLimits.unbounded()])), RiskLimits.unbounded())
    ample = exposure(quote=Decimal(10) ** 15, base=qty, notional=Decimal(0), open_orders=0, unvalued="")
    refusal = risk.assess(request(side, qty, limit), inst, ref, ample)
    assert refusal is None or not refusal.rule.startswith(KRAKEN_ERRORS), refusal
    # Under no limits, with the funds and the asset at hand, it goes.
    assert RiskEngine(RiskLimits.unbounded(), RiskLimits.unbounded()).assess(
        request(side, qty, limit), inst, ref, ample
    ) is None  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    notional=st.decimals(min_value=0, max_value=Decimal(10) ** 9, places=2),
    open_orders=st.integers(0, 100),
    unvalued=st.sampled_from(["", "no price for EUR in USD"]),
    limits=st.sampled_from([TIGHT, RiskLimits()]),
)
def test_no_exit_is_refused_by_a_size_notional_exposure_or_tick_rule(
    data: st.DataObject, notional: Decimal, open_orders: int, unvalued: str, limits: RiskLimits
) -> None:
    inst = data.draw(instruments())
    qty, limit, ref = data.draw(orders(inst))
    held = qty + Decimal(1).scaleb(-inst.lot_decimals) * data.draw(st.integers(0, 1000))
    snapshot = exposure(quote=Decimal(0), base=held, notional=notional, open_orders=open_orders, unvalued=unvalued)
    refusal = RiskEngine(limits, limits).assess(request(OrderSide.SELL, qty, limit), inst, ref, snapshot)
    if kraken_accepts(inst, qty, limit, ref):
        assert refusal is None
    elif refusal is not None:
        # Only what Kraken itself refuses, and the reason says which of Kraken's rules.
        assert refusal.rule.startswith(KRAKEN_ERRORS), refusal
        assert refusal.reason.startswith(refusal.rule + ": selling ")
        assert "Kraken" in refusal.reason


def btc_usd() -> Instrument:
    """Kraken's BTC/USD rules (tick 0.1, lot 8 decimals, ordermin 0.00005, costmin 0.5), by hand."""
    return Instrument(pair="BTC/USD", ws_symbol="BTC/USD", rest_name="XXBTZUSD", base="BTC", quote="USD",
                      pair_decimals=1, lot_decimals=8, cost_decimals=5, ordermin=Decimal("0.00005"),
                      costmin=Decimal("0.5"), tick_size=Decimal("0.1"))  # fmt: skip


def test_a_market_exit_decided_on_a_close_off_the_tick_goes_under_any_limits() -> None:
    inst = btc_usd()
    snapshot = exposure(quote=Decimal(0), base=Decimal("5.12820512"), notional=Decimal(10**6), open_orders=50,
                        unvalued="no price for EUR in USD")  # fmt: skip
    sell = request(OrderSide.SELL, Decimal("5.12820512"), None)
    assert RiskEngine(TIGHT, TIGHT).assess(sell, inst, Decimal("123.61"), snapshot) is None


def test_a_market_entry_is_not_tick_checked_but_a_limit_price_is() -> None:
    inst = btc_usd()
    ample = exposure(quote=Decimal(10**6), base=Decimal(0), notional=Decimal(0), open_orders=0, unvalued="")
    risk = RiskEngine(RiskLimits.unbounded(), RiskLimits.unbounded())
    assert risk.assess(request(OrderSide.BUY, Decimal("8.09"), None), inst, Decimal("123.61"), ample) is None
    off_tick = risk.assess(request(OrderSide.BUY, Decimal("8.09"), Decimal("123.61")), inst, Decimal("123.6"), ample)
    assert off_tick == Refusal("EOrder:Tick size check failed", "EOrder:Tick size check failed")


def test_a_dust_exit_is_refused_with_krakens_reason_and_selling_more_than_held_for_lacking_it() -> None:
    inst = btc_usd()
    risk = RiskEngine(RiskLimits.unbounded(), RiskLimits.unbounded())
    dust = exposure(quote=Decimal(0), base=Decimal("0.00001"), notional=Decimal(0), open_orders=0, unvalued="")
    refusal = risk.assess(request(OrderSide.SELL, Decimal("0.00001"), None), inst, Decimal(60000), dust)
    assert refusal == Refusal(
        "EOrder:Order minimum not met",
        "EOrder:Order minimum not met: selling 0.00001 BTC, below Kraken's ordermin 0.00005 BTC "
        "(a dust remainder Kraken would refuse)",
    )
    lacking = risk.assess(request(OrderSide.SELL, Decimal("0.001"), None), inst, Decimal(60000), dust)
    assert lacking == Refusal("insufficient_funds", "insufficient BTC: selling 0.001, 0.00001 available")


def test_entries_are_refused_by_the_limit_they_break_named_as_the_rule() -> None:
    inst = btc_usd()
    ample = exposure(quote=Decimal(10**6), base=Decimal(0), notional=Decimal(0), open_orders=0, unvalued="")
    refusal = RiskEngine(RiskLimits(), RiskLimits()).assess(
        request(OrderSide.BUY, Decimal("8.09"), None), inst, Decimal("123.61"), ample
    )
    assert refusal == Refusal("max_order_qty", "order size 8.09 exceeds max_order_qty 1")
