"""Realized PnL, fees and round trips in the account currency: each fill valued when it is booked."""

from dataclasses import dataclass, replace
from decimal import Decimal

import pytest
from fakes.instruments import example_instruments
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.instrument import Instrument
from engine.domain.orders import ClientOrderId, Fill, OrderSide, TradeId
from engine.domain.positions import Position
from engine.portfolio.performance import ClosedTrade, PerformanceError, compute_group_reports, compute_trade_report
from engine.portfolio.portfolio import FillValue, Portfolio

SHIPPED = example_instruments()  # BTC/USD, BTC/USDT, ETH/BTC
XBT = SHIPPED["BTC/USD"]
ETHXBT = SHIPPED["ETH/BTC"]
D = Decimal


def fill(
    n: int,
    instrument: Instrument,
    side: OrderSide,
    qty: Decimal,
    price: Decimal,
    fee: Decimal = Decimal(0),
    fee_asset: str | None = None,
    strategy: str = "s",
) -> Fill:
    return Fill(TradeId(f"t{n}"), ClientOrderId(f"c{n}"), instrument.pair, side, qty, price, fee,
                fee_asset or instrument.quote, n, strategy=strategy)  # fmt: skip


def eth_round_trip(portfolio: Portfolio) -> ClosedTrade:
    """2 ETH bought at 0.05 BTC (BTC/USD at 50000), sold at 0.06 BTC (BTC/USD at 60000), with BTC fees."""
    portfolio.mark("BTC/USD", D(50000))
    portfolio.apply_fill(fill(1, ETHXBT, OrderSide.BUY, D(2), D("0.05"), D("0.0004")))
    portfolio.mark("BTC/USD", D(60000))
    _, closed = portfolio.apply_fill(fill(2, ETHXBT, OrderSide.SELL, D(2), D("0.06"), D("0.00048")))
    assert closed is not None
    return closed


def test_an_ethxbt_round_trip_is_valued_fill_by_fill_at_the_marks_of_each_fill() -> None:
    portfolio = Portfolio(SHIPPED, {"USD": D(0), "BTC": D(1)}, "USD")
    closed = eth_round_trip(portfolio)
    # In the pair's quote (BTC): 2 × 0.01 realized, 0.00088 fees.
    assert closed.pnl == D("0.01912") and closed.fees == D("0.00088")
    # In USD: the buy's fee at 50000, the sell's fee and realized PnL at 60000.
    assert closed.fees_value == D("0.0004") * 50000 + D("0.00048") * 60000 == D("48.8")
    assert closed.pnl_value == D("0.02") * 60000 - D("48.8") == D("1151.2")
    assert closed.value_currency == "USD"
    assert portfolio.realized_pnl == D(1200) and portfolio.fees_paid == D("48.8")
    assert portfolio.realized_unconverted == {} and portfolio.fees_unconverted == {}
    assert portfolio.fill_values == {
        TradeId("t1"): FillValue(D(20), D(0)),
        TradeId("t2"): FillValue(D("28.8"), D(1200)),
    }


def test_an_account_quoted_round_trip_carries_its_own_figures_untouched() -> None:
    portfolio = Portfolio(SHIPPED, {"USD": D(10000)}, "USD")
    portfolio.apply_fill(fill(1, XBT, OrderSide.BUY, D("0.1"), D(50000), D("20.1")))
    _, closed = portfolio.apply_fill(fill(2, XBT, OrderSide.SELL, D("0.1"), D(51000), D("20.4")))
    assert closed is not None
    assert closed.pnl_value is closed.pnl and closed.fees_value is closed.fees  # the same Decimals
    assert closed.pnl == D("59.5")
    assert portfolio.fill_values == {}  # nothing needed a conversion: nothing to store
    assert portfolio.realized_pnl == D(100) and portfolio.fees_paid == D("40.5")


def test_an_amount_without_a_price_is_tallied_in_its_asset_and_the_trip_is_unvalued() -> None:
    portfolio = Portfolio(SHIPPED, {"BTC": D(1)}, "USD")
    portfolio.apply_fill(fill(1, ETHXBT, OrderSide.BUY, D(2), D("0.05"), D("0.0004")))
    _, closed = portfolio.apply_fill(fill(2, ETHXBT, OrderSide.SELL, D(2), D("0.06"), D("0.00048")))
    assert closed is not None
    assert closed.pnl_value is None and closed.fees_value is None
    assert closed.pnl == D("0.01912")  # the quote figures are always known
    # Never added as if it were USD.
    assert portfolio.realized_pnl == 0 and portfolio.fees_paid == 0
    assert portfolio.fees_unconverted == {"BTC": D("0.00088")}
    assert portfolio.realized_unconverted == {"BTC": D("0.02")}
    assert portfolio.fill_values[TradeId("t1")] == FillValue(None, D(0))  # zero is zero, priced or not


def test_a_trip_is_unvalued_when_only_one_of_its_fills_could_not_be_priced() -> None:
    portfolio = Portfolio(SHIPPED, {"BTC": D(1)}, "USD")
    portfolio.apply_fill(fill(1, ETHXBT, OrderSide.BUY, D(2), D("0.05"), D("0.0004")))  # no BTC/USD mark yet
    portfolio.mark("BTC/USD", D(60000))
    _, closed = portfolio.apply_fill(fill(2, ETHXBT, OrderSide.SELL, D(2), D("0.06"), D("0.00048")))
    assert closed is not None and closed.pnl_value is None and closed.fees_value is None
    assert portfolio.fees_paid == D("28.8") and portfolio.realized_pnl == D(1200)
    assert portfolio.fees_unconverted == {"BTC": D("0.0004")}


def test_a_fee_in_another_asset_is_valued_in_that_asset() -> None:
    # An BTC/USD trip whose exit fee is paid in BTC: the fee is valued at the BTC/USD mark, the rest is USD already.
    portfolio = Portfolio(SHIPPED, {"USD": D(10000), "BTC": D(1)}, "USD")
    portfolio.apply_fill(fill(1, XBT, OrderSide.BUY, D("0.1"), D(50000), D(20)))
    portfolio.mark("BTC/USD", D(51000))
    _, closed = portfolio.apply_fill(fill(2, XBT, OrderSide.SELL, D("0.1"), D(51000), D("0.0004"), "BTC"))
    assert closed is not None
    assert closed.fees_value == D(20) + D("0.0004") * 51000 == D("40.4")
    assert closed.pnl_value == D(100) - D("40.4")
    assert portfolio.fees_paid == D("40.4") and portfolio.realized_pnl == D(100)
    assert portfolio.fill_values == {TradeId("t2"): FillValue(D("20.4000"), D(100))}


def test_preset_values_make_a_rebooking_give_the_first_booking_s_figures() -> None:
    first = Portfolio(SHIPPED, {"USD": D(10000), "BTC": D(1)}, "USD")
    closed = eth_round_trip(first)
    first.apply_fill(fill(3, XBT, OrderSide.BUY, D("0.1"), D(60000), D(24)))
    first.apply_fill(fill(4, ETHXBT, OrderSide.BUY, D(1), D("0.07"), D("0.0002")))  # still open

    @dataclass(frozen=True)
    class Stored:
        trade_id: str
        fee_value: Decimal | None
        realized_value: Decimal | None
        value_currency: str | None

    stored = [Stored(t, v.fee, v.realized, "USD") for t, v in first.fill_values.items()]
    stored.append(Stored("t3", None, None, None))  # an account-quoted fill: none stored, none needed
    fills = [
        fill(1, ETHXBT, OrderSide.BUY, D(2), D("0.05"), D("0.0004")),
        fill(2, ETHXBT, OrderSide.SELL, D(2), D("0.06"), D("0.00048")),
        fill(3, XBT, OrderSide.BUY, D("0.1"), D(60000), D(24)),
        fill(4, ETHXBT, OrderSide.BUY, D(1), D("0.07"), D("0.0002")),
    ]
    again = Portfolio(SHIPPED, {"USD": D(10000), "BTC": D(1)}, "USD")
    again.mark("BTC/USD", D(1))  # a restart's marks are nothing like those of the first booking
    again.preset_fill_values(stored)
    for f in fills:
        again.apply_fill(f)
    assert again.round_trips == [closed]
    assert (again.realized_pnl, again.fees_paid) == (first.realized_pnl, first.fees_paid)
    assert again.fill_values == first.fill_values
    assert again.trips == first.trips

    # Without the presets the same fills would be valued at today's marks: different figures.
    naive = Portfolio(SHIPPED, {"USD": D(10000), "BTC": D(1)}, "USD")
    naive.mark("BTC/USD", D(1))
    for f in fills:
        naive.apply_fill(f)
    assert naive.fees_paid != first.fees_paid


def test_a_fill_stored_without_values_or_in_another_currency_is_unknown_not_revalued() -> None:
    @dataclass(frozen=True)
    class Stored:
        trade_id: str
        fee_value: Decimal | None
        realized_value: Decimal | None
        value_currency: str | None

    portfolio = Portfolio(SHIPPED, {"USD": D(0), "BTC": D(1)}, "USD")
    portfolio.mark("BTC/USD", D(60000))
    portfolio.preset_fill_values([Stored("t1", None, None, None), Stored("t2", D(1), D(2), "EUR")])
    portfolio.apply_fill(fill(1, ETHXBT, OrderSide.BUY, D(2), D("0.05"), D("0.0004")))
    _, closed = portfolio.apply_fill(fill(2, ETHXBT, OrderSide.SELL, D(2), D("0.06"), D("0.00048")))
    assert closed is not None and closed.pnl_value is None
    assert portfolio.fees_paid == 0 and portfolio.realized_pnl == 0
    assert portfolio.fees_unconverted == {"BTC": D("0.00088")} and portfolio.realized_unconverted == {"BTC": D("0.02")}
    # A new fill (no preset) is valued at the marks as usual.
    portfolio.apply_fill(fill(3, ETHXBT, OrderSide.BUY, D(1), D("0.05"), D("0.0001")))
    assert portfolio.fees_paid == D(6)


def test_restored_positions_of_other_quotes_go_to_the_unconverted_tallies() -> None:
    portfolio = Portfolio(SHIPPED, {"USD": D(10000)}, "USD")
    usd = Position(pair="BTC/USD", strategy="s", realized_pnl=D(5), fees=D(1))
    eth = Position(pair="ETH/BTC", strategy="s", realized_pnl=D("0.01"), fees=D("0.001"))
    portfolio.restore([usd, eth], [], {})
    assert portfolio.realized_pnl == D(5) and portfolio.fees_paid == D(1)
    assert portfolio.realized_unconverted == {"BTC": D("0.01")} and portfolio.fees_unconverted == {"BTC": D("0.001")}


# -- reports --------------------------------------------------------------------------------------------------
def trade(pair: str, pnl: str, fees: str, value: str | None, fees_value: str | None) -> ClosedTrade:
    return ClosedTrade(pair, "s", 1, 2, D(1), D(1), D(1), D(pnl), D(fees),
                       None if value is None else D(value), None if fees_value is None else D(fees_value),
                       "USD")  # fmt: skip


def test_reports_add_account_currency_values_and_list_the_unvalued() -> None:
    trades = [
        trade("BTC/USD", "100", "10", "100", "10"),
        trade("ETH/BTC", "0.01", "0.001", "600", "60"),  # 0.01 BTC would have counted as 0.01 USD before
        trade("ETH/BTC", "-0.005", "0.001", "-300", "60"),
        trade("ETH/BTC", "0.002", "0.0005", None, None),  # not valued: listed, never added
    ]
    report = compute_trade_report(trades)
    assert report.trade_count == 4 and report.wins == 3 and report.losses == 1
    assert report.win_rate == D("0.75")
    assert report.realized_pnl == D(400) and report.fees_paid == D(130)
    assert report.gross_profit == D(700) and report.gross_loss == D(300)
    assert report.profit_factor == D("2.3333")
    assert report.expectancy == D("133.3333333333333333333333333333333")  # 400 over the three valued trades
    assert report.avg_win == D(350) and report.avg_loss == D(-300)
    assert report.best_trade == D(600) and report.worst_trade == D(-300)
    assert report.unvalued_trades == 1
    assert report.unvalued_pnl == {"ETH/BTC": D("0.002")} and report.unvalued_fees == {"ETH/BTC": D("0.0005")}
    assert report.unvalued_dict() == {"pnl": {"ETH/BTC": "0.002"}, "fees": {"ETH/BTC": "0.0005"}}
    assert "unvalued_trades" not in report.to_dict()  # the scalar metrics keep their keys
    by_pair = compute_group_reports(trades, "pair")
    assert by_pair["ETH/BTC"].realized_pnl == D(300) and by_pair["ETH/BTC"].unvalued_trades == 1
    assert by_pair["BTC/USD"].unvalued_pnl == {}


def test_values_in_two_currencies_are_refused() -> None:
    with pytest.raises(PerformanceError, match="USD and EUR"):
        compute_trade_report([trade("BTC/USD", "1", "0", "1", "0"), replace(trade("X", "1", "0", "1", "0"),
                                                                           value_currency="EUR")])  # fmt: skip


def test_a_trade_knows_both_values_or_neither() -> None:
    with pytest.raises(PerformanceError, match="together"):
        ClosedTrade("ETH/BTC", "s", 1, 2, D(1), D(1), D(1), D(1), D(0), None)
    with pytest.raises(PerformanceError):
        ClosedTrade("ETH/BTC", "s", 1, 2, D(1), D(1), D(1), D(1), D(0), D("NaN"), D(0))
    defaulted = ClosedTrade("BTC/USD", "s", 1, 2, D(1), D(1), D(1), D("2.5"), D("0.5"))
    assert defaulted.pnl_value is defaulted.pnl and defaulted.fees_value is defaulted.fees


# -- the account currency's own pairs: nothing changes ---------------------------------------------------------
PRICES = st.decimals(min_value=D("0.1"), max_value=D("70000"), places=1)
QTYS = st.decimals(min_value=D("0.00000001"), max_value=D(3), places=8)
FEES = st.decimals(min_value=D(0), max_value=D(50), places=5)
STEPS = st.lists(st.tuples(st.sampled_from(["buy", "sell"]), PRICES, QTYS, FEES, st.sampled_from(["a", "b"])),
                 max_size=30)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(STEPS)
def test_account_quoted_fills_book_exactly_the_old_sums(
    steps: list[tuple[str, Decimal, Decimal, Decimal, str]],
) -> None:
    portfolio = Portfolio(SHIPPED, {"USD": D(10**9), "BTC": D(1000)}, "USD")
    shadows: dict[str, Position] = {}
    fees = realized = D(0)
    for n, (side, price, qty, fee, strategy) in enumerate(steps):
        order_side = OrderSide.BUY if side == "buy" else OrderSide.SELL
        booked = fill(n, XBT, order_side, qty, price, fee, strategy=strategy)
        portfolio.apply_fill(booked)
        # The old arithmetic: every fill's fee and realized PnL added as they are.
        fees += fee
        realized += shadows.setdefault(strategy, Position(pair="BTC/USD", strategy=strategy)).apply(booked)
    assert portfolio.fees_paid == fees and portfolio.realized_pnl == realized
    assert portfolio.fill_values == {} and portfolio.fees_unconverted == {} and portfolio.realized_unconverted == {}
    for closed in portfolio.round_trips:
        assert closed.pnl_value is closed.pnl and closed.fees_value is closed.fees
