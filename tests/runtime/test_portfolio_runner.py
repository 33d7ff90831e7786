"""The trader's side of a strategy over several pairs: it decides once both pairs have closed the same minute, sends
the strategy's market orders through the risk checks (a refusal is counted on the strategy), waits while one of
them is open, and sends only sells while a circuit breaker has stopped it; disabled or not trading, nothing."""

from dataclasses import replace
from decimal import Decimal

import anyio
import pytest

from engine.domain.market_data import Candle
from engine.domain.orders import ClientOrderId, Fill, Order, OrderSide, OrderType, TradeId
from engine.domain.positions import Position
from engine.exchanges.catalog import default_instruments
from engine.exchanges.paper import PaperExchange
from engine.exchanges.port import OrderRequest
from engine.execution.order_manager import OrderManager
from engine.portfolio.performance import ClosedTrade
from engine.portfolio.portfolio import Portfolio
from engine.risk.checks import RiskEngine, TradingState
from engine.risk.limits import RiskLimits
from engine.runtime.trader import StrategySlot, Trader
from engine.strategies import PortfolioRebalance

D = Decimal
BTC, ETH = "BTC/USD", "ETH/USD"
INSTRUMENTS = {p: i for p, i in default_instruments().items() if p in (BTC, ETH)}
MINUTE_NS = 60 * 10**9


class QuietListener:
    """The order manager's listener: nothing to persist here."""

    async def order_intent(self, order: Order) -> None:
        return None

    def order_changed(self, order: Order) -> None:
        return None

    def fill_booked(self, fill: Fill, position: Position, closed: ClosedTrade | None, order: Order) -> None:
        return None

    def anomaly(self, kind: str, detail: str, payload: dict[str, object]) -> None:
        return None


def make_trader() -> tuple[Trader, StrategySlot]:
    """10,000 USD, of which the strategy holds 0.12 BTC (bought at 50,000) and 0.8 ETH (at 2,500): 2,000 USD left."""
    portfolio = Portfolio(INSTRUMENTS, {"USD": D(10000)}, "USD")
    for n, (pair, qty, price) in enumerate([(BTC, "0.12", 50000), (ETH, "0.8", 2500)]):
        fill = Fill(TradeId(f"f{n}"), ClientOrderId(f"c{n}"), pair, OrderSide.BUY, D(qty), D(price), D(0), "USD", 1)
        portfolio.apply_fill(replace(fill, strategy="core"))
    venue = PaperExchange(INSTRUMENTS, {"USD": D(2000), "BTC": D("0.12"), "ETH": D("0.8")}, clock=lambda: 1)
    oms = OrderManager(venue, portfolio, QuietListener(), "t")
    risk = RiskEngine(RiskLimits.unbounded(), RiskLimits.unbounded())
    strategy = PortfolioRebalance({"weight_1": "0.5", "weight_2": "0.3", "band_pct": "5"})
    slot = StrategySlot("core", BTC, strategy, True, D(1), D(1000), pairs=(BTC, ETH))
    return Trader(INSTRUMENTS, venue, portfolio, risk, oms, [slot], lambda: 1), slot


def candle(pair: str, minute: int, close: int) -> Candle:
    return Candle(pair, minute * MINUTE_NS, 60, D(close), D(close), D(close), D(close), D(10), 1)


def sent(requests: list[OrderRequest]) -> list[tuple[str, OrderSide, Decimal, str, OrderType]]:
    return [(r.pair, r.side, r.qty, r.strategy, r.order_type) for r in requests]


# At 50,000 and 2,500 the book is 60 % BTC, 20 % ETH, 20 % cash against targets of 50 / 30 / 20: sell 1,000 USD of
# BTC (0.02) and buy 1,000 USD of ETH (0.4).
SELL_BTC = (BTC, OrderSide.SELL, D("0.02"), "core", OrderType.MARKET)
BUY_ETH = (ETH, OrderSide.BUY, D("0.4"), "core", OrderType.MARKET)


def test_it_decides_once_both_pairs_have_closed_the_minute() -> None:
    trader, slot = make_trader()
    assert trader.on_market(candle(BTC, 0, 50000)) == []  # ETH has no price yet
    assert trader.on_market(candle(ETH, 0, 2500)) != []
    trader, slot = make_trader()
    assert trader.on_market(candle(ETH, 0, 2500)) == []
    assert trader.on_market(candle(BTC, 1, 50000)) == []  # BTC's minute 1 with ETH's minute 0: not the same period
    assert sent(trader.on_market(candle(ETH, 1, 2500))) == [SELL_BTC, BUY_ETH]
    assert slot.signals == 2 and trader.slot("core") is slot


@pytest.mark.anyio
async def test_it_waits_while_one_of_its_orders_is_open() -> None:
    trader, slot = make_trader()
    resting = OrderRequest(ClientOrderId("t-rest"), ETH, OrderSide.BUY, OrderType.LIMIT, D("0.01"), D(1000), 1, "core")
    with anyio.fail_after(5):
        await trader.oms.submit(resting)
    assert trader.oms.has_open_order("core", ETH)
    for minute in range(3):
        assert trader.on_market(candle(BTC, minute, 50000)) == []
        assert trader.on_market(candle(ETH, minute, 2500)) == []
    assert slot.signals == 0


def test_a_circuit_breaker_lets_sells_through_and_disabled_or_not_trading_sends_nothing() -> None:
    trader, slot = make_trader()
    slot.breaker = "max_consecutive_losses"
    trader.on_market(candle(BTC, 0, 50000))
    assert sent(trader.on_market(candle(ETH, 0, 2500))) == [SELL_BTC]
    trader, slot = make_trader()
    slot.enabled = False
    trader.on_market(candle(BTC, 0, 50000))
    assert trader.on_market(candle(ETH, 0, 2500)) == []
    trader, slot = make_trader()
    trader.on_market(candle(BTC, 0, 50000), trading=False)
    assert trader.on_market(candle(ETH, 0, 2500), trading=False) == []


def test_orders_the_risk_checks_refuse_are_counted_on_the_strategy() -> None:
    trader, slot = make_trader()
    trader.risk.state = TradingState.PAUSED
    trader.on_market(candle(BTC, 0, 50000))
    assert trader.on_market(candle(ETH, 0, 2500)) == []
    assert slot.refusals == 2 and slot.signals == 0
    assert "trading is paused" in slot.last_refusal
    assert [line.split(":")[0] for line in trader.refusal_log] == [
        "core sell 0.02000000 BTC/USD",
        "core buy 0.40000000 ETH/USD",
    ]
