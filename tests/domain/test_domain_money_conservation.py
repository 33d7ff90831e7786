"""Across any sequence of fills and fees, no money is created or lost, and a position equals the sum of its fills."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.balances import Balances, InsufficientFunds
from engine.domain.orders import ClientOrderId, DuplicateFill, Fill, OrderSide, TradeId
from engine.domain.positions import Position

prices = st.decimals(min_value=Decimal("1"), max_value=Decimal("100000"), places=1)
quantities = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("5"), places=8)
fees = st.decimals(min_value=Decimal("0"), max_value=Decimal("50"), places=5)
fill_specs = st.lists(
    st.tuples(st.sampled_from([OrderSide.BUY, OrderSide.SELL]), quantities, prices, fees), max_size=40
)


def make_fill(n: int, side: OrderSide, qty: Decimal, price: Decimal, fee: Decimal) -> Fill:
    return Fill(TradeId(f"t{n}"), ClientOrderId(f"c{n}"), "BTC/USD", side, qty, price, fee, "USD", n)


@given(fill_specs, prices)
def test_position_pnl_matches_cash_flows(
    specs: list[tuple[OrderSide, Decimal, Decimal, Decimal]], mark: Decimal
) -> None:
    position = Position("BTC/USD", "s")
    cash = Decimal(0)
    signed_qty = Decimal(0)
    for n, (side, qty, price, fee) in enumerate(specs):
        position.apply(make_fill(n, side, qty, price, fee))
        cash += (-qty * price if side is OrderSide.BUY else qty * price) - fee
        signed_qty += qty if side is OrderSide.BUY else -qty
    assert position.qty == signed_qty
    assert position.fees == sum((s[3] for s in specs), Decimal(0))
    # Value now = cash flows + holdings at the mark = realized + unrealized - fees (exact, up to division rounding)
    value = cash + signed_qty * mark
    accounted = position.realized_pnl + position.unrealized_pnl(mark) - position.fees
    assert abs(value - accounted) <= Decimal("1e-12") * max(Decimal(1), abs(value))


@given(fill_specs)
def test_balances_conserve_money(specs: list[tuple[OrderSide, Decimal, Decimal, Decimal]]) -> None:
    start_usd, start_btc = Decimal("1000000"), Decimal("50")
    balances = Balances({"USD": start_usd, "BTC": start_btc})
    applied: list[tuple[OrderSide, Decimal, Decimal, Decimal]] = []
    for n, (side, qty, price, fee) in enumerate(specs):
        before = balances.assets()
        try:
            balances.apply_fill(make_fill(n, side, qty, price, fee), "BTC", "USD")
        except InsufficientFunds:
            assert balances.assets() == before  # a refused fill changes nothing
            continue
        applied.append((side, qty, price, fee))
    usd = start_usd + sum(((q * p if s is OrderSide.SELL else -q * p) - f for s, q, p, f in applied), Decimal(0))
    btc = start_btc + sum((q if s is OrderSide.BUY else -q for s, q, _, _ in applied), Decimal(0))
    assert balances.total("USD") == usd
    assert balances.total("BTC") == btc
    assert balances.total("USD") >= 0 and balances.total("BTC") >= 0


def test_position_refuses_duplicate_trade() -> None:
    position = Position("BTC/USD")
    f = make_fill(1, OrderSide.BUY, Decimal("1"), Decimal("100"), Decimal("0"))
    position.apply(f)
    with pytest.raises(DuplicateFill):
        position.apply(f)
    assert position.qty == Decimal("1")


def test_flip_from_long_to_short_reprices_the_remainder() -> None:
    position = Position("BTC/USD")
    position.apply(make_fill(1, OrderSide.BUY, Decimal("1"), Decimal("100"), Decimal("0")))
    realized = position.apply(make_fill(2, OrderSide.SELL, Decimal("3"), Decimal("120"), Decimal("0")))
    assert realized == Decimal("20")
    assert position.qty == Decimal("-2") and position.avg_entry == Decimal("120")


def test_holds_cannot_exceed_available() -> None:
    balances = Balances({"USD": Decimal("100")})
    balances.hold("USD", Decimal("60"))
    with pytest.raises(InsufficientFunds) as info:
        balances.hold("USD", Decimal("50"))
    assert str(info.value) == "EOrder:Insufficient funds"
    assert balances.available("USD") == Decimal("40")
    balances.release("USD", Decimal("100"))
    assert balances.held("USD") == 0
