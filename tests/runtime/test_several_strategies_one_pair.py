"""Several strategies on one pair, run as one engine, trade exactly as each of them run alone.

Eight strategies (EMA crosses, mean reversions, RSI reversals, breakouts; two with position guards) replay one
file in one engine (one pass over the data), then each replays it again in an engine of its own. Each strategy's
orders and fills must be the same in both, field for field (time, side, type, quantity, status, price, fee).

They share one account, so the settings are chosen so that nothing one strategy does can change another's
orders; each way they could is closed:

* balances: 1,000,000 in the quote currency, so no entry (1,000 each) is ever short of funds; an exit sells only
  the strategy's own position, which the shared base balance always covers;
* risk: limits and caps far above what eight entries reach (notional, open orders, orders per minute: the rate
  limit counts every strategy's orders together), so no check refuses anything; no account rules, breakers or
  profit reserve;
* fees: ``fee_volume_30d = 0`` pins the fee tier (else the account's shared 30-day volume would move it);
* fills: market orders only, which fill in full at the next candle's open (resting limit orders share a candle's
  volume, and would interfere); sizing by the fixed ``order_quote_amount``, not by the shared equity;
* positions and guards are per strategy (the guards watch the strategy's own position and entry).

What the engine's cross-checks against reference implementations cannot see, this one does: work shared between
the strategies of a pair within one pass (the position each is shown, its guards, the orders risk lets through)
giving any strategy a different view than it has alone. The candle history the strategies of a pair share (kept
to re-warm a strategy after a retune) is checked on its own below, against the candles fed, pair by pair.
"""

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest
from fakes.instruments import example_instruments

from engine.domain.market_data import Candle
from engine.domain.orders import Fill, Order
from engine.domain.positions import Position
from engine.exchanges.paper import PaperExchange
from engine.execution.order_manager import OrderManager
from engine.persistence import Store
from engine.portfolio.performance import ClosedTrade
from engine.portfolio.portfolio import Portfolio
from engine.risk.checks import RiskEngine
from engine.risk.limits import RiskLimits
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import config_from_mapping
from engine.runtime.trader import HISTORY, StrategySlot, Trader
from engine.strategies import Param, Signal, Strategy, StrategyContext

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
SHARED_XBTUSD_60 = REPO.parent / "shared" / "data" / "kraken-ohlcvt" / "XBTUSD_60.csv"

HUGE = "1000000000"
LIMITS = {
    "max_order_qty": "1000",
    "max_order_notional": HUGE,
    "max_pair_notional": HUGE,
    "max_total_notional": HUGE,
    "max_open_orders": 100,
    "max_orders_per_minute": 10_000,
    "price_band_pct": "50",
}


Spec = tuple[str, str, dict[str, Any]]  # name, kind, params


@dataclass(frozen=True)
class Case:
    data: Path
    pair: str
    quote: str
    max_events: int | None
    strategies: list[Spec]


MINUTES: list[Spec] = [  # short periods: every one trades on 720 minute candles
    ("ema_5_20", "ema_cross", {"fast": 5, "slow": 20}),
    ("ema_3_10", "ema_cross", {"fast": 3, "slow": 10, "stop_loss_pct": "0.05"}),
    ("mean_rev_10", "mean_reversion", {"period": 10, "entry_z": "1.5"}),
    ("mean_rev_20", "mean_reversion", {"period": 20, "entry_z": "1", "exit_z": "-0.5"}),
    ("rsi_7", "rsi_reversal", {"period": 7, "oversold": "40", "overbought": "60"}),
    ("rsi_14", "rsi_reversal", {"period": 14, "oversold": "45", "overbought": "55"}),
    ("breakout_10_5", "breakout", {"entry_period": 10, "exit_period": 5, "trailing_stop_pct": "0.1"}),
    ("breakout_20_10", "breakout", {"entry_period": 20, "exit_period": 10}),
]
HOURS: list[Spec] = [  # as bench/bench_strategies.py's eight
    ("ema_12_26", "ema_cross", {"fast": 12, "slow": 26}),
    ("mean_rev_20", "mean_reversion", {"period": 20}),
    ("rsi_14", "rsi_reversal", {"period": 14}),
    ("breakout_20_10", "breakout", {"entry_period": 20, "exit_period": 10}),
    ("ema_50_200", "ema_cross", {"fast": 50, "slow": 200, "take_profit_pct": "20"}),
    ("mean_rev_50", "mean_reversion", {"period": 50, "entry_z": "2.5", "exit_z": "0.5"}),
    ("rsi_7", "rsi_reversal", {"period": 7, "oversold": "25", "overbought": "75"}),
    ("breakout_55_20", "breakout", {"entry_period": 55, "exit_period": 20, "stop_loss_pct": "5"}),
]
CASES = {
    "shipped XBTUSDT 1m": Case(SAMPLE, "BTC/USDT", "USDT", None, MINUTES),
    "shared XBTUSD 60m, 8,000 candles": Case(SHARED_XBTUSD_60, "BTC/USD", "USD", 8000, HOURS),
}

OrderRow = tuple[int, str, str, str, str, str]
FillRow = tuple[int, str, str, str, str, str]


def config(case: Case, strategies: list[Spec]) -> Any:
    return config_from_mapping(
        {
            "quote_currency": case.quote,
            "market": {"speed": "max", "file": str(case.data), "pair": case.pair},
            "paper": {"starting_balances": {case.quote: "1000000"}, "fee_volume_30d": "0"},
            "risk": {"limits": LIMITS, "caps": LIMITS},
            "strategies": [{"name": n, "kind": k, "pair": case.pair, "params": p} for n, k, p in strategies],
        }
    )


async def trades(case: Case, strategies: list[Spec], db: Path) -> dict[str, Any]:
    """Each strategy's orders and fills of one backtest (as the bench runs it: no per-candle records)."""
    options = RunOptions(durable_intents=False, record_every_candle=False, max_events=case.max_events)
    engine = Engine.from_config(config(case, strategies), db, options=options)
    with anyio.fail_after(60):
        await engine.run()
    assert sum(engine.trader.refusal_counts.values()) == 0
    with Store.open_readonly(db) as store:
        orders = store.load_orders()
        fills = store.load_fills()
    found: dict[str, Any] = {}
    for name, _, _ in strategies:
        mine: list[OrderRow] = [
            (o.created_ts_ns, o.side.value, o.order_type.value, str(o.qty), o.status.value, str(o.filled_qty))
            for o in orders
            if o.strategy == name
        ]
        filled: list[FillRow] = [
            (f.ts_ns, f.side.value, str(f.qty), str(f.price), str(f.fee), f.liquidity)
            for f in fills
            if f.strategy == name
        ]
        found[name] = {"orders": mine, "fills": filled}
    found["guard exits"] = dict(engine.trader.guard_counts)
    return found


@pytest.mark.parametrize("name", list(CASES))
async def test_eight_strategies_in_one_engine_trade_as_each_alone(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    if not case.data.is_file():
        pytest.skip(f"{case.data} is absent")
    together = await trades(case, case.strategies, tmp_path / "together.db")
    # The guards' exits are among the orders compared: both guarded strategies' guards sold.
    assert len(together.pop("guard exits")) == 2
    for spec in case.strategies:
        alone = await trades(case, [spec], tmp_path / f"{spec[0]}.db")
        assert together[spec[0]] == alone[spec[0]], spec[0]
        # Not a comparison of empty lists: every strategy traded, both ways, and its buys were filled.
        sides = {row[1] for row in alone[spec[0]]["fills"]}
        assert sides == {"buy", "sell"}, f"{spec[0]} did not trade both ways"
    assert sum(len(t["fills"]) for t in together.values()) >= 8 * 4


# -- the candle history the strategies of a pair share -------------------------------------------------------------
class Recorder(Strategy):
    """Never signals; records every candle it is handed (live, warming up, or re-warmed by a retune)."""

    kind = "test_recorder"
    description = "Records its candles (a test's strategy)."
    params: ClassVar[tuple[Param, ...]] = ()

    def reset(self) -> None:
        self.fed: list[Candle] = []

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        self.fed.append(candle)
        return None


class QuietListener:
    async def order_intent(self, order: Order) -> None:
        return None

    def order_changed(self, order: Order) -> None:
        return None

    def fill_booked(self, fill: Fill, position: Position, closed: ClosedTrade | None, order: Order) -> None:
        return None

    def anomaly(self, kind: str, detail: str, payload: dict[str, object]) -> None:
        return None


def test_each_strategy_keeps_the_candles_of_its_own_pair_once() -> None:
    instruments = example_instruments()
    pairs = ("BTC/USD", "BTC/USDT")
    slots = [
        StrategySlot("a", pairs[0], Recorder(), True, Decimal(1), Decimal(1000)),
        StrategySlot("b", pairs[0], Recorder(), True, Decimal(1), Decimal(1000)),
        StrategySlot("g1", pairs[0], Recorder(), True, Decimal(1), Decimal(1000), group="g"),
        StrategySlot("g2", pairs[0], Recorder(), True, Decimal(1), Decimal(1000), group="g"),
        StrategySlot("c", pairs[1], Recorder(), True, Decimal(1), Decimal(1000)),
    ]
    balances = {"USD": Decimal(10**6), "USDT": Decimal(10**6)}
    portfolio = Portfolio(instruments, balances, "USD")
    venue = PaperExchange(instruments, balances, clock=lambda: 0)
    oms = OrderManager(venue, portfolio, QuietListener(), "t")
    limits = RiskLimits.unbounded()
    trader = Trader(instruments, venue, portfolio, RiskEngine(limits, limits), oms, slots, lambda: 0)
    fed: dict[str, list[Candle]] = {pair: [] for pair in pairs}
    # Warmed (after a restart) for 100 candles, then live; both pairs interleaved, BTC/USDT every other minute.
    for i in range(HISTORY + 400):
        for pair in pairs if i % 2 else pairs[:1]:
            price = Decimal(50000 + i)
            candle = Candle(pair, i * 60 * 10**9, 60, price, price, price, price, Decimal(1))
            fed[pair].append(candle)
            if i < 100:
                trader.warm(candle)
            else:
                assert trader.on_market(candle) == []
    for slot in slots:
        assert isinstance(slot.strategy, Recorder)
        # Every candle of its pair reached the strategy once, in order; the history holds the latest HISTORY.
        assert slot.strategy.fed == fed[slot.pair], slot.name
        assert list(slot.history) == fed[slot.pair][-HISTORY:], slot.name
    # A retune re-warms the strategy on exactly that history.
    retuned = slots[1]
    retuned.retune({})
    assert isinstance(retuned.strategy, Recorder)
    assert retuned.strategy.fed == fed[pairs[0]][-HISTORY:]
