"""Risk limits are amounts in the account currency: a pair's notional is converted from its quote asset first."""

from dataclasses import replace
from decimal import Decimal
from typing import ClassVar

from fakes.instruments import example_instruments
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.instrument import Instrument
from engine.domain.market_data import Candle
from engine.domain.money import ZERO
from engine.domain.orders import ClientOrderId, Fill, Order, OrderSide, OrderStatus, OrderType, TradeId
from engine.domain.positions import Position
from engine.exchanges.paper import PaperExchange
from engine.exchanges.port import OrderRequest
from engine.execution.order_manager import OrderManager
from engine.portfolio.performance import ClosedTrade
from engine.portfolio.portfolio import Portfolio
from engine.risk.checks import ExposureSnapshot, RiskEngine
from engine.risk.limits import RiskLimits
from engine.runtime.trader import StrategySlot, Trader
from engine.strategies.base import Param, Signal, Strategy, StrategyContext

SHIPPED = example_instruments()  # BTC/USD, BTC/USDT, ETH/BTC
XBT = SHIPPED["BTC/USD"]
ETHXBT = SHIPPED["ETH/BTC"]
ETHUSD = replace(XBT, pair="ETHUSD", ws_symbol="ETH/USD", rest_name="XETHZUSD", base="ETH")
INSTRUMENTS = {**SHIPPED, "ETHUSD": ETHUSD}
LIMITS = RiskLimits(
    max_order_qty=Decimal(100),
    max_order_notional=Decimal(2500),
    max_pair_notional=Decimal(5000),
    max_total_notional=Decimal(10000),
    max_open_orders=20,
)


class QuietListener:
    """The order manager's listener: nothing to persist in these tests."""

    async def order_intent(self, order: Order) -> None:
        return None

    def order_changed(self, order: Order) -> None:
        return None

    def fill_booked(self, fill: Fill, position: Position, closed: ClosedTrade | None, order: Order) -> None:
        return None

    def anomaly(self, kind: str, detail: str, payload: dict[str, object]) -> None:
        return None


class AlwaysBuy(Strategy):
    """Signals a buy on every candle."""

    kind = "always_buy"
    description = "buys on every candle"
    params: ClassVar[tuple[Param, ...]] = ()

    def reset(self) -> None:
        return None

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        return Signal("buy")


def make_trader(balances: dict[str, Decimal], slots: list[StrategySlot] | None = None) -> Trader:
    portfolio = Portfolio(INSTRUMENTS, balances, "USD")
    venue = PaperExchange(INSTRUMENTS, balances, clock=lambda: 1)
    oms = OrderManager(venue, portfolio, QuietListener(), "t")
    risk = RiskEngine(LIMITS, LIMITS)
    return Trader(INSTRUMENTS, venue, portfolio, risk, oms, slots or [], lambda: 1)


def slot(pair: str, amount: Decimal = Decimal(1000)) -> StrategySlot:
    return StrategySlot("s", pair, AlwaysBuy(), True, Decimal(1), amount)


def buy(pair: str, qty: str, limit: str | None = None) -> OrderRequest:
    order_type = OrderType.LIMIT if limit is not None else OrderType.MARKET
    price = Decimal(limit) if limit is not None else None
    return OrderRequest(ClientOrderId("r-1"), pair, OrderSide.BUY, order_type, Decimal(qty), price, 1, "s")


def book(trader: Trader, n: int, instrument: Instrument, qty: str, price: str) -> None:
    trader.portfolio.apply_fill(
        Fill(
            TradeId(f"t{n}"),
            ClientOrderId(f"c{n}"),
            instrument.pair,
            OrderSide.BUY,
            Decimal(qty),
            Decimal(price),
            ZERO,
            instrument.quote,
            n,
            strategy="s",
        )
    )


def check(trader: Trader, request: OrderRequest, ref_price: str) -> str | None:
    instrument = INSTRUMENTS[request.pair]
    target = slot(request.pair)
    return trader.risk.check(request, instrument, Decimal(ref_price), trader.exposure(target, instrument))


# -- conversion ----------------------------------------------------------------------------------------------------
def test_an_ethxbt_buy_over_the_usd_order_cap_is_refused_though_its_btc_notional_is_tiny() -> None:
    trader = make_trader({"BTC": Decimal(1)})
    trader.portfolio.mark("ETH/BTC", Decimal("0.05"))
    trader.portfolio.mark("BTC/USD", Decimal(60000))
    snapshot = trader.exposure(slot("ETH/BTC"), ETHXBT)
    assert snapshot.account_currency == "USD" and snapshot.quote_rate == Decimal(60000) and snapshot.unvalued == ""
    # 1 ETH × 0.05 BTC = 0.05 BTC (far below 2500), worth 0.05 × 60000 = 3000 USD (above it).
    reason = check(trader, buy("ETH/BTC", "1"), "0.05")
    assert reason == "order notional 3000.00 USD (0.05 BTC) exceeds max_order_notional 2500"
    # 0.8 ETH: 2400 USD, within every cap, and 0.04 BTC × 1.0026 of the 1 BTC free: it may go.
    assert check(trader, buy("ETH/BTC", "0.8"), "0.05") is None


def test_a_strategy_on_ethxbt_is_refused_by_the_usd_cap_through_the_trader() -> None:
    target = slot("ETH/BTC", amount=Decimal(3000))  # 3000 USD a signal: 0.05 BTC at 60000, 1 ETH at 0.05
    trader = make_trader({"BTC": Decimal(1)}, [target])
    trader.portfolio.mark("BTC/USD", Decimal(60000))
    candle = Candle("ETH/BTC", 0, 60, Decimal("0.05"), Decimal("0.05"), Decimal("0.05"), Decimal("0.05"), Decimal(9))
    assert trader.on_market(candle) == []
    assert target.refusals == 1
    assert target.last_refusal == "order notional 3000.00 USD (0.05 BTC) exceeds max_order_notional 2500"


def test_an_entry_on_a_pair_quoted_in_another_asset_spends_the_budget_in_the_account_currency() -> None:
    target = slot("ETH/BTC", amount=Decimal(1200))  # 1200 USD: 0.02 BTC at 60000, 0.4 ETH at 0.05
    trader = make_trader({"BTC": Decimal(1)}, [target])
    candle = Candle("ETH/BTC", 0, 60, Decimal("0.05"), Decimal("0.05"), Decimal("0.05"), Decimal("0.05"), Decimal(9))
    assert trader.on_market(candle) == []  # no BTC/USD price yet: the budget cannot be converted
    assert target.last_refusal == "cannot size the entry: no price for BTC in USD yet"
    trader.portfolio.mark("BTC/USD", Decimal(60000))
    (request,) = trader.on_market(candle)
    assert request.qty == Decimal("0.4") and request.pair == "ETH/BTC"


def test_positions_and_open_buys_count_in_usd_toward_pair_and_total_caps() -> None:
    trader = make_trader({"BTC": Decimal(1), "USD": Decimal(10000)})
    book(trader, 1, ETHXBT, "1", "0.05")  # 1 ETH at 0.05 BTC
    book(trader, 2, XBT, "0.05", "60000")  # 0.05 BTC at 60000 USD
    trader.portfolio.mark("ETH/BTC", Decimal("0.05"))
    trader.portfolio.mark("BTC/USD", Decimal(60000))
    # An open ETH/BTC limit buy of 0.5 ETH at 0.04 BTC: 0.02 BTC pending, 1200 USD.
    pending = Order(ClientOrderId("o-1"), "ETH/BTC", OrderSide.BUY, OrderType.LIMIT, Decimal("0.5"),
                    Decimal("0.04"), 1, "s", OrderStatus.NEW)  # fmt: skip
    trader.oms.restore([pending], 1)
    snapshot = trader.exposure(slot("ETH/BTC"), ETHXBT)
    assert snapshot.pair_notional == Decimal(3000) + Decimal(1200)  # 0.05 BTC + 0.02 BTC, × 60000
    assert snapshot.total_notional == Decimal(4200) + Decimal(3000)  # and the 0.05 BTC position, 3000 USD
    # The free balance stays in BTC: 1 − 0.05 spent on ETH + 0.05 bought − 0.02 held by the open buy.
    assert snapshot.available_quote == Decimal("0.98")
    # 0.4 ETH more (1200 USD): 5400 USD in ETH/BTC, above the 5000 pair cap.
    reason = check(trader, buy("ETH/BTC", "0.4"), "0.05")
    assert reason == "ETH/BTC exposure would be 5400.00, above max_pair_notional 5000"
    assert check(trader, buy("ETH/BTC", "0.1"), "0.05") is None  # 4500 USD


# -- what cannot be valued ---------------------------------------------------------------------------------------
def test_a_buy_whose_quote_has_no_price_is_refused_and_the_reason_names_the_price() -> None:
    trader = make_trader({"BTC": Decimal(1)})
    trader.portfolio.mark("ETH/BTC", Decimal("0.05"))  # no BTC/USD price yet
    snapshot = trader.exposure(slot("ETH/BTC"), ETHXBT)
    assert snapshot.quote_rate is None
    reason = check(trader, buy("ETH/BTC", "0.01"), "0.05")
    assert reason == "cannot value the exposure in USD: no price yet for BTC/USD (needed to value BTC in USD)"
    assert trader.risk.refusals == 1


def test_held_exposure_that_cannot_be_valued_blocks_buys_elsewhere_but_never_sells() -> None:
    trader = make_trader({"BTC": Decimal(1), "USD": Decimal(10000)})
    book(trader, 1, ETHXBT, "1", "0.05")
    trader.portfolio.mark("ETHUSD", Decimal(3000))
    # The total cap cannot be measured while the ETH/BTC position's BTC has no USD price.
    reason = check(trader, buy("ETHUSD", "0.1"), "3000")
    assert reason == "cannot value the exposure in USD: no price yet for BTC/USD (needed to value BTC in USD)"
    sell = OrderRequest(ClientOrderId("r-2"), "ETH/BTC", OrderSide.SELL, OrderType.MARKET, Decimal(1), None, 1, "s")
    assert check(trader, sell, "0.05") is None
    trader.portfolio.mark("BTC/USD", Decimal(60000))
    assert check(trader, buy("ETHUSD", "0.1"), "3000") is None


def test_a_quote_with_no_path_at_all_is_refused() -> None:
    etheur = replace(XBT, pair="ETHEUR", base="ETH", quote="EUR")
    # Without ETHUSD: EUR -> ETH -> BTC -> USD would be three hops, so EUR has no path.
    instruments = {**SHIPPED, "ETHEUR": etheur}
    portfolio = Portfolio(instruments, {"EUR": Decimal(1000)}, "USD")
    venue = PaperExchange(instruments, {"EUR": Decimal(1000)}, clock=lambda: 1)
    trader = Trader(instruments, venue, portfolio, RiskEngine(LIMITS, LIMITS),
                    OrderManager(venue, portfolio, QuietListener(), "t"), [], lambda: 1)  # fmt: skip
    portfolio.mark("ETHEUR", Decimal(3000))
    request = buy("ETHEUR", "0.01")
    reason = trader.risk.check(request, etheur, Decimal(3000), trader.exposure(slot("ETHEUR"), etheur))
    assert reason == "cannot value the exposure in USD: no pair converts EUR into USD"


# -- the account currency's own pairs: the same decisions and figures as before ---------------------------------
def old_check(request: OrderRequest, instrument: Instrument, ref_price: Decimal, e: ExposureSnapshot) -> str | None:
    """RiskEngine._check's limit arithmetic before conversion existed (state and precision aside).

    Kraken's rules as they now apply (tests/risk/test_risk_exits_and_market_orders.py): a market order is not
    tick-checked (its cost is, at the reference rounded to the tick), and a sell is checked for the asset first; a
    sell Kraken would refuse is refused with Kraken's error followed by why (compared by that prefix).
    """
    price = request.limit_price if request.limit_price is not None else ref_price
    checked = request.limit_price if request.limit_price is not None else instrument.round_price(ref_price)
    precision = instrument.check_order(request.qty, checked)
    if request.side is OrderSide.SELL:
        if request.qty > e.available_base:
            return f"insufficient {instrument.base}: selling {request.qty}, {e.available_base} available"
        return None if precision is None else precision + ":"
    if precision is not None:
        return precision
    notional = request.qty * price
    if request.qty > LIMITS.max_order_qty:
        return f"order size {request.qty} exceeds max_order_qty {LIMITS.max_order_qty}"
    if notional > LIMITS.max_order_notional:
        return f"order notional {notional:.2f} exceeds max_order_notional {LIMITS.max_order_notional}"
    if e.pair_notional + notional > LIMITS.max_pair_notional:
        return (
            f"{request.pair} exposure would be {e.pair_notional + notional:.2f}, "
            f"above max_pair_notional {LIMITS.max_pair_notional}"
        )
    if e.total_notional + notional > LIMITS.max_total_notional:
        return (
            f"total exposure would be {e.total_notional + notional:.2f}, "
            f"above max_total_notional {LIMITS.max_total_notional}"
        )
    if e.open_orders + 1 > LIMITS.max_open_orders:
        return f"{e.open_orders} open orders: max_open_orders is {LIMITS.max_open_orders}"
    fee = instrument.fee_rate(maker=False)
    if notional * (1 + fee) > e.available_quote:
        needs = notional * (1 + fee)
        return f"insufficient {instrument.quote}: order needs {needs:.2f}, {e.available_quote:.2f} available"
    return None


AMOUNTS = st.decimals(min_value=Decimal(0), max_value=Decimal(12000), places=5)


@settings(deadline=None, max_examples=300)
@given(
    qty=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(2), places=8),
    price=st.decimals(min_value=Decimal(100), max_value=Decimal(90000), places=1),
    limit=st.booleans(),
    side=st.sampled_from(list(OrderSide)),
    pair_notional=AMOUNTS,
    extra=AMOUNTS,
    open_orders=st.integers(0, 25),
    available_quote=AMOUNTS,
    available_base=st.decimals(min_value=Decimal(0), max_value=Decimal(3), places=8),
)
def test_usd_quoted_orders_are_decided_exactly_as_before(
    qty: Decimal,
    price: Decimal,
    limit: bool,
    side: OrderSide,
    pair_notional: Decimal,
    extra: Decimal,
    open_orders: int,
    available_quote: Decimal,
    available_base: Decimal,
) -> None:
    request = OrderRequest(ClientOrderId("r"), "BTC/USD", side, OrderType.LIMIT if limit else OrderType.MARKET, qty,
                           price if limit else None, 1, "s")  # fmt: skip
    snapshot = ExposureSnapshot(pair_notional, pair_notional + extra, open_orders, available_quote, available_base,
                                available_base, "USD", None)  # fmt: skip
    ref = price + Decimal(1) if limit else price
    got = RiskEngine(LIMITS, LIMITS).check(request, XBT, ref, snapshot)
    want = old_check(request, XBT, ref, snapshot)
    if want is not None and want.endswith(":") and got is not None:
        got = got[: len(want)]  # a sell Kraken would refuse: Kraken's error, then the engine's why
    assert got == want


def test_usd_exposure_is_the_old_sum() -> None:
    trader = make_trader({"USD": Decimal(100000)})
    book(trader, 1, XBT, "0.05", "60000")
    book(trader, 2, ETHUSD, "0.3", "3000")
    trader.portfolio.mark("BTC/USD", Decimal("61000.3"))
    trader.portfolio.mark("ETHUSD", Decimal("2999.7"))
    pending = Order(ClientOrderId("o-1"), "BTC/USD", OrderSide.BUY, OrderType.LIMIT, Decimal("0.0123"),
                    Decimal("59000.1"), 1, "s", OrderStatus.NEW)  # fmt: skip
    trader.oms.restore([pending], 1)
    snapshot = trader.exposure(slot("BTC/USD"), XBT)
    xbt = Decimal("0.05") * Decimal("61000.3")
    eth = Decimal("0.3") * Decimal("2999.7")
    open_buy = Decimal("0.0123") * Decimal("59000.1")
    assert snapshot.pair_notional == xbt + open_buy
    assert snapshot.total_notional in (xbt + eth + open_buy, eth + xbt + open_buy)
    assert snapshot.available_quote == Decimal(100000) - Decimal(3000) - Decimal(900) - open_buy
    assert snapshot.quote_rate is None and snapshot.unvalued == ""
