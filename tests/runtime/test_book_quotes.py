"""The trader's book path (engine.runtime.book_quotes) wired to the real paper venue, order manager, portfolio and
risk engine: quotes become post-only limit orders quantised at the edge (a buy's price down to the tick, a sell's
up, quantities down to the lot), a quote the book has crossed before it arrives is refused by the venue rather than
taken, a refused quote is not asked again for its time-to-live, and strategies without a book hook cost nothing."""

from decimal import ROUND_DOWN, Decimal

import pytest
from fakes.instruments import example_instruments

from engine.domain.market_data import BookLevel, BookSnapshot
from engine.domain.orders import ClientOrderId, Fill, Order, OrderSide, OrderStatus, OrderType
from engine.domain.positions import Position
from engine.exchanges.paper import PaperExchange
from engine.exchanges.paper.admission import ERR_POST_ONLY
from engine.execution.order_manager import OrderManager
from engine.portfolio.performance import ClosedTrade
from engine.portfolio.portfolio import Portfolio
from engine.risk.checks import RiskEngine
from engine.risk.limits import UNBOUNDED_RATE, RiskLimits
from engine.runtime.book_quotes import quote_price, quote_qty
from engine.runtime.trader import StrategySlot, Trader
from engine.strategies import EmaCross, MicroScalper, Quote, Strategy

pytestmark = pytest.mark.anyio
D = Decimal
NS = 10**9
BIG = D(10) ** 12
LOOSE = RiskLimits(
    max_order_qty=D(100),
    max_order_notional=BIG,
    max_pair_notional=BIG,
    max_total_notional=BIG,
    max_open_orders=20,
    max_orders_per_minute=UNBOUNDED_RATE,
)


class QuietListener:
    async def order_intent(self, order: Order) -> None:
        return None

    def order_changed(self, order: Order) -> None:
        return None

    def fill_booked(self, fill: Fill, position: Position, closed: ClosedTrade | None, order: Order) -> None:
        return None

    def anomaly(self, kind: str, detail: str, payload: dict[str, object]) -> None:
        return None


class Harness:
    def __init__(self, strategy: Strategy, limits: RiskLimits = LOOSE, amount: str = "300") -> None:
        self.instruments = example_instruments()
        self.now = [0]
        self.portfolio = Portfolio(self.instruments, {"USD": D(10000)}, "USD")
        self.venue = PaperExchange(self.instruments, {"USD": D(10000)}, clock=lambda: self.now[0])
        self.oms = OrderManager(self.venue, self.portfolio, QuietListener(), "t")
        self.slot = StrategySlot("scalp", "BTC/USD", strategy, True, D(1), D(amount))
        self.trader = Trader(
            self.instruments,
            self.venue,
            self.portfolio,
            RiskEngine(limits, limits),
            self.oms,
            [self.slot],
            lambda: self.now[0],
        )


def book(ts_s: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> BookSnapshot:
    return BookSnapshot(
        "BTC/USD",
        ts_s * NS,
        tuple(BookLevel(D(p), D(q)) for p, q in bids),
        tuple(BookLevel(D(p), D(q)) for p, q in asks),
    )


def test_prices_round_away_from_the_other_side_and_quantities_down_to_the_lot() -> None:
    btc = example_instruments()["BTC/USD"]  # tick 0.1, 8 lot decimals
    assert quote_price(Quote("buy", D("50000.07"), D(1), NS), btc) == D("50000.0")
    assert quote_price(Quote("sell", D("50400.03"), D(1), NS), btc) == D("50400.1")
    assert quote_price(Quote("sell", D("50400.0"), D(1), NS), btc) == D("50400.0")  # on the tick: unchanged
    assert quote_qty(Quote("buy", D(1), D("0.0060001299"), NS), btc) == D("0.00600012")


async def test_a_bid_on_an_off_tick_book_becomes_a_post_only_limit_on_the_tick() -> None:
    h = Harness(MicroScalper({"min_imbalance": -1, "ttl_s": 7}))
    h.now[0] = 5 * NS
    requests = h.trader.on_market(book(5, [("50000.07", "1")], [("50400.03", "1")]))
    assert len(requests) == 1
    request = requests[0]
    # 300 / 50,000.07 rounded down to 8 decimals, worked out here; the price down to the 0.1 tick.
    assert request.qty == (D(300) / D("50000.07")).quantize(D("1e-8"), rounding=ROUND_DOWN) == D("0.00599999")
    assert (request.side, request.order_type, request.limit_price) == (OrderSide.BUY, OrderType.LIMIT, D("50000.0"))
    assert request.post_only and request.expires_ns == 5 * NS + 7 * NS and request.strategy == "scalp"
    await h.oms.submit(request)
    order = h.oms.orders[request.client_id]
    assert order.status is OrderStatus.NEW  # resting: post-only, below the ask


async def test_a_post_only_quote_the_book_crossed_before_it_arrived_is_refused_not_taken() -> None:
    h = Harness(MicroScalper({"min_imbalance": -1}))
    first = book(1, [("50000.0", "1")], [("50400.0", "1")])
    (request,) = h.trader.on_market(first)
    assert request.limit_price == D("50000.0")
    # Before the order reaches the venue the asks fall to the bid (as a live book can between decision and send):
    # a post-only buy at 50,000.0 would now take the ask at 50,000.0.
    h.now[0] = 2 * NS
    h.venue.on_market(book(2, [("49900.0", "1")], [("50000.0", "3")]))
    await h.oms.submit(request)
    order = h.oms.orders[ClientOrderId(request.client_id)]
    assert order.status is OrderStatus.REJECTED and order.reason == ERR_POST_ONLY
    assert order.filled_qty == 0
    balances = h.venue.balance_detail()
    assert balances["USD"].total == D(10000) and balances["USD"].held == 0
    assert "BTC" not in balances or balances["BTC"].total == 0
    assert h.portfolio.position_qty("scalp", "BTC/USD") == 0


async def test_a_resting_quote_fills_as_maker_at_its_limit_when_the_book_crosses_it() -> None:
    h = Harness(MicroScalper({"min_imbalance": -1}))
    (request,) = h.trader.on_market(book(1, [("50000.0", "1")], [("50400.0", "1")]))
    await h.oms.submit(request)
    h.now[0] = 2 * NS
    # Asks at 49,990.0 (0.002) and 49,995.0 (0.001) are below the bid of 50,000.0: 0.003 of it fills, as maker.
    after = h.trader.on_market(book(2, [("49980.0", "1")], [("49990.0", "0.002"), ("49995.0", "0.001")]))
    order = h.oms.orders[request.client_id]
    assert order.filled_qty == D("0.003") and order.avg_price == D("50000.0")
    assert h.portfolio.position_qty("scalp", "BTC/USD") == D("0.003")
    # Then the position is offered at the ask touch of that same book (49,990.0); the rest of the bid still rests.
    assert [(r.side, r.limit_price, r.qty, r.post_only) for r in after] == [
        (OrderSide.SELL, D("49990.0"), D("0.003"), True)
    ]


async def test_a_refused_quote_is_not_asked_again_for_its_time_to_live() -> None:
    small = LOOSE.model_copy(update={"max_order_notional": D(100)})
    h = Harness(MicroScalper({"min_imbalance": -1, "ttl_s": 10}), limits=small)
    quotes = book(0, [("50000.0", "1")], [("50400.0", "1")])
    for second, refused in ((0, 1), (5, 1), (9, 1), (10, 2), (15, 2), (20, 3)):
        h.now[0] = second * NS
        assert h.trader.on_market(quotes) == []
        assert h.trader.refusal_counts == {"max_order_notional": refused}, second
    assert h.slot.refusals == 3


def test_nothing_is_quoted_while_trading_is_off_or_the_strategy_is_disabled() -> None:
    h = Harness(MicroScalper({"min_imbalance": -1}))
    quotes = book(0, [("50000.0", "1")], [("50400.0", "1")])
    assert h.trader.on_market(quotes, trading=False) == []
    h.slot.enabled = False
    assert h.trader.on_market(quotes) == []
    h.slot.enabled = True
    h.slot.breaker = "max_consecutive_losses"  # a breaker stops its bids (it has nothing to offer)
    assert h.trader.on_market(quotes) == []
    h.slot.breaker = ""
    assert len(h.trader.on_market(quotes)) == 1


def test_candle_strategies_get_no_book_path() -> None:
    h = Harness(EmaCross({"fast": 3, "slow": 8}))
    assert h.trader.book_quoting is None
    assert h.trader.on_market(book(0, [("50000.0", "1")], [("50400.0", "1")])) == []
    assert h.portfolio.marks["BTC/USD"] == D("50200.0")  # the mark still follows the book
