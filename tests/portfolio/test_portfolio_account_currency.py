"""Notionals and unrealized PnL are in the account currency, converted from each pair's quote asset."""

from dataclasses import replace
from decimal import Decimal

from fakes.instruments import example_instruments
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.instrument import Instrument
from engine.domain.money import ZERO
from engine.domain.orders import ClientOrderId, Fill, OrderSide, TradeId
from engine.domain.positions import Position
from engine.portfolio.portfolio import Portfolio
from engine.portfolio.valuation import value_along

SHIPPED = example_instruments()  # BTC/USD, BTC/USDT, ETH/BTC
XBT = SHIPPED["BTC/USD"]
ETHXBT = SHIPPED["ETH/BTC"]


def fill(n: int, instrument: Instrument, side: OrderSide, qty: Decimal, price: Decimal, strategy: str = "s") -> Fill:
    return Fill(TradeId(f"t{n}"), ClientOrderId(f"c{n}"), instrument.pair, side, qty, price, Decimal(0),
                instrument.quote, n, strategy=strategy)  # fmt: skip


def eth_and_btc_account() -> Portfolio:
    """Long 2 ETH bought at 0.05 BTC and 0.1 BTC bought at 50000 USD, marked at 0.06 BTC and 60000 USD."""
    portfolio = Portfolio(SHIPPED, {"USD": Decimal(10000), "BTC": Decimal(1)}, "USD")
    portfolio.apply_fill(fill(1, ETHXBT, OrderSide.BUY, Decimal(2), Decimal("0.05")))
    portfolio.apply_fill(fill(2, XBT, OrderSide.BUY, Decimal("0.1"), Decimal(50000)))
    portfolio.mark("ETH/BTC", Decimal("0.06"))
    portfolio.mark("BTC/USD", Decimal(60000))
    return portfolio


def test_ethxbt_notional_and_unrealized_pnl_are_the_btc_figures_times_the_xbtusd_mark() -> None:
    portfolio = eth_and_btc_account()
    btc_notional = portfolio.pair_notional_in_quote("ETH/BTC")
    assert btc_notional == Decimal("0.12")  # 2 ETH × 0.06 BTC
    assert portfolio.pair_notional("ETH/BTC") == btc_notional * Decimal(60000) == Decimal(7200)
    # 2 × (0.06 − 0.05) = 0.02 BTC on ETH/BTC, 0.1 × (60000 − 50000) = 1000 USD on BTC/USD.
    eth_pnl_btc = portfolio.positions[("s", "ETH/BTC")].unrealized_pnl(Decimal("0.06"))
    assert eth_pnl_btc == Decimal("0.02")
    assert portfolio.unrealized_pnl() == eth_pnl_btc * Decimal(60000) + Decimal(1000) == Decimal(2200)
    assert portfolio.unvalued_notional() == {}


def test_total_notional_sums_usd_values_across_pairs() -> None:
    portfolio = eth_and_btc_account()
    assert portfolio.pair_notional("BTC/USD") == Decimal(6000)  # 0.1 BTC × 60000
    assert portfolio.total_notional() == Decimal(7200) + Decimal(6000)
    # Not the old mixed sum of 0.12 BTC and 6000 USD.
    assert portfolio.total_notional() != portfolio.pair_notional_in_quote("ETH/BTC") + Decimal(6000)


def test_a_quote_asset_without_a_price_is_left_out_and_named() -> None:
    portfolio = Portfolio(SHIPPED, {"BTC": Decimal(1)}, "USD")
    portfolio.apply_fill(fill(1, ETHXBT, OrderSide.BUY, Decimal(2), Decimal("0.05")))
    portfolio.mark("ETH/BTC", Decimal("0.06"))
    assert "BTC/USD" not in portfolio.marks
    assert portfolio.pair_notional("ETH/BTC") == ZERO
    assert portfolio.total_notional() == ZERO
    assert portfolio.unrealized_pnl() == ZERO
    assert portfolio.unvalued_notional() == {"ETH/BTC": Decimal("0.12")}
    assert portfolio.quote_value("ETH/BTC", Decimal("0.12")) is None
    assert portfolio.quote_unvalued("ETH/BTC") == "no price yet for BTC/USD (needed to value BTC in USD)"
    # The price arrives: the same figures are now valued, and nothing is left out.
    portfolio.mark("BTC/USD", Decimal(60000))
    assert portfolio.pair_notional("ETH/BTC") == Decimal(7200)
    assert portfolio.unvalued_notional() == {}
    assert portfolio.quote_unvalued("ETH/BTC") is None


def test_unknown_pairs_and_quotes_without_a_path_cannot_be_valued() -> None:
    eureth = replace(XBT, pair="ETHEUR", base="ETH", quote="EUR")
    portfolio = Portfolio({**SHIPPED, "ETHEUR": eureth}, {"EUR": Decimal(100)}, "USD")
    portfolio.apply_fill(fill(1, eureth, OrderSide.BUY, Decimal(1), Decimal(30)))
    assert portfolio.quote_unvalued("ETHEUR") == "no pair converts EUR into USD"
    assert portfolio.unvalued_notional() == {"ETHEUR": Decimal(30)}
    assert portfolio.quote_unvalued("DOGEUSD") == "DOGEUSD is not a known pair"
    assert portfolio.quote_value("DOGEUSD", Decimal(1)) is None


def test_an_inverse_quote_is_converted_along_its_path() -> None:
    # USDT is valued by dividing by BTC/USDT, then multiplying by BTC/USD.
    xbtusdt = SHIPPED["BTC/USDT"]
    portfolio = Portfolio(SHIPPED, {"USDT": Decimal(10000)}, "USD")
    portfolio.apply_fill(fill(1, xbtusdt, OrderSide.BUY, Decimal("0.1"), Decimal(60060)))
    portfolio.mark("BTC/USD", Decimal(60000))
    raw = portfolio.pair_notional_in_quote("BTC/USDT")
    path = portfolio.valuation_path("USDT")
    assert path is not None
    assert portfolio.pair_notional("BTC/USDT") == value_along(raw, path, portfolio.marks) == Decimal(6000)


def test_account_quoted_and_zero_amounts_take_no_arithmetic() -> None:
    portfolio = Portfolio(SHIPPED, {"USD": Decimal(10000)}, "USD")
    amount = Decimal("123.456789")
    assert portfolio.quote_value("BTC/USD", amount) is amount
    zero = Decimal("0.000")
    assert portfolio.quote_value("ETH/BTC", zero) is zero  # no BTC/USD mark, and none needed


def test_a_restored_position_in_an_unknown_pair_is_left_out() -> None:
    portfolio = Portfolio(SHIPPED, {"USD": Decimal(10000)}, "USD")
    portfolio.restore([Position(pair="DOGEUSD", strategy="s", qty=Decimal(5), avg_entry=Decimal(1))], [], {})
    portfolio.mark("DOGEUSD", Decimal(2))
    assert portfolio.unvalued_notional() == {"DOGEUSD": Decimal(10)}
    assert portfolio.total_notional() == ZERO and portfolio.unrealized_pnl() == ZERO


# -- the account currency's own pairs: exactly the arithmetic of before -----------------------------------------
USD_PAIRS = {"BTC/USD": XBT, "ETHUSD": replace(XBT, pair="ETHUSD", base="ETH")}
PRICES = st.decimals(min_value=Decimal("0.1"), max_value=Decimal("70000"), places=1)
QTYS = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(3), places=8)
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["mark", "buy", "sell"]),
        st.sampled_from(sorted(USD_PAIRS)),
        PRICES,
        QTYS,
        st.sampled_from(["a", "b"]),
    ),
    max_size=30,
)


def old_pair_notional(portfolio: Portfolio, pair: str) -> Decimal:
    """The figure as computed before any conversion existed."""
    mark = portfolio.marks.get(pair, ZERO)
    total = ZERO
    for (_, p_pair), p in portfolio.positions.items():
        if p_pair == pair:
            total += p.qty * mark
    return total


def old_unrealized(portfolio: Portfolio) -> Decimal:
    marks = portfolio.marks
    positions = portfolio.positions.values()
    return sum((p.unrealized_pnl(marks[p.pair]) for p in positions if p.qty and p.pair in marks), ZERO)


@settings(deadline=None, max_examples=150)
@given(STEPS)
def test_usd_quoted_figures_equal_the_old_arithmetic(steps: list[tuple[str, str, Decimal, Decimal, str]]) -> None:
    portfolio = Portfolio({**SHIPPED, **USD_PAIRS}, {"USD": Decimal(10**9)}, "USD")
    for n, (kind, pair, price, qty, strategy) in enumerate(steps):
        if kind == "mark":
            portfolio.mark(pair, price)
            continue
        side = OrderSide.BUY if kind == "buy" else OrderSide.SELL
        held = portfolio.position_qty(strategy, pair)
        if side is OrderSide.SELL:
            qty = min(qty, held)
            if not qty:
                continue
        portfolio.apply_fill(fill(n, USD_PAIRS[pair], side, qty, price, strategy))
    old_total = ZERO
    for pair in {p for _, p in portfolio.positions}:
        old_total += old_pair_notional(portfolio, pair)
    for pair in USD_PAIRS:
        new, old = portfolio.pair_notional(pair), old_pair_notional(portfolio, pair)
        assert new == old and str(new) == str(old)
    assert str(portfolio.total_notional()) == str(old_total)
    assert str(portfolio.unrealized_pnl()) == str(old_unrealized(portfolio))
    assert portfolio.unvalued_notional() == {}
