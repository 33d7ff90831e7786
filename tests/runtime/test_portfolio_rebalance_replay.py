"""portfolio_rebalance in a paper engine replaying two pairs that swing against each other: its fills are those a
plain simulation of the rule makes (market orders decided after both pairs' candles of a minute, filled at the
next candle's open, fees rounded up), it ends inside the band around its targets, every order is the strategy's
own, a restart mid-way gives exactly the fills of the uninterrupted run, and the facade shows its pairs and refuses a
weight for a pair it does not trade."""

from decimal import ROUND_DOWN, ROUND_UP, Decimal
from pathlib import Path

import anyio
import pytest

from engine.domain.market_data import Candle
from engine.domain.orders import Fill, OrderSide
from engine.errors import InvalidRequest
from engine.exchanges.catalog import default_instruments
from engine.exchanges.replay import ReplaySource
from engine.persistence.store import Store
from engine.risk.limits import RiskLimits
from engine.runtime.app import Engine, EngineError, RunOptions
from engine.runtime.config import Config, config_from_mapping
from engine.runtime.sources import ReplayMarketSource
from engine.strategies import PortfolioRebalance

pytestmark = pytest.mark.anyio
D = Decimal
MINUTE = 60
NS = 10**9
BTC, ETH = "BTC/USD", "ETH/USD"
TARGETS = {BTC: D("0.4"), ETH: D("0.4")}  # and 20 % cash
BAND = D("0.02")
PERIODS = 90


def swing(k: int) -> int:
    """A triangle wave: 0 up to 15 and back, every 30 periods."""
    phase = k % 30
    return phase if phase <= 15 else 30 - phase


def series() -> dict[str, list[Candle]]:
    """BTC gains 1 % a minute while ETH loses 1 %, then the other way round; each opens at the previous close."""
    closes = {
        BTC: [(D(50000) * D("1.01") ** swing(k)).quantize(D("0.1")) for k in range(PERIODS)],
        ETH: [(D(2500) * D("0.99") ** swing(k)).quantize(D("0.01")) for k in range(PERIODS)],
    }
    out: dict[str, list[Candle]] = {}
    for pair, prices in closes.items():
        candles = []
        for k, close in enumerate(prices):
            open_ = prices[k - 1] if k else close
            candles.append(
                Candle(pair, k * MINUTE * NS, MINUTE, open_, max(open_, close), min(open_, close), close, D(1000), 9)
            )
        out[pair] = candles
    return out


def source() -> ReplayMarketSource:
    candles = series()
    merged = [c for pair in zip(candles[BTC], candles[ETH], strict=True) for c in pair]  # a minute of each, in turn
    return ReplayMarketSource(ReplaySource.from_events(merged, name="two pairs"), None, "two pairs")


def config(**strategy: object) -> Config:
    unbounded = RiskLimits.unbounded().model_dump()
    return config_from_mapping(
        {
            "strategies": [
                {
                    "name": "core",
                    "kind": "portfolio_rebalance",
                    "pairs": [BTC, ETH],
                    "params": {"weight_1": "0.4", "weight_2": "0.4", "band_pct": "2"},
                    **strategy,
                }
            ],
            "market": {"speed": "max"},
            "paper": {"starting_balances": {"USD": 10000}, "fee_volume_30d": 0},
            "risk": {"limits": unbounded, "caps": unbounded},
        }
    )


async def run(db: Path, max_events: int | None = None) -> Engine:
    engine = Engine.from_config(config(), db, source=source(), options=RunOptions(max_events=max_events))
    with anyio.fail_after(60):
        await engine.run()
    return engine


def stored_fills(db: Path) -> list[Fill]:
    with Store.open_readonly(db) as store:
        return store.load_fills()


Row = tuple[int, str, OrderSide, Decimal, Decimal]  # (minute filled, pair, side, qty, price)


def plain_simulation() -> tuple[list[Row], Decimal, dict[str, Decimal]]:
    """The rule written out plainly over the two series: (fills, final cash, final holdings)."""
    candles = series()
    instruments = default_instruments()
    rate = {p: instruments[p].fee_rate(maker=False) for p in TARGETS}
    lot = {p: D(1).scaleb(-instruments[p].lot_decimals) for p in TARGETS}
    cash, held = D(10000), {BTC: D(0), ETH: D(0)}
    fills: list[Row] = []
    pending: list[tuple[str, OrderSide, Decimal]] = []
    for k in range(PERIODS):
        for pair, side, qty in pending:  # last minute's orders fill at this candle's open
            price = candles[pair][k].open
            fee = (qty * price * rate[pair]).quantize(D("0.00001"), rounding=ROUND_UP)
            if side is OrderSide.BUY:
                cash -= qty * price + fee
                held[pair] += qty
            else:
                cash += qty * price - fee
                held[pair] -= qty
            fills.append((k, pair, side, qty, price))
        pending = []
        close = {p: candles[p][k].close for p in TARGETS}
        equity = cash + sum((held[p] * close[p] for p in TARGETS), D(0))
        drift = {p: held[p] * close[p] / equity - TARGETS[p] for p in TARGETS}
        worst = max(abs(d) for d in [*drift.values(), sum(drift.values(), D(0))])
        if worst <= BAND:
            continue
        orders = []
        for p in TARGETS:
            delta = TARGETS[p] * equity - held[p] * close[p]
            side = OrderSide.BUY if delta > 0 else OrderSide.SELL
            qty = (abs(delta) / close[p]).quantize(lot[p], rounding=ROUND_DOWN)
            if side is OrderSide.SELL:
                qty = min(qty, held[p])
            if qty >= instruments[p].ordermin and qty * close[p] >= instruments[p].costmin:
                orders.append((p, side, qty))
        buys = sum((q * close[p] * (1 + rate[p]) for p, s, q in orders if s is OrderSide.BUY), D(0))
        assert buys <= cash / D("1.05")  # the cash never binds in this series: no scaling to write out
        fees = sum((q * close[p] * rate[p] for p, _, q in orders), D(0))
        if fees <= (worst - BAND) * equity:
            pending = sorted(orders, key=lambda o: o[1] is OrderSide.BUY)
    return fills, cash, held


async def test_two_pairs_are_rebalanced_as_the_plain_rule_says_and_end_inside_the_band(tmp_path: Path) -> None:
    db = tmp_path / "rebalance.db"
    engine = await run(db)
    expected, cash, held = plain_simulation()
    assert len(expected) >= 10 and {side for _, _, side, _, _ in expected} == {OrderSide.BUY, OrderSide.SELL}
    fills = stored_fills(db)
    got = [(f.ts_ns // (MINUTE * NS), f.pair, f.side, f.qty, f.price) for f in fills]
    assert sorted(got, key=lambda r: (r[0], r[1])) == sorted(expected, key=lambda r: (r[0], r[1]))
    assert {f.strategy for f in fills} == {"core"}
    portfolio = engine.portfolio
    assert {p: portfolio.position_qty("core", p) for p in TARGETS} == held
    assert portfolio.balances.total("USD") == cash
    # The end: every weight within the band of its target, at the last closes.
    last = {p: c[-1].close for p, c in series().items()}
    equity = cash + sum((held[p] * last[p] for p in TARGETS), D(0))
    for p in TARGETS:
        assert abs(held[p] * last[p] / equity - TARGETS[p]) <= BAND
    slot = engine.trader.slot("core")
    assert slot is not None and slot.signals == len(fills) and slot.refusals == 0


async def test_a_restart_mid_way_gives_the_fills_of_the_uninterrupted_run(tmp_path: Path) -> None:
    whole = tmp_path / "whole.db"
    await run(whole)
    split = tmp_path / "split.db"
    await run(split, max_events=75)  # stops between the two pairs' candles of minute 37
    before = len(stored_fills(split))
    assert 0 < before < len(stored_fills(whole))
    await run(split)
    key = [(f.ts_ns, f.pair, f.side, f.qty, f.price, f.fee) for f in stored_fills(split)]
    assert key == [(f.ts_ns, f.pair, f.side, f.qty, f.price, f.fee) for f in stored_fills(whole)]


def test_a_pair_the_engine_does_not_know_is_refused_at_start() -> None:
    cfg = config(pairs=[BTC, "NOPE/USD"])
    with pytest.raises(EngineError, match=r"strategy 'core' trades unknown pair 'NOPE/USD'"):
        Engine.from_config(cfg, None, source=source(), instruments=default_instruments())


async def test_the_facade_shows_its_pairs_and_refuses_a_weight_for_a_pair_it_does_not_trade(tmp_path: Path) -> None:
    engine = Engine.from_config(config(), tmp_path / "facade.db", source=source())
    async with engine.serve() as facade:
        with anyio.fail_after(30):
            await engine.done.wait()
        view = await facade.strategy("core")
        assert (view.pair, view.pairs) == (BTC, [BTC, ETH])
        with pytest.raises(InvalidRequest, match=r"weight_3 = 0.1 names no pair: pairs lists 2"):
            await facade.tune_strategy("core", {"weight_3": "0.1"}, preview=False, source="test")
        preview = await facade.tune_strategy("core", {"weight_2": "0.5"}, preview=True, source="test")
        assert preview.what_if is None and "several pairs" in (preview.what_if_note or "")
        applied = await facade.tune_strategy("core", {"weight_2": "0.5"}, preview=False, source="test")
        assert applied.applied
        slot = engine.trader.slot("core")
        assert slot is not None and isinstance(slot.strategy, PortfolioRebalance)
        assert slot.strategy.targets() == {BTC: D("0.4"), ETH: D("0.5")}
