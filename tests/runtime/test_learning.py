"""Adaptive strategy weights ([learning]): the multiplicative weights rule against a plain reimplementation with
numbers worked by hand, the operator's bounds, too few trades, the schedule in engine time, a replay in which one
strategy wins and the other loses, restarts that keep the weights and never apply a tick twice, the operator's
config outranking the learned weights, and clear configuration errors."""

import json
import math
import os
import statistics
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest

from engine.domain.market_data import Candle
from engine.persistence import Store
from engine.portfolio.performance import ClosedTrade
from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import Config, ConfigError, LearningConfig, config_from_mapping
from engine.runtime.learning import (
    LEARNING_KV,
    Score,
    lookback_trips,
    multiplicative_update,
    next_boundary,
    score_trips,
)
from engine.strategies import REGISTRY, Param, Signal, Strategy, StrategyContext

pytestmark = pytest.mark.anyio
HOUR = 3600
DAY = 24 * HOUR
START = 1_700_000_000 // DAY * DAY  # a midnight UTC
HOURS = 8 * 24  # eight days of hourly candles
REPO = Path(__file__).resolve().parents[2]


def settings(**values: Any) -> LearningConfig:
    return LearningConfig.model_validate({"enabled": True, **values})


def trip(strategy: str, ret: str, exit_s: int = 0, notional: str = "1000") -> ClosedTrade:
    """A round trip whose net return on its entry notional is ``ret``."""
    qty, price = Decimal(1), Decimal(notional)
    pnl = Decimal(ret) * price
    return ClosedTrade(
        "BTC/USD", strategy, exit_s * 10**9 - 1, exit_s * 10**9, qty, price, price + pnl, pnl, Decimal(0)
    )


# -- the rule, against plain arithmetic ---------------------------------------------------------------------------
def plain(weights: dict[str, float], scores: dict[str, float], eta: float, scale: float) -> dict[str, float]:
    return {n: w * math.exp(eta * max(-1.0, min(1.0, scores[n] / scale))) for n, w in weights.items()}


def test_each_weight_is_multiplied_by_exp_eta_gain_as_worked_by_hand() -> None:
    s = settings(score="mean_return", eta="0.2", keep_total=False, min_weight="0.1", max_weight="5")
    weights = {"a": Decimal(1), "b": Decimal(1), "c": Decimal("1.5")}
    # mean returns 0.5 % and -2 % per trip (scale 1 %): gains 0.5 and -1 (capped); c's 0.25 %: gain 0.25.
    scores = {"a": Score(6, Decimal("0.005")), "b": Score(6, Decimal("-0.02")), "c": Score(6, Decimal("0.0025"))}
    updates = {u.strategy: u for u in multiplicative_update(weights, scores, s)}
    # By hand: exp(0.1) = 1.105170918..., exp(-0.2) = 0.818730753..., 1.5 × exp(0.05) = 1.576906...
    assert updates["a"].after == Decimal("1.1052")
    assert updates["b"].after == Decimal("0.8187")
    assert updates["c"].after == Decimal("1.5769")
    expected = plain({"a": 1, "b": 1, "c": 1.5}, {"a": 0.005, "b": -0.02, "c": 0.0025}, 0.2, 0.01)
    for name, u in updates.items():
        assert float(u.after) == pytest.approx(expected[name], abs=0.00005)
        assert u.changed and u.trades == 6 and "mean_return" in u.reason
    assert updates["b"].gain == Decimal(-1)


def test_keep_total_moves_capital_from_the_loser_to_the_winner() -> None:
    s = settings(score="mean_return", eta="0.2", min_weight="0.1", max_weight="5")
    weights = {"a": Decimal(1), "b": Decimal(1)}
    scores = {"a": Score(6, Decimal("0.005")), "b": Score(6, Decimal("-0.02"))}
    updates = {u.strategy: u for u in multiplicative_update(weights, scores, s)}
    raw = plain({"a": 1, "b": 1}, {"a": 0.005, "b": -0.02}, 0.2, 0.01)
    scale = 2 / sum(raw.values())  # by hand: 2 / (1.105171 + 0.818731) = 1.039552
    assert updates["a"].after == Decimal(str(round(raw["a"] * scale, 4)))  # 1.1489
    assert updates["b"].after == Decimal(str(round(raw["b"] * scale, 4)))  # 0.8511
    assert updates["a"].after + updates["b"].after == 2
    assert "keep their sum" in updates["a"].reason


def test_bounds_hold_every_weight_and_keep_total_rescales_the_others() -> None:
    s = settings(score="sharpe", eta="1", keep_total=False, min_weight="0.9", max_weight="1.05")
    weights = {"a": Decimal(1), "b": Decimal(1)}
    scores = {"a": Score(9, Decimal(3)), "b": Score(9, Decimal(-3))}  # gains +1 and -1: x e and x 1/e
    updates = {u.strategy: u for u in multiplicative_update(weights, scores, s)}
    assert updates["a"].after == Decimal("1.05") and "upper bound" in updates["a"].reason
    assert updates["b"].after == Decimal("0.9") and "lower bound" in updates["b"].reason
    # keep_total with a per-strategy bound: a is held at its own 1.1, the rest of the total goes to b and c.
    s = settings(score="sharpe", eta="0.5", min_weight="0.5", max_weight="3", strategies={"a": {"max_weight": "1.1"}})
    weights = {"a": Decimal(1), "b": Decimal(1), "c": Decimal(1)}
    scores = {"a": Score(9, Decimal(1)), "b": Score(9, Decimal(0)), "c": Score(9, Decimal("-0.5"))}
    updates = {u.strategy: u for u in multiplicative_update(weights, scores, s)}
    assert updates["a"].after == Decimal("1.1")
    # By hand: b and c share 3 - 1.1 = 1.9 in the ratio exp(0) : exp(-0.25) = 1 : 0.778801.
    ratio = math.exp(-0.25)
    assert updates["b"].after == Decimal(str(round(1.9 / (1 + ratio), 4)))  # 1.0680
    assert updates["c"].after == Decimal(str(round(1.9 * ratio / (1 + ratio), 4)))  # 0.8320
    assert sum(u.after for u in updates.values()) == 3


def test_too_few_trades_keeps_the_weight_and_says_why() -> None:
    s = settings(min_trades=5)
    score = score_trips([trip("a", "0.01"), trip("a", "0.02")], "sharpe", 5)
    assert score.value is None and score.trades == 2 and "fewer than min_trades 5" in score.why
    updates = multiplicative_update({"a": Decimal("1.3"), "b": Decimal(1)}, {"a": score, "b": Score(0, None, "x")}, s)
    assert [(u.after, u.changed) for u in updates] == [(Decimal("1.3"), False), (Decimal(1), False)]
    assert "fewer than min_trades 5: weight kept" in updates[0].reason
    same = score_trips([trip("a", "0.01")] * 6, "sharpe", 5)
    assert same.value is None and "the same" in same.why


def test_scores_against_plain_statistics() -> None:
    returns = ["0.012", "-0.004", "0.031", "0.002", "-0.010", "0.007"]
    trips = [trip("a", r) for r in returns]
    floats = [float(r) for r in returns]
    sharpe = score_trips(trips, "sharpe", 3)
    assert float(sharpe.value or 0) == pytest.approx(statistics.mean(floats) / statistics.stdev(floats), rel=1e-12)
    mean = score_trips(trips, "mean_return", 3)
    assert float(mean.value or 0) == pytest.approx(statistics.mean(floats), rel=1e-12)
    assert sharpe.trades == mean.trades == 6


def test_the_lookback_is_a_window_of_engine_time_or_the_last_n_trips() -> None:
    trips = [trip("a", "0.01", exit_s=START + h * HOUR) for h in range(0, 48, 4)] + [trip("b", "0.01", START)]
    now = (START + 40 * HOUR) * 10**9
    by_time = lookback_trips(trips, "a", now, settings(lookback="1d"))
    assert [t.exit_ts_ns // 10**9 - START for t in by_time] == [h * HOUR for h in (20, 24, 28, 32, 36, 40)]
    by_count = lookback_trips(trips, "a", now, settings(lookback=3))
    assert [t.exit_ts_ns // 10**9 - START for t in by_count] == [h * HOUR for h in (32, 36, 40)]


def test_ticks_fall_on_multiples_of_every() -> None:
    day = DAY * 10**9
    assert next_boundary(START * 10**9, day) == (START + DAY) * 10**9
    assert next_boundary(START * 10**9 - 1, day) == START * 10**9
    assert next_boundary((START + 5 * HOUR) * 10**9, 12 * HOUR * 10**9) == (START + 12 * HOUR) * 10**9


# -- configuration ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("learning", "message"),
    [
        ({"every": "daily"}, "learning.every: Value error, 'daily' is not an interval"),
        ({"lookback": "30 days"}, "is not an interval"),
        ({"lookback": 0}, "a number of round trips must be at least 1"),
        ({"min_weight": "0"}, "learning.min_weight: Input should be greater than 0"),
        ({"max_weight": "11"}, "learning.max_weight: Input should be less than or equal to 10"),
        ({"min_weight": "2", "max_weight": "1"}, "min_weight 2 is above max_weight 1"),
        ({"eta": "1.5"}, "learning.eta: Input should be less than or equal to 1"),
        ({"score": "sortino"}, "learning.score: Input should be 'sharpe' or 'mean_return'"),
        ({"strategies": {"nope": {"max_weight": "2"}}}, "learning.strategies names nope, not a configured strategy"),
        ({"strategies": {"a": {"min_weight": "3"}}}, "strategies.a: min_weight 3 is above max_weight 2"),
        ({"enabled": True, "min_weight": "1.5"}, "strategy 'a': weight 1 lies outside its learning bounds [1.5, 2]"),
        ({"rate": "0.1"}, "learning.rate: unknown key"),
    ],
)
def test_configuration_errors_name_the_key_and_the_rule(learning: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"strategies": [{"name": "a", "kind": "ema_cross"}], "learning": learning})
    assert message in str(caught.value)


def test_learning_is_off_by_default() -> None:
    assert Config().learning.enabled is False


# -- in the engine ------------------------------------------------------------------------------------------------
class Cycle(Strategy):
    """Buys at hour ``buy_hour`` of each 12-hour cycle (engine time) and sells six hours later."""

    kind = "test_cycle"
    description = "buys and sells at fixed hours (a test's strategy)"
    params: ClassVar[tuple[Param, ...]] = (Param("buy_hour", "int", 0, 0, 11, "Hour of the 12-hour cycle to buy."),)

    def reset(self) -> None:
        return None

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        hour = candle.close_ns // (HOUR * 10**9) % 12
        buy_hour = int(self.values["buy_hour"])
        if ctx.position_qty == 0 and hour == buy_hour:
            return Signal("buy")
        if ctx.position_qty > 0 and hour == (buy_hour + 6) % 12:
            return Signal("sell")
        return None


@pytest.fixture(autouse=True)
def cycle() -> Iterator[None]:
    REGISTRY[Cycle.kind] = Cycle
    yield
    del REGISTRY[Cycle.kind]


def write_prices(path: Path) -> None:
    """Hourly candles that rise 1 % an hour for six hours of every twelve, then fall as much: buying at hour 0 of
    the cycle wins, buying at hour 6 loses."""
    rows, close = [], 30000.0
    for h in range(HOURS):
        open_ = close
        close = open_ * (1.01 if h % 12 < 6 else 1 / 1.01)
        high, low = max(open_, close) * 1.001, min(open_, close) * 0.999
        rows.append(f"{START + h * HOUR},{open_:.1f},{high:.1f},{low:.1f},{close:.1f},5.0,10")
    path.write_text("\n".join(rows) + "\n")


def learning_config(folder: Path, **learning: Any) -> Config:
    data = folder / "cycle_60.csv"
    if not data.exists():
        write_prices(data)
    return config_from_mapping(
        {
            "market": {"speed": "max", "file": str(data), "pair": "BTC/USD"},
            "paper": {"starting_balances": {"USD": "100000"}, "fee_volume_30d": "0"},
            "strategies": [
                {"name": "winner", "kind": "test_cycle", "params": {"buy_hour": 0}},
                {"name": "loser", "kind": "test_cycle", "params": {"buy_hour": 6}},
            ],
            "learning": {
                "enabled": True,
                "every": "1d",
                "lookback": "2d",
                "min_trades": 3,
                "score": "mean_return",
                "eta": "0.5",
                **learning,
            },
        }
    )


async def run(config: Config, db: Path, max_events: int | None = None) -> Engine:
    engine = Engine.from_config(config, db, options=RunOptions(id_prefix="l", max_events=max_events))
    with anyio.fail_after(120):
        await engine.run()
    return engine


def events(db: Path, kind: str) -> list[tuple[int, str, dict[str, Any]]]:
    with Store.open_readonly(db) as store:
        rows = store.db.execute("SELECT ts_ns, source, payload FROM events WHERE kind = ? ORDER BY id", (kind,))
        return [(ts, source, json.loads(p)) for ts, source, p in rows.fetchall()]


def weights(engine: Engine) -> dict[str, Decimal]:
    return {s.name: s.weight for s in engine.slots}


async def test_the_winner_gains_weight_the_loser_loses_it_at_each_midnight_with_reasons(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    engine = await run(learning_config(tmp_path), db)
    w = weights(engine)
    assert w["winner"] > 1 > w["loser"], w
    assert abs(w["winner"] + w["loser"] - 2) <= Decimal("0.0002")  # keep_total, to the 4-decimal rounding
    ticks = events(db, "learning_tick")
    # The schedule: every midnight (engine time) after the first candle's close, through the last close; not per
    # candle. The first candle closes at START + 1 h, the last at START + 8 d.
    assert [ts for ts, _, _ in ticks] == [(START + d * DAY) * 10**9 for d in range(1, 9)]
    assert [p["tick"] for _, _, p in ticks] == list(range(1, 9))
    # The first midnight sees two round trips each (fewer than min_trades 3): weights kept, and said so.
    first = ticks[0][2]["strategies"]
    assert first["winner"]["after"] == first["winner"]["before"] == "1"
    assert "fewer than min_trades 3: weight kept" in first["winner"]["reason"]
    changes = events(db, "weight_changed")
    assert changes and {p["strategy"] for _, _, p in changes} == {"winner", "loser"}
    for ts, source, p in changes:
        assert source == "learning" and ts % (DAY * 10**9) == 0
        assert p["reason"] and p["trades"] >= 3 and p["bounds"] == ["0.25", "2"] and "Arora" in p["rule"]
        moved_up = Decimal(p["after"]) > Decimal(p["before"])
        assert moved_up == (p["strategy"] == "winner") == (Decimal(p["score"]) > 0)
    last = {p["strategy"]: p["after"] for _, _, p in changes}
    assert {k: Decimal(v) for k, v in last.items()} == w
    # Entries are sized by the weight in force: the winner's buys grow after its first raise.
    with Store.open_readonly(db) as store:
        fills = store.load_fills()
        saved = store.get_kv(LEARNING_KV)
    buys = [f for f in fills if f.strategy == "winner" and f.side.value == "buy"]
    first_raise = min(ts for ts, _, p in changes if p["strategy"] == "winner")
    before = [f.qty * f.price for f in buys if f.ts_ns < first_raise]
    after = [f.qty * f.price for f in buys if f.ts_ns > first_raise]
    assert max(before) < Decimal(1010) < min(after)
    assert saved["weights"] == {k: format(v, "f") for k, v in w.items()} and saved["next_ns"] > ticks[-1][0]


async def test_the_views_show_weights_bounds_and_the_last_change(tmp_path: Path) -> None:
    config = learning_config(tmp_path, strategies={"loser": {"min_weight": "0.5"}})
    db = tmp_path / "v.db"
    await run(config, db)
    again = Engine.from_config(config, db, options=RunOptions(id_prefix="l"))
    async with again.serve() as facade:
        view = await facade.strategies()
        by_name = {s.name: s for s in view.strategies}
        assert by_name["winner"].weight_bounds == [Decimal("0.25"), Decimal(2)]
        assert by_name["loser"].weight_bounds == [Decimal("0.5"), Decimal(2)]
        assert by_name["winner"].weight > 1 and by_name["winner"].weight_reason.startswith("mean_return")
        assert by_name["winner"].weight_changed_at is not None and by_name["winner"].weight_changed_at.endswith("Z")
        assert view.learning is not None and view.learning.every == "1d" and view.learning.updates == 8
        assert "Arora" in view.learning.rule
        dumped = json.loads(view.model_dump_json())
        assert dumped["strategies"][0]["weight_bounds"] == ["0.25", "2"]
    off = Engine.from_config(learning_config(tmp_path, enabled=False), tmp_path / "off.db")
    async with off.serve() as facade:
        view = await facade.strategies()
        assert view.learning is None and all(s.weight_bounds is None for s in view.strategies)


@pytest.mark.parametrize("stop_at", [24 + 23, 48 + 22, 48 + 23, 100])
async def test_a_restart_keeps_the_weights_and_never_applies_a_tick_twice(tmp_path: Path, stop_at: int) -> None:
    """Stopped after ``stop_at`` candles (the 24th candle closes at the first midnight: 47 stops right after the
    second midnight's tick, 70 on the candle before the third's), then resumed on the same state file: the same
    ticks, weight changes and fills as one uninterrupted run."""
    config = learning_config(tmp_path)
    straight = await run(config, tmp_path / "a.db")
    first = await run(config, tmp_path / "b.db", max_events=stop_at)
    with Store.open_readonly(tmp_path / "b.db") as store:
        assert store.get_kv(LEARNING_KV)["weights"] == {k: format(v, "f") for k, v in weights(first).items()}
    resumed = await run(config, tmp_path / "b.db")
    assert weights(resumed) == weights(straight)
    reopened = await run(config, tmp_path / "b.db")  # once more, at the end of the data: nothing moves
    assert weights(reopened) == weights(straight)
    for kind in ("learning_tick", "weight_changed"):
        assert [(ts, p) for ts, _, p in events(tmp_path / "b.db", kind)] == [
            (ts, p) for ts, _, p in events(tmp_path / "a.db", kind)
        ]
    with Store.open_readonly(tmp_path / "a.db") as a, Store.open_readonly(tmp_path / "b.db") as b:
        assert [(f.ts_ns, f.qty, f.price) for f in a.load_fills()] == [
            (f.ts_ns, f.qty, f.price) for f in b.load_fills()
        ]


async def test_the_operators_config_outranks_the_learned_weights(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    learned = weights(await run(learning_config(tmp_path), db))
    assert learned["winner"] > 1
    # Narrower bounds clamp the learned weights at start, with an event naming the operator's config.
    narrow = learning_config(tmp_path, max_weight="1.05", min_weight="0.95")
    engine = Engine.from_config(narrow, db, options=RunOptions(id_prefix="l", max_events=0))
    async with engine.serve():
        assert weights(engine) == {"winner": Decimal("1.05"), "loser": Decimal("0.95")}
    # A configured weight changed since: it replaces the learned one.
    data = learning_config(tmp_path).model_dump()
    data["strategies"][0]["weight"] = Decimal("1.5")
    engine = Engine.from_config(config_from_mapping(data), db, options=RunOptions(id_prefix="l", max_events=0))
    async with engine.serve():
        assert weights(engine)["winner"] == Decimal("1.5")
    # Learning off: the configured weights apply again and the learned state is dropped.
    engine = Engine.from_config(learning_config(tmp_path, enabled=False), db, options=RunOptions(max_events=0))
    async with engine.serve():
        assert weights(engine) == {"winner": Decimal(1), "loser": Decimal(1)}
    operator = [p for _, source, p in events(db, "weight_changed") if source == "operator:config"]
    reasons = [p["reason"] for p in operator]
    assert any("bounds are now [0.95, 1.05]" in r for r in reasons)
    assert any("changed this strategy's weight from 1 to 1.5" in r for r in reasons)
    assert any("learning is off" in r for r in reasons)
    with Store.open_readonly(db) as store:
        assert store.get_kv(LEARNING_KV) is None


CYCLE_FILE = """
from typing import ClassVar

from engine.strategies import Param, Signal, Strategy


class Cycle(Strategy):
    kind = "test_cycle"
    description = "buys and sells at fixed hours (a test's strategy)"
    params: ClassVar[tuple[Param, ...]] = (Param("buy_hour", "int", 0, 0, 11, "Hour of the 12-hour cycle to buy."),)

    def reset(self):
        return None

    def on_candle(self, candle, ctx):
        hour = candle.close_ns // (3600 * 10**9) % 12
        buy_hour = int(self.values["buy_hour"])
        if ctx.position_qty == 0 and hour == buy_hour:
            return Signal("buy")
        if ctx.position_qty > 0 and hour == (buy_hour + 6) % 12:
            return Signal("sell")
        return None
"""


def child_config(folder: Path) -> Path:
    """The replay above as a config file for ``trading-mcp run`` in a child process (its strategy as a plug-in)."""
    write_prices(folder / "cycle_60.csv")
    (folder / "cycle.py").write_text(CYCLE_FILE)
    path = folder / "learning.toml"
    path.write_text(
        'strategy_paths = ["cycle.py"]\n'
        f'[market]\nspeed = "max"\nfile = "{folder / "cycle_60.csv"}"\npair = "BTC/USD"\n'
        '[paper]\nstarting_balances = { USD = "100000" }\nfee_volume_30d = "0"\n'
        '[[strategies]]\nname = "winner"\nkind = "test_cycle"\nparams = { buy_hour = 0 }\n'
        '[[strategies]]\nname = "loser"\nkind = "test_cycle"\nparams = { buy_hour = 6 }\n'
        '[learning]\nenabled = true\nevery = "1d"\nlookback = "2d"\nmin_trades = 3\nscore = "mean_return"\n'
        'eta = "0.5"\n'
    )
    return path


def outcome(db: Path) -> tuple[Any, ...]:
    with Store.open_readonly(db) as store:
        fills = [(f.strategy, f.ts_ns, f.side.value, f.qty, f.price) for f in store.load_fills()]
        saved = store.get_kv(LEARNING_KV)
    ticks = [(ts, p) for ts, _, p in events(db, "learning_tick")]
    changes = [(ts, p) for ts, _, p in events(db, "weight_changed")]
    return fills, saved["weights"], saved["next_ns"], ticks, changes


@pytest.mark.parametrize("kill", ["learning:2", "learning:5", "event:47", "event:48"])
def test_sigkill_at_a_tick_then_restart_ends_as_an_uninterrupted_run(
    tmp_path: Path, kill: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL right after a tick is saved (before its candle trades), or just before and after the tick's candle;
    the restart trades with the saved weights and applies no tick twice."""
    from recovery.child import Kill, run_child

    # The children run this checkout's engine, wherever the installed one points.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    config = child_config(tmp_path)
    straight = run_child(tmp_path / "a.db", config=config)
    assert straight.finished, straight.last_line
    point, n = kill.split(":")
    killed = run_child(tmp_path / "b.db", config=config, kill=Kill(point, int(n)))
    assert killed.killed, killed.last_line
    resumed = run_child(tmp_path / "b.db", config=config)
    assert resumed.finished, resumed.last_line
    assert outcome(tmp_path / "b.db") == outcome(tmp_path / "a.db")
