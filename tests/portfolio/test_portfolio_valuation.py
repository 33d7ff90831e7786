"""Every held asset is valued in the account currency (direct, inverse, two hops) or reported as unvalued."""

from dataclasses import replace
from decimal import Decimal, localcontext

import pytest
from fakes.instruments import example_instruments
from fakes.mcp_harness import paper_config, running_engine
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.instrument import Instrument
from engine.domain.orders import ClientOrderId, Fill, OrderSide, TradeId
from engine.portfolio import Hop, Portfolio, ValuationPath, valuation_paths, value_along

SHIPPED = example_instruments()  # BTC/USD, BTC/USDT, ETH/BTC
XBT = SHIPPED["BTC/USD"]
# A pair whose base is the account currency: USDT is valued by dividing by its mark.
USDUSDT = replace(XBT, pair="USDUSDT", ws_symbol="USD/USDT", rest_name="USDUSDT", base="USD", quote="USDT")


def fill(n: int, instrument: Instrument, side: OrderSide, qty: Decimal, price: Decimal) -> Fill:
    return Fill(TradeId(f"t{n}"), ClientOrderId(f"c{n}"), instrument.pair, side, qty, price, Decimal(0),
                instrument.quote, n, strategy="s")  # fmt: skip


# -- paths ------------------------------------------------------------------------------------------------------
def test_paths_over_the_shipped_catalog() -> None:
    paths = valuation_paths(SHIPPED, "USD")
    assert paths["USD"].hops == ()
    assert paths["BTC"].hops == (Hop("BTC/USD"),)
    assert paths["BTC"].direct_pair == "BTC/USD"
    assert paths["ETH"].hops == (Hop("ETH/BTC"), Hop("BTC/USD"))
    # No USDTUSD pair: USDT -> BTC by dividing by BTC/USDT, then BTC -> USD.
    assert paths["USDT"].hops == (Hop("BTC/USDT", inverse=True), Hop("BTC/USD"))
    assert paths["ETH"].direct_pair is None and paths["USDT"].pairs == ("BTC/USDT", "BTC/USD")


def test_paths_in_a_bitcoin_account_divide() -> None:
    paths = valuation_paths(SHIPPED, "BTC")
    assert paths["USD"].hops == (Hop("BTC/USD", inverse=True),)
    assert paths["ETH"].hops == (Hop("ETH/BTC"),)
    assert paths["BTC"].hops == ()


def test_shortest_path_wins_and_ties_are_broken_the_same_way_whatever_the_order() -> None:
    with_usdusdt = {**SHIPPED, "USDUSDT": USDUSDT}
    assert valuation_paths(with_usdusdt, "USD")["USDT"].hops == (Hop("USDUSDT", inverse=True),)
    # ETH -> USD two ways, both two hops and no division: the sorted pair names decide (ETH/BTC < ETH/USDT).
    ethusdt = replace(XBT, pair="ETH/USDT", base="ETH", quote="USDT")
    usdtusd = replace(XBT, pair="USDTUSD", base="USDT", quote="USD")
    instruments = {**SHIPPED, "ETH/USDT": ethusdt, "USDTUSD": usdtusd}
    expected = (Hop("ETH/BTC"), Hop("BTC/USD"))
    assert valuation_paths(instruments, "USD")["ETH"].hops == expected
    assert valuation_paths(dict(reversed(list(instruments.items()))), "USD")["ETH"].hops == expected
    # At equal length, fewer divisions first: multiply by USDTUSD rather than divide by USDUSDT.
    both = {**SHIPPED, "USDUSDT": USDUSDT, "USDTUSD": usdtusd}
    assert valuation_paths(both, "USD")["USDT"].hops == (Hop("USDTUSD"),)


def test_an_asset_three_hops_away_has_no_path() -> None:
    solx = replace(XBT, pair="SOLETH", base="SOL", quote="ETH")
    paths = valuation_paths({**SHIPPED, "SOLETH": solx}, "USD")
    assert "SOL" not in paths and "ETH" in paths


# -- pricing ----------------------------------------------------------------------------------------------------
def test_value_along_direct_inverse_and_two_hops() -> None:
    marks = {"BTC/USD": Decimal("60000.0"), "ETH/BTC": Decimal("0.05"), "BTC/USDT": Decimal("60060.0")}
    paths = valuation_paths(SHIPPED, "USD")
    assert value_along(Decimal("0.5"), paths["BTC"], marks) == Decimal(30000)
    assert value_along(Decimal(2), paths["ETH"], marks) == Decimal(6000)  # 2 × 0.05 × 60000
    usdt = value_along(Decimal("1001"), paths["USDT"], marks)
    assert usdt == Decimal("1001") / Decimal("60060.0") * Decimal("60000.0")
    assert value_along(Decimal(7), paths["USD"], marks) == Decimal(7)
    in_btc = valuation_paths(SHIPPED, "BTC")
    assert value_along(Decimal(30000), in_btc["USD"], marks) == Decimal("0.5")


def test_value_along_is_none_when_a_mark_is_missing_or_a_divisor_is_zero() -> None:
    path = ValuationPath("ETH", (Hop("ETH/BTC"), Hop("BTC/USD")))
    assert value_along(Decimal(1), path, {"BTC/USD": Decimal(60000)}) is None
    assert value_along(Decimal(1), path, {"ETH/BTC": Decimal("0.05")}) is None
    inverse = ValuationPath("USD", (Hop("BTC/USD", inverse=True),))
    assert value_along(Decimal(1), inverse, {"BTC/USD": Decimal(0)}) is None


def test_division_keeps_28_digits_whatever_the_callers_context() -> None:
    inverse = ValuationPath("USD", (Hop("BTC/USD", inverse=True),))
    marks = {"BTC/USD": Decimal(3)}
    expected = Decimal("0.3333333333333333333333333333")
    assert value_along(Decimal(1), inverse, marks) == expected
    with localcontext() as ctx:
        ctx.prec = 5
        assert value_along(Decimal(1), inverse, marks) == expected


# -- the portfolio ----------------------------------------------------------------------------------------------
def test_equity_counts_eth_through_ethxbt_and_xbtusd() -> None:
    portfolio = Portfolio(SHIPPED, {"USD": Decimal(100), "ETH": Decimal(2)}, "USD")
    assert portfolio.equity() == Decimal(100)
    assert portfolio.unvalued() == {"ETH": Decimal(2)}  # no mark yet on either pair
    portfolio.mark("BTC/USD", Decimal(60000))
    assert portfolio.unvalued() == {"ETH": Decimal(2)}  # ETH/BTC still missing
    assert portfolio.asset_value("ETH", Decimal(2)) is None
    portfolio.mark("ETH/BTC", Decimal("0.05"))
    assert portfolio.equity() == Decimal(6100)
    assert portfolio.asset_value("ETH", Decimal(2)) == Decimal(6000)
    assert portfolio.unvalued() == {}


def test_inverse_pair_values_the_quote_asset() -> None:
    portfolio = Portfolio({"BTC/USD": XBT, "USDUSDT": USDUSDT}, {"USD": Decimal(10), "USDT": Decimal(1002)}, "USD")
    portfolio.mark("USDUSDT", Decimal("1.002"))
    assert portfolio.equity() == Decimal(1010)
    assert portfolio.asset_value("USDT", Decimal(1002)) == Decimal(1000)


def test_usdt_without_any_path_is_unvalued_and_reported() -> None:
    instruments = {"BTC/USD": XBT, "ETH/BTC": SHIPPED["ETH/BTC"]}  # no USDTUSD, no BTC/USDT
    portfolio = Portfolio(instruments, {"USD": Decimal(50), "USDT": Decimal(500), "BTC": Decimal(0)}, "USD")
    portfolio.mark("BTC/USD", Decimal(60000))
    assert portfolio.valuation_path("USDT") is None
    assert portfolio.asset_value("USDT", Decimal(500)) is None
    assert portfolio.equity() == Decimal(50)
    assert portfolio.unvalued() == {"USDT": Decimal(500)}  # zero holdings are not listed


def test_usdt_in_the_shipped_catalog_is_valued_once_both_marks_are_known() -> None:
    portfolio = Portfolio(SHIPPED, {"USDT": Decimal(6006)}, "USD")
    portfolio.mark("BTC/USD", Decimal(60000))
    assert portfolio.unvalued() == {"USDT": Decimal(6006)}
    portfolio.mark("BTC/USDT", Decimal(60060))
    assert portfolio.equity() == Decimal(6000)
    assert portfolio.unvalued() == {}


# -- the equity meter -------------------------------------------------------------------------------------------
def test_meter_follows_every_pair_on_a_two_hop_path() -> None:
    portfolio = Portfolio(SHIPPED, {"BTC": Decimal(1)}, "USD")
    portfolio.mark("BTC/USD", Decimal(60000))
    portfolio.mark("ETH/BTC", Decimal("0.05"))
    meter = portfolio.equity_meter()
    assert meter.value() == Decimal(60000)
    assert meter._pair == "BTC/USD"  # one directly valued asset: the incremental path
    # Buy 2 ETH for 0.1 BTC: now BTC and ETH are held, ETH through ETH/BTC × BTC/USD.
    portfolio.apply_fill(fill(1, SHIPPED["ETH/BTC"], OrderSide.BUY, Decimal(2), Decimal("0.05")))
    assert meter.value() == portfolio.equity() == Decimal(60000)
    assert meter._pair is None
    # Sell the BTC left for 54,000 USD: ETH is the only asset not in USD, valued through two pairs.
    portfolio.apply_fill(fill(2, XBT, OrderSide.SELL, Decimal("0.9"), Decimal(60000)))
    assert meter.value() == portfolio.equity() == Decimal(60000)
    assert meter._pair is None
    portfolio.mark("ETH/BTC", Decimal("0.06"))  # the first hop moves: 54,000 + 2 × 0.06 × 60,000
    assert meter.value() == portfolio.equity() == Decimal(61200)
    portfolio.mark("BTC/USD", Decimal(50000))  # the second hop moves: 54,000 + 2 × 0.06 × 50,000
    assert meter.value() == portfolio.equity() == Decimal(60000)


def test_meter_does_not_take_the_incremental_path_for_an_inverse_asset() -> None:
    portfolio = Portfolio({"USDUSDT": USDUSDT}, {"USDT": Decimal(1000)}, "USD")
    portfolio.mark("USDUSDT", Decimal(2))
    meter = portfolio.equity_meter()
    assert meter.value() == Decimal(500)
    portfolio.mark("USDUSDT", Decimal(4))
    assert meter.value() == portfolio.equity() == Decimal(250)


CATALOGS = {"shipped": SHIPPED, "with_usdusdt": {**SHIPPED, "USDUSDT": USDUSDT}}
PRICES = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("70000"), places=2)
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["mark", "buy", "sell"]),
        st.sampled_from(sorted(CATALOGS["with_usdusdt"])),
        PRICES,
        st.integers(1, 10),
    ),
    max_size=40,
)
OPENINGS = st.fixed_dictionaries(
    {},
    optional={
        asset: st.decimals(min_value=Decimal(0), max_value=Decimal(10000), places=4)
        for asset in ("USD", "BTC", "ETH", "USDT")
    },
)


@settings(deadline=None, max_examples=200)
@given(st.sampled_from(sorted(CATALOGS)), OPENINGS, STEPS)
def test_meter_equals_equity_over_fills_and_marks_on_every_kind_of_path(
    catalog: str, opening: dict[str, Decimal], steps: list[tuple[str, str, Decimal, int]]
) -> None:
    instruments = CATALOGS[catalog]
    portfolio = Portfolio(instruments, opening, "USD")
    meter = portfolio.equity_meter()
    assert meter.value() == portfolio.equity()
    for n, (kind, pair, price, tenths) in enumerate(steps):
        instrument = instruments.get(pair)
        if instrument is None:
            continue
        if kind == "mark":
            portfolio.mark(pair, price)
        else:
            held = portfolio.balances.total(instrument.base)
            cash = portfolio.balances.total(instrument.quote)
            qty = instrument.round_qty_down((held if kind == "sell" else cash / price) * tenths / 10)
            if qty > 0:
                side = OrderSide.BUY if kind == "buy" else OrderSide.SELL
                portfolio.apply_fill(fill(n, instrument, side, qty, price))
        value, full = meter.value(), portfolio.equity()
        assert value == full and str(value) == str(full)
        # What equity leaves out is exactly what unvalued() lists.
        priced = {a: portfolio.asset_value(a, t) for a, t in portfolio.balances.totals() if t}
        assert {a for a, v in priced.items() if v is None} == set(portfolio.unvalued())


# -- the views the MCP tools return -----------------------------------------------------------------------------
@pytest.mark.anyio
async def test_balance_and_status_views_report_values_and_unvalued_assets() -> None:
    config = paper_config(paper={"starting_balances": {"USD": "10000", "USDT": "600.6", "ETH": "2"}})
    async with running_engine(config, instruments=SHIPPED) as (engine, facade):
        # The replay marks BTC/USD only: ETH (ETH/BTC missing) and USDT (BTC/USDT missing) cannot be priced yet.
        btc_usd = engine.portfolio.marks["BTC/USD"]
        balance = await facade.balance()
        views = {a.asset: a for a in balance.assets}
        assert balance.unvalued == {"ETH": Decimal(2), "USDT": Decimal("600.6")}
        assert (await facade.status()).unvalued == balance.unvalued
        assert views["ETH"].value is None and views["USDT"].value is None
        assert views["USD"].value == views["USD"].total
        priced = [a.value for a in balance.assets if a.value is not None]
        assert balance.equity == sum(priced, Decimal(0))
        dumped = balance.model_dump(mode="json")
        assert dumped["unvalued"] == {"ETH": "2", "USDT": "600.6"}
        # Once both missing pairs have a mark, everything is valued.
        engine.portfolio.mark("ETH/BTC", Decimal("0.05"))
        engine.portfolio.mark("BTC/USDT", btc_usd * Decimal("1.001"))
        balance = await facade.balance()
        views = {a.asset: a for a in balance.assets}
        assert balance.unvalued == {} and (await facade.status()).unvalued == {}
        assert views["ETH"].value == Decimal(2) * Decimal("0.05") * btc_usd
        assert views["USDT"].value is not None and abs(views["USDT"].value - Decimal(600)) < Decimal("0.000001")
        # USDT's value came through a division (28 digits): summed in another order, the last digit may differ.
        total = sum((a.value for a in balance.assets if a.value is not None), Decimal(0))
        assert abs(balance.equity - total) < Decimal("1e-18")
