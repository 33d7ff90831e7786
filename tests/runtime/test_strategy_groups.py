"""Strategy groups (``group = "name"``): the members' signals on one pair are a weighted vote, and the group sends
at most one order per candle, attributed to one member (engine.runtime.trader.SlotGroup). Scripted strategies vote
opposite ways on the shipped sample, through real backtests; the orders are those a plain reading of the
documented rule gives, never two in one step; ungrouped, the same strategies still act on their own."""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest
from fakes.instruments import example_instruments
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.domain.market_data import Candle
from engine.domain.money import ZERO
from engine.domain.orders import Fill, Order, OrderSide, TradeId
from engine.domain.positions import Position
from engine.exchanges.paper import PaperExchange
from engine.execution.order_manager import OrderManager
from engine.persistence import Store
from engine.portfolio.performance import ClosedTrade
from engine.portfolio.portfolio import Portfolio
from engine.risk.checks import RiskEngine
from engine.risk.limits import UNBOUNDED_RATE, RiskLimits
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import Config, ConfigError, config_from_mapping
from engine.runtime.trader import StrategySlot, Trader
from engine.strategies import REGISTRY, Param, Signal, Strategy, StrategyContext

pytestmark = pytest.mark.anyio
SAMPLE = Path(__file__).resolve().parents[2] / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"
MINUTE_NS = 60 * 10**9


class Vote(Strategy):
    """Votes on every ``period``-th candle from candle ``phase`` on (counting its own candles from 0): buy, sell,
    buy, ... whatever it holds; records the position it is shown."""

    kind = "test_vote"
    description = "Scripted votes (a test's strategy)."
    params: ClassVar[tuple[Param, ...]] = (
        Param("period", "int", 10, 1, 1000, "Candles between votes."),
        Param("phase", "int", 0, 0, 1000, "The first voting candle."),
    )

    def reset(self) -> None:
        self.seen = 0
        self.shown: list[Decimal] = []

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        i, self.seen = self.seen, self.seen + 1
        self.shown.append(ctx.position_qty)
        return vote(i, int(self.values["period"]), int(self.values["phase"]))


def vote(i: int, period: int, phase: int) -> Signal | None:
    if i < phase or (i - phase) % period:
        return None
    return Signal("buy" if (i - phase) // period % 2 == 0 else "sell")


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    REGISTRY[Vote.kind] = Vote
    yield
    del REGISTRY[Vote.kind]


Member = tuple[str, int, int]  # name, weight, phase (period 10)


def config(members: Sequence[Member], group: str | None = "g", pairs: Mapping[str, str] | None = None) -> Config:
    strategies: list[dict[str, Any]] = []
    for name, weight, phase in members:
        entry: dict[str, Any] = {
            "name": name,
            "kind": Vote.kind,
            "pair": (pairs or {}).get(name, "BTC/USDT"),
            "weight": str(weight),
            "params": {"period": 10, "phase": phase},
        }
        if group is not None:
            entry["group"] = group
        strategies.append(entry)
    return config_from_mapping(
        {
            "quote_currency": "USDT",
            "market": {"speed": "max", "file": str(SAMPLE), "pair": "BTC/USDT"},
            "paper": {"starting_balances": {"USDT": "100000"}, "fee_volume_30d": "0"},
            "strategies": strategies,
        }
    )


def plain_orders(members: Sequence[Member], candles: int) -> list[tuple[int, str, str]]:
    """(candle index, strategy, side) by the documented rule: the weighted sum's sign decides; a buy by the
    heaviest buy voter (first on a tie), a sell by the largest holder (a market order fills at the next candle's
    open, so it is held from the next candle on; sizes here are the entry budgets, 1000 × weight)."""
    held: dict[str, int] = {}
    out: list[tuple[int, str, str]] = []
    for i in range(candles):
        votes = [(name, w, s.side) for name, w, phase in members if (s := vote(i, 10, phase)) is not None]
        score = sum(w if side == "buy" else -w for _, w, side in votes)
        if score > 0:
            buyer = max((v for v in votes if v[2] == "buy"), key=lambda v: v[1])[0]
            held[buyer] = held.get(buyer, 0) + 1000 * dict((n, w) for n, w, _ in members)[buyer]
            out.append((i, buyer, "buy"))
        elif score < 0 and held:
            holder = max(held, key=lambda n: held[n])
            del held[holder]
            out.append((i, holder, "sell"))
    return out


def orders(db: Path) -> list[tuple[int, str, str]]:
    with Store.open_readonly(db) as store:
        rows = store.db.execute("SELECT created_ts_ns, strategy, side FROM orders ORDER BY created_ts_ns, client_id")
        found = [tuple(r) for r in rows]
        first_close = int(store.db.execute("SELECT MIN(ts_ns) FROM equity").fetchone()[0])
    return [((ts - first_close) // MINUTE_NS, strategy, side) for ts, strategy, side in found]


async def run(cfg: Config, db: Path, max_events: int | None = None) -> Engine:
    engine = Engine.from_config(cfg, db, options=RunOptions(max_events=max_events, record_every_candle=True))
    with anyio.fail_after(120):
        await engine.run()
    return engine


@pytest.mark.parametrize(
    "members",
    [
        [("a", 2, 0), ("b", 1, 10)],  # a outweighs b: a's votes decide, every order is a's
        [("a", 1, 0), ("b", 2, 10)],  # a buys alone at 0; then b's votes decide: b buys too, and sells its own
        [("a", 1, 0), ("b", 1, 10), ("c", 2, 5)],  # a and b cancel out from candle 10 on; c trades alone
    ],
)
async def test_opposite_votes_give_the_documented_result_and_never_two_orders(
    tmp_path: Path, members: list[Member]
) -> None:
    db = tmp_path / "g.db"
    engine = await run(config(members), db)
    got = orders(db)
    candles = len(engine.equity_curve)
    assert got == plain_orders(members, candles)
    steps = [i for i, _, _ in got]
    assert len(steps) == len(set(steps)) and len(got) >= 10  # one order a step at most
    group = engine.trader.groups["g"]
    assert group.buys + group.sells >= len(got)
    # Every member was shown the group's position (what a member bought, the others see held).
    a = engine.trader.slot("a")
    b = engine.trader.slot("b")
    assert a is not None and b is not None and isinstance(a.strategy, Vote) and isinstance(b.strategy, Vote)
    assert a.strategy.shown == b.strategy.shown and any(q > 0 for q in a.strategy.shown)
    # The per-strategy figures remain: each order's fills and profit are its own strategy's.
    with Store.open_readonly(db) as store:
        by_strategy = dict(store.db.execute("SELECT strategy, COUNT(*) FROM fills GROUP BY strategy").fetchall())
    assert by_strategy == {n: c for n in ("a", "b", "c") if (c := sum(1 for o in got if o[1] == n))}


async def test_equal_weights_voting_opposite_ways_do_nothing(tmp_path: Path) -> None:
    db = tmp_path / "tie.db"
    engine = await run(config([("a", 1, 0), ("b", 1, 10)]), db)
    # Candle 0: a votes buy alone. From candle 10 on, a and b vote opposite ways on the same candles: 0, nothing.
    assert orders(db) == [(0, "a", "buy")]
    group = engine.trader.groups["g"]
    assert (group.buys, group.sells) == (1, 0) and group.ties >= 60
    a, b = engine.trader.slot("a"), engine.trader.slot("b")
    assert a is not None and b is not None and a.votes == b.votes + 1 and a.signals == 1 and b.signals == 0


async def test_the_same_strategies_ungrouped_still_act_on_their_own(tmp_path: Path) -> None:
    db = tmp_path / "solo.db"
    await run(config([("a", 2, 0), ("b", 1, 10)], group=None), db)
    got = orders(db)
    # Candle 10: a sells what it bought at 0 while b buys: two opposite orders in one step, as before groups.
    assert (10, "a", "sell") in got and (10, "b", "buy") in got


async def test_a_restart_mid_way_gives_the_same_group_orders(tmp_path: Path) -> None:
    members = [("a", 1, 0), ("b", 2, 10)]
    whole = tmp_path / "whole.db"
    await run(config(members), whole)
    split = tmp_path / "split.db"
    await run(config(members), split, max_events=255)
    assert 0 < len(orders(split)) < len(orders(whole))
    await run(config(members), split)
    assert orders(split) == orders(whole)


def test_groups_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"group 'g': its strategies must trade one pair \(a trades BTC/USDT, b "):
        config([("a", 1, 0), ("b", 1, 10)], pairs={"b": "ETH/USDT"})
    with pytest.raises(ConfigError, match=r"group 'g' has one strategy \(a\): a group votes between two or more"):
        config([("a", 1, 0)])
    with pytest.raises(ConfigError, match=r"group 'g': every strategy has weight 0 \(a, b\)"):
        config([("a", 0, 0), ("b", 0, 10)])
    with pytest.raises(ConfigError, match=r"strategies\.0\.group"):
        config([("a", 1, 0), ("b", 1, 10)], group="no spaces")
    assert [s.group for s in config([("a", 1, 0), ("b", 1, 10)]).strategies] == ["g", "g"]


# -- the rule, step by step, in the trader itself --------------------------------------------------------------------
class Scripted(Strategy):
    """Says what its script says for each candle (None, "buy" or "sell"), whatever it holds."""

    kind = "test_scripted"
    description = "Scripted signals (a test's strategy)."
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, script: Sequence[str | None]) -> None:
        self.script = list(script)
        super().__init__()

    def reset(self) -> None:
        self.seen = 0

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        side = self.script[self.seen]
        self.seen += 1
        return None if side is None else Signal("buy" if side == "buy" else "sell")


BIG = Decimal(10**9)
LOOSE = RiskLimits(
    max_order_qty=Decimal(100),
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


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.sampled_from(["0", "0.5", "1", "2"]), min_size=2, max_size=4),
    votes=st.lists(st.lists(st.sampled_from([None, "buy", "sell"]), min_size=4, max_size=4), min_size=1, max_size=40),
)
def test_each_step_gives_the_documented_order_and_never_two(weights: list[str], votes: list[list[str | None]]) -> None:
    instruments = example_instruments()
    pair = "BTC/USD"
    members = [
        StrategySlot(f"m{i}", pair, Scripted([v[i] for v in votes]), True, Decimal(w), Decimal(1000), group="g")
        for i, w in enumerate(weights)
    ]
    portfolio = Portfolio(instruments, {"USD": BIG}, "USD")
    now = [0]
    venue = PaperExchange(instruments, {"USD": BIG}, clock=lambda: now[0])
    oms = OrderManager(venue, portfolio, QuietListener(), "t")
    trader = Trader(instruments, venue, portfolio, RiskEngine(LOOSE, LOOSE), oms, members, lambda: now[0])
    price = Decimal(50000)
    for step, row in enumerate(votes):
        now[0] = (step + 1) * MINUTE_NS
        held = [portfolio.position_qty(m.name, pair) for m in members]
        said = list(zip(members, row, strict=False))  # the script has a column for each of up to four members
        score = sum((m.weight * (1 if v == "buy" else -1) for m, v in said if v), Decimal(0))
        expected: tuple[str, str] | None = None
        if score > 0:
            heaviest = max(m.weight for m, v in said if v == "buy")
            expected = (next(m.name for m, v in said if v == "buy" and m.weight == heaviest), "buy")
        elif score < 0 and max(held) > 0:
            expected = (members[held.index(max(held))].name, "sell")
        candle = Candle(pair, step * MINUTE_NS, 60, price, price, price, price, Decimal(5))
        requests = trader.on_market(candle)
        assert len(requests) <= 1
        got = [(r.strategy, r.side.value) for r in requests]
        assert got == ([] if expected is None else [expected])
        for r in requests:  # filled at once, at the close: the next step sees the position
            fill = Fill(TradeId(f"f{step}"), r.client_id, pair, r.side, r.qty, price, ZERO, "USD", now[0])
            portfolio.apply_fill(replace(fill, strategy=r.strategy))
            if r.side is OrderSide.SELL:
                assert r.qty == max(held)
