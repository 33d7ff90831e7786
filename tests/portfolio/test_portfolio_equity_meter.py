"""The run loop's EquityMeter always equals Portfolio.equity(), digit for digit, whatever fills and marks do."""

from dataclasses import replace
from decimal import Decimal

from fakes.instruments import example_instruments
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.orders import ClientOrderId, Fill, OrderSide, TradeId
from engine.portfolio.portfolio import Portfolio

XBT = example_instruments()["BTC/USD"]
INSTRUMENTS = {
    "BTC/USD": XBT,
    "ETHUSD": replace(XBT, pair="ETHUSD", base="ETH"),
    "ETH/BTC": example_instruments()["ETH/BTC"],
}
PRICES = st.decimals(min_value=Decimal("0.5"), max_value=Decimal("70000"), places=2)
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["mark", "buy", "sell"]), st.sampled_from(sorted(INSTRUMENTS)), PRICES, st.integers(1, 9)
    ),
    max_size=40,
)
OPENINGS = st.sampled_from([{"USD": Decimal(10000)}, {"BTC": Decimal(1), "USD": Decimal(500)}, {"USD": Decimal(0)}])


@settings(deadline=None, max_examples=200)
@given(OPENINGS, STEPS)
def test_meter_equals_full_recomputation(
    opening: dict[str, Decimal], steps: list[tuple[str, str, Decimal, int]]
) -> None:
    portfolio = Portfolio(INSTRUMENTS, opening, "USD")
    meter = portfolio.equity_meter()
    assert meter.value() == portfolio.equity()
    for n, (kind, pair, price, tenths) in enumerate(steps):
        instrument = INSTRUMENTS[pair]
        if kind == "mark":
            portfolio.marks[pair] = price
        else:
            held = portfolio.balances.total(instrument.base)
            cash = portfolio.balances.total(instrument.quote)
            qty = (held if kind == "sell" else cash / price) * tenths / 10
            qty = instrument.round_qty_down(qty)
            if qty > 0:
                side = OrderSide.BUY if kind == "buy" else OrderSide.SELL
                fill = Fill(TradeId(f"t{n}"), ClientOrderId(f"c{n}"), pair, side, qty, price, Decimal(0),
                            instrument.quote, n, strategy="s")  # fmt: skip
                portfolio.apply_fill(fill)
        value, full = meter.value(), portfolio.equity()
        assert value == full and str(value) == str(full)
    # Unchanged since the last read: the same object comes back (what lets a flat curve be encoded once).
    assert meter.value() is meter.value()
