"""Per-strategy circuit breakers in a replay: a run of losing round trips and a burst of strategy errors each stop
their strategy at the moment plain code in this file says they should, with a ``breaker_tripped`` event; the stop
is saved (a restart keeps the strategy disabled) and enabling the strategy re-arms the breaker."""

import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest

from engine.domain.market_data import Candle
from engine.persistence import Store
from engine.runtime.app import Engine, RunOptions
from engine.runtime.cli_status import render_status, saved_status
from engine.runtime.config import Config, config_from_mapping
from engine.strategies import REGISTRY, EmaCross, Param, ParamValue, Signal, StrategyContext

pytestmark = pytest.mark.anyio
SAMPLE = Path(__file__).resolve().parents[2] / "engine" / "data" / "kraken_xbtusdt_1m_ohlc.json"


class Flaky(EmaCross):
    """EMA cross that raises on the candles whose index is in ``fail_from``..``fail_from + fail_count``."""

    kind = "test_flaky"
    description = "EMA cross that fails on purpose (a test's strategy)."
    params: ClassVar[tuple[Param, ...]] = (
        *EmaCross.own_params,
        Param("fail_from", "int", 100, 0, 10_000, "First failing candle."),
        Param("fail_count", "int", 3, 0, 10_000, "How many candles fail in a row."),
    )

    def reset(self) -> None:
        super().reset()
        self._seen = 0

    @classmethod
    def check_combination(cls, values: Mapping[str, ParamValue]) -> None:
        EmaCross.check_combination(values)

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        self._seen += 1
        start = int(self.values["fail_from"])
        if start <= self._seen < start + int(self.values["fail_count"]):
            raise RuntimeError(f"candle {self._seen} fails on purpose")
        return super().on_candle(candle, ctx)


@pytest.fixture
def flaky() -> Iterator[None]:
    REGISTRY[Flaky.kind] = Flaky
    yield
    del REGISTRY[Flaky.kind]


def config(kind: str, params: Mapping[str, object], breakers: Mapping[str, object] | None) -> Config:
    strategy: dict[str, object] = {"name": "s", "kind": kind, "pair": "BTC/USDT", "params": dict(params)}
    data: dict[str, Any] = {
        "quote_currency": "USDT",
        "market": {"speed": "max", "file": str(SAMPLE), "pair": "BTC/USDT"},
        "paper": {"starting_balances": {"USDT": "10000"}, "fee_volume_30d": "0"},
        "strategies": [strategy],
    }
    if breakers is not None:
        data["risk"] = {"breakers": dict(breakers)}
    return config_from_mapping(data)


async def run(cfg: Config, db: Path, max_events: int | None = None) -> Engine:
    engine = Engine.from_config(cfg, db, options=RunOptions(max_events=max_events))
    with anyio.fail_after(120):
        await engine.run()
    return engine


def fills(db: Path) -> list[tuple[int, str, str, str, str]]:
    with Store.open_readonly(db) as store:
        return [
            tuple(r)
            for r in store.db.execute("SELECT ts_ns, side, price, qty, fee FROM fills ORDER BY ts_ns, trade_id")
        ]


def events(db: Path, kind: str) -> list[tuple[int, dict[str, Any]]]:
    with Store.open_readonly(db) as store:
        rows = store.db.execute("SELECT ts_ns, payload FROM events WHERE kind = ? ORDER BY id", (kind,)).fetchall()
    return [(ts, json.loads(p)) for ts, p in rows]


def plain_round_trips(rows: list[tuple[int, str, str, str, str]]) -> list[tuple[int, Decimal]]:
    """(exit fill's row index, net PnL) of each round trip: one buy then one sell of the same quantity."""
    trips = []
    for i in range(0, len(rows) - 1, 2):
        (_, s1, p1, q1, f1), (_, s2, p2, q2, f2) = rows[i], rows[i + 1]
        assert (s1, s2) == ("buy", "sell") and q1 == q2
        net = (Decimal(p2) - Decimal(p1)) * Decimal(q1) - Decimal(f1) - Decimal(f2)
        trips.append((i + 1, net))
    return trips


async def test_a_run_of_losses_stops_the_strategy_where_a_plain_recount_says(tmp_path: Path) -> None:
    params = {"fast": 5, "slow": 20}
    free = tmp_path / "free.db"
    await run(config("ema_cross", params, None), free)
    expected = fills(free)
    trips = plain_round_trips(expected)
    n = 3
    run_length, stop_at = 0, None
    for exit_index, net in trips:
        run_length = run_length + 1 if net < 0 else 0
        if run_length == n:
            stop_at = exit_index
            break
    assert stop_at is not None and stop_at < len(expected) - 2, "the data must hold a run of losses mid-way"
    db = tmp_path / "breaker.db"
    engine = await run(config("ema_cross", params, {"max_consecutive_losses": n}), db)
    assert fills(db) == expected[: stop_at + 1]
    tripped = events(db, "breaker_tripped")
    assert [(p["strategy"], p["rule"]) for _, p in tripped] == [("s", "max_consecutive_losses")]
    assert tripped[0][0] >= expected[stop_at][0]
    assert engine.trader.slot("s").enabled is False  # type: ignore[union-attr]
    with Store.open_readonly(db) as store:
        report = saved_status(store)
    assert report["breaker_trips"]["s"]["rule"] == "max_consecutive_losses"
    assert "breaker max_consecutive_losses stopped s" in render_status({**report, "engine_running": None})
    # The stop is saved: a restart on the same state file keeps the strategy disabled.
    again = Engine.from_config(config("ema_cross", params, {"max_consecutive_losses": n}), db)
    async with again.serve() as facade:
        assert (await facade.strategy("s")).enabled is False
        view = await facade.risk()
        assert [b.name for b in view.breakers] == ["s: max_consecutive_losses"]
        # Enabling it again re-arms the breaker (the run of losses starts anew).
        await facade.set_strategy_enabled("s", True, source="test")
        assert again.trader.slot("s").breaker == ""  # type: ignore[union-attr]
        assert not any(b.tripped for b in (await facade.risk()).breakers)


async def test_a_burst_of_errors_stops_the_strategy(tmp_path: Path, flaky: None) -> None:
    params = {"fast": 5, "slow": 20, "fail_from": 300, "fail_count": 4}
    db = tmp_path / "errors.db"
    engine = await run(config("test_flaky", params, {"max_errors": 3, "error_window_s": 600}), db)
    tripped = events(db, "breaker_tripped")
    assert [(p["rule"]) for _, p in tripped] == ["max_errors"]
    candles = json.loads(SAMPLE.read_text())["result"]
    rows = next(v for k, v in candles.items() if k != "last")
    third_failure_close_ns = (int(rows[300 + 2 - 1][0]) + 60) * 10**9  # the 302nd candle (1-based), closed
    assert tripped[0][0] == third_failure_close_ns
    assert all(ts <= third_failure_close_ns or side == "sell" for ts, side, *_ in fills(db))
    slot = engine.trader.slot("s")
    assert slot is not None and slot.enabled is False and slot.errors == 4


async def test_two_errors_under_the_threshold_trip_nothing(tmp_path: Path, flaky: None) -> None:
    params = {"fast": 5, "slow": 20, "fail_from": 300, "fail_count": 2}
    db = tmp_path / "few.db"
    await run(config("test_flaky", params, {"max_errors": 3}), db)
    assert events(db, "breaker_tripped") == []


async def test_a_restart_in_the_middle_of_a_run_of_losses_trips_where_the_uninterrupted_run_does(
    tmp_path: Path,
) -> None:
    params = {"fast": 5, "slow": 20}
    n = 3
    straight = tmp_path / "straight.db"
    await run(config("ema_cross", params, {"max_consecutive_losses": n}), straight)
    expected = fills(straight)
    free = tmp_path / "free.db"
    await run(config("ema_cross", params, None), free)
    trips = plain_round_trips(fills(free))
    run_length, first_loss_exit = 0, None
    for exit_index, net in trips:
        run_length = run_length + 1 if net < 0 else 0
        if run_length == 1:
            first_loss_exit = exit_index
        if run_length == n:
            break
    assert first_loss_exit is not None
    rows = json.loads(SAMPLE.read_text())["result"]
    first_open_ns = int(next(v for k, v in rows.items() if k != "last")[0][0]) * 10**9
    # Stop two candles after the run's first losing exit: the count (1) must survive the restart.
    cut = (fills(free)[first_loss_exit][0] - first_open_ns) // (60 * 10**9) + 2
    resumed = tmp_path / "resumed.db"
    await run(config("ema_cross", params, {"max_consecutive_losses": n}), resumed, max_events=cut)
    await run(config("ema_cross", params, {"max_consecutive_losses": n}), resumed)
    assert fills(resumed) == expected
    assert [ts for ts, _ in events(resumed, "breaker_tripped")] == [ts for ts, _ in events(straight, "breaker_tripped")]
