"""End to end: the engine paper-trades the shipped real Kraken 1-minute capture, and resumes after a stop."""

from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest

from engine.runtime.app import Engine, RunOptions
from engine.runtime.config import Config, config_from_mapping

pytestmark = pytest.mark.anyio


def fast_config(**overrides: Any) -> Config:
    return config_from_mapping({"market": {"speed": "max"}, **overrides})


async def run_to_end(engine: Engine) -> None:
    with anyio.fail_after(120):
        await engine.run()


def final_state(engine: Engine) -> dict[str, Any]:
    p = engine.portfolio
    return {
        "balances": {a: (b.total, b.held) for a, b in p.balances.assets().items()},
        "positions": {k: (v.qty, v.avg_entry, v.realized_pnl, v.fees) for k, v in p.positions.items()},
        "round_trips": list(p.round_trips),
        "orders": {cid: (o.status, o.filled_qty, o.fees) for cid, o in engine.oms.orders.items()},
        "equity_last": engine.equity_curve[-1],
        "equity_len": len(engine.equity_curve),
        "fees": p.fees_paid,
    }


async def test_paper_run_over_real_capture_trades_and_stays_consistent() -> None:
    engine = Engine.from_config(fast_config(), None, options=RunOptions(id_prefix="t"))
    async with engine.serve() as facade:
        with anyio.fail_after(120):
            await engine.done.wait()
        status = await facade.status()
        assert status.events_processed == 720 and status.progress == 1.0
        assert status.mode == "paper"
        assert status.trades > 0
        diagnosis = await facade.diagnose()
        checks = {c.component: c for c in diagnosis.checks}
        assert checks["consistency"].status == "ok", checks["consistency"].evidence
        assert checks["database"].status == "ok"
        trades = await facade.trades(limit=1000)
        assert len(trades.trades) == status.trades
        # Every fill paid Kraken's taker fee at the tier of the account's volume before it (Kraken's published
        # schedule: 0.40 % below 10,000 USD, 0.35 % from there to 50,000), rounded up to the cost precision.
        volume = Decimal(0)
        tiers_crossed = set()
        for f in reversed(trades.trades):  # oldest first; the sample spans 12 hours, inside one 30-day window
            rate = Decimal("0.0040") if volume < 10000 else Decimal("0.0035") if volume < 50000 else None
            assert rate is not None, "the sample should not reach the third tier"
            tiers_crossed.add(rate)
            expected = (f.qty * f.price * rate).quantize(Decimal("0.00001"), rounding="ROUND_UP")
            assert f.fee == expected
            volume += f.qty * f.price
        assert tiers_crossed == {Decimal("0.0040"), Decimal("0.0035")}, "the run should cross the first tier"
        perf = await facade.performance()
        assert perf.metrics["trade_count"] == len(engine.portfolio.round_trips)
    # Money is conserved: equity = opening cash + realized + unrealized - fees.
    p = engine.portfolio
    assert p.equity() == Decimal(10000) + p.realized_pnl + p.unrealized_pnl() - p.fees_paid


async def test_restart_mid_run_gives_the_same_final_state(tmp_path: Path) -> None:
    config = fast_config()
    straight = Engine.from_config(config, tmp_path / "a.db", options=RunOptions(id_prefix="t"))
    await run_to_end(straight)

    first = Engine.from_config(config, tmp_path / "b.db", options=RunOptions(id_prefix="t", max_events=333))
    await run_to_end(first)
    assert first.state.cursor == 333
    resumed = Engine.from_config(config, tmp_path / "b.db", options=RunOptions(id_prefix="t"))
    await run_to_end(resumed)
    assert resumed.state.cursor == 720
    assert final_state(resumed) == final_state(straight)

    # A third start finds nothing left to do and counts nothing twice.
    again = Engine.from_config(config, tmp_path / "b.db", options=RunOptions(id_prefix="t"))
    await run_to_end(again)
    assert final_state(again)["balances"] == final_state(straight)["balances"]
    assert again.portfolio.fill_count == straight.portfolio.fill_count


async def test_strategy_parameters_and_halt_survive_a_restart(tmp_path: Path) -> None:
    config = fast_config()
    db = tmp_path / "s.db"
    engine = Engine.from_config(config, db, options=RunOptions(max_events=100))
    async with engine.serve() as facade:
        with anyio.fail_after(60):
            await engine.done.wait()
        await facade.tune_strategy("ema_cross", {"fast": 5, "slow": 40}, preview=False, source="test")
        await facade.set_risk_limits({"max_open_orders": 5}, source="test")
        await facade.emergency_stop(flatten=False, source="test")
    again = Engine.from_config(config, db, options=RunOptions(max_events=1))
    async with again.serve() as facade:
        view = await facade.strategy("ema_cross")
        values = {p.name: p.value for p in view.params}
        defaults = {p.name: p.default for p in view.params}
        assert {k: values[k] for k in ("fast", "slow")} == {"fast": "5", "slow": "40"} and view.version == 2
        assert {k: v for k, v in values.items() if k not in ("fast", "slow")} == {
            k: v for k, v in defaults.items() if k not in ("fast", "slow")
        }
        risk = await facade.risk()
        assert risk.trading_state == "halted"
        assert {limit.name: limit.value for limit in risk.limits}["max_open_orders"] == 5
        events = await facade.events(limit=100)
        kinds = [e.kind for e in events]
        assert "tune_strategy" in kinds and "emergency_stop" in kinds and "set_risk_limits" in kinds


def two_quote_config() -> Config:
    """BTC/USD and BTC/USDT (USDT valued in USD through both pairs) with three strategies."""
    data = Path(__file__).resolve().parents[2] / "engine" / "data"
    return config_from_mapping(
        {
            "paper": {"starting_balances": {"USD": "10000", "USDT": "10000"}},
            "market": {
                "speed": "max",
                "feeds": [
                    {"file": str(data / "kraken_xbtusdt_1m_ohlc.json"), "pair": "BTC/USD"},
                    {"file": str(data / "kraken_xbtusdt_trades.json"), "pair": "BTC/USDT", "aggregate_minutes": 1},
                ],
            },
            "strategies": [
                {"name": "ema_usd", "kind": "ema_cross", "pair": "BTC/USD", "params": {"fast": 5, "slow": 20}},
                {"name": "mr_usd", "kind": "mean_reversion", "pair": "BTC/USD", "weight": "0.5"},
                {"name": "ema_usdt", "kind": "ema_cross", "pair": "BTC/USDT", "params": {"fast": 3, "slow": 10}},
            ],
        }
    )


async def test_several_strategies_and_pairs_at_once() -> None:
    engine = Engine.from_config(two_quote_config(), None, options=RunOptions(id_prefix="m"))
    await run_to_end(engine)
    traded = {(trip.strategy, trip.pair) for trip in engine.portfolio.round_trips}
    assert ("ema_usd", "BTC/USD") in traded and ("ema_usdt", "BTC/USDT") in traded
    assert ("mr_usd", "BTC/USD") in traded
    # weight 0.5 of 1,000 USD per entry: sized at the signal's close, filled at the next open
    mr_sizes = [t.qty * t.entry_price for t in engine.portfolio.round_trips if t.strategy == "mr_usd"]
    assert all(Decimal(495) < size < Decimal(505) for size in mr_sizes)
    # USDT moved only with BTC/USDT fills, USD only with BTC/USD fills.
    usdt_fees = sum((t.fees for t in engine.portfolio.round_trips if t.pair == "BTC/USDT"), Decimal(0))
    assert engine.portfolio.balances.total("USDT") < Decimal(10000) or usdt_fees == 0


async def test_paper_state_is_never_used_for_a_live_account(tmp_path: Path) -> None:
    from engine.runtime.app import EngineError

    db = tmp_path / "p.db"
    await run_to_end(Engine.from_config(fast_config(), db, options=RunOptions(max_events=5)))
    live_like = Engine.from_config(fast_config(), db, options=RunOptions(max_events=5))
    live_like._exchange_factory = lambda instruments, balances, clock: _LiveStub(
        live_like._paper_factory(instruments, balances, clock)
    )
    with pytest.raises(EngineError, match="belongs to a paper account"):
        await run_to_end(live_like)


async def test_order_numbers_continue_after_an_intent_the_counter_missed(tmp_path: Path) -> None:
    from engine.domain.orders import ClientOrderId, Order, OrderSide, OrderType
    from engine.persistence import Store

    db = tmp_path / "n.db"
    await run_to_end(Engine.from_config(fast_config(), db, options=RunOptions(id_prefix="t", max_events=5)))
    store = Store.open(db)
    # An intent written just before a crash, after the last time the counter was saved.
    store.upsert_order(
        Order(
            ClientOrderId("t-000000041"), "BTC/USD", OrderSide.BUY, OrderType.LIMIT, Decimal("0.001"), Decimal("1"), 1
        )
    )
    store.close()
    engine = Engine.from_config(fast_config(), db, options=RunOptions(id_prefix="t", max_events=1))
    async with engine.serve():
        assert engine.oms.next_client_id() == "t-000000042"


class _LiveStub:
    """A venue that says it is live (only what the mode check reads differs from the paper venue)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    @property
    def is_live(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_operator_halt_request_stops_a_running_engine_and_a_stopped_one(tmp_path: Path) -> None:
    from engine.runtime.operator import OperatorRequest, request_file_for, write_request

    db = tmp_path / "h.db"
    engine = Engine.from_config(
        config_from_mapping({"market": {"speed": "1"}}), db, options=RunOptions(keep_alive=True)
    )
    async with engine.serve() as facade:
        halted = anyio.Event()

        def on_change(topics: set[str]) -> None:
            if engine.risk.state.value == "halted":
                halted.set()

        facade.subscribe_changes(on_change)
        write_request(db, OperatorRequest("halt", reason="operator test"))
        with anyio.fail_after(10):
            await halted.wait()
        status = await facade.status()
        assert status.trading_state == "halted" and status.halt_reason == "operator test"
        assert not request_file_for(db).exists()
        events = await facade.events(limit=20)
        stop = [e for e in events if e.kind == "emergency_stop"][-1]
        assert stop.source == "operator:cli"
        await facade.resume(source="test", by="operator")

    write_request(db, OperatorRequest("halt"))
    again = Engine.from_config(fast_config(), db, options=RunOptions(max_events=50))
    await run_to_end(again)
    assert again.risk.state.value == "halted" and again.risk.halted_by == "operator"
    assert again.portfolio.fill_count == engine.portfolio.fill_count  # halted before it could trade


async def test_a_restart_keeps_the_account_currency_values_of_fills_in_another_quote(tmp_path: Path) -> None:
    # BTC/USDT fills pay fees and realize PnL in USDT, valued in USD at the marks of the moment they happened; a
    # restart re-books them from the store and must not revalue them at later marks.
    config = two_quote_config()
    straight = Engine.from_config(config, tmp_path / "a.db", options=RunOptions(id_prefix="m"))
    await run_to_end(straight)
    total = straight.state.cursor
    first = Engine.from_config(config, tmp_path / "b.db", options=RunOptions(id_prefix="m", max_events=total // 2))
    await run_to_end(first)
    resumed = Engine.from_config(config, tmp_path / "b.db", options=RunOptions(id_prefix="m"))
    await run_to_end(resumed)
    assert resumed.state.cursor == total
    converted = [t for t in straight.portfolio.round_trips if t.pair == "BTC/USDT"]
    assert converted and all(t.pnl_value is not None and t.pnl_value != t.pnl for t in converted)
    assert final_state(resumed) == final_state(straight)
    assert resumed.portfolio.realized_pnl == straight.portfolio.realized_pnl
    assert resumed.portfolio.fees_unconverted == straight.portfolio.fees_unconverted


async def test_recent_trades_answered_from_memory_agree_with_the_state_file(tmp_path: Path) -> None:
    """get_trades answers from the fills kept in memory; after a resume (the memory rebuilt from the file) they are
    the file's own rows, for any limit, including more than the memory holds."""
    from collections import deque

    config = fast_config()
    db = tmp_path / "t.db"
    first = Engine.from_config(config, db, options=RunOptions(id_prefix="t", max_events=333))
    await run_to_end(first)
    resumed = Engine.from_config(config, db, options=RunOptions(id_prefix="t", keep_alive=True))
    async with resumed.serve() as facade:
        with anyio.fail_after(120):
            await resumed.done.wait()
        total = resumed.portfolio.fill_count
        assert total > 4, "the sample run must trade for this test to mean anything"
        from_file = await resumed.read(lambda s: s.recent_fills(total))
        assert len(from_file) == total
        for limit in (1, 3, total, total + 10):
            view = await facade.trades(limit=limit)
            newest_first = from_file[::-1][:limit]
            assert [t.trade_id for t in view.trades] == [f.trade_id for f in newest_first]
            assert [(t.qty, t.price, t.fee) for t in view.trades] == [(f.qty, f.price, f.fee) for f in newest_first]
        # With fewer fills in memory than asked for, the file answers (the path a long history takes).
        resumed.journal.recent_fills = deque(list(resumed.journal.recent_fills)[-2:], maxlen=2)
        view = await facade.trades(limit=total)
        assert [t.trade_id for t in view.trades] == [f.trade_id for f in from_file[::-1]]


async def test_a_state_file_of_the_previous_release_resumes_under_canonical_pair_names(tmp_path: Path) -> None:
    """tests/fixtures/state_before_canonical_names.sqlite3: the shipped sample run to event 333 by the release that
    named pairs by altname (XBTUSD; commit b843b13), with a position open. Resumed now, its rows are renamed
    (BTC/USD) and the run ends exactly where an uninterrupted run of this release ends."""
    import shutil

    fixture = Path(__file__).parent.parent / "fixtures" / "state_before_canonical_names.sqlite3"
    db = tmp_path / "old.db"
    shutil.copy(fixture, db)
    config = fast_config(paper={"fee_volume_30d": "0"})  # that release charged the first tier throughout
    straight = Engine.from_config(config, tmp_path / "straight.db", options=RunOptions(id_prefix="t"))
    await run_to_end(straight)
    resumed = Engine.from_config(config, db, options=RunOptions(id_prefix="t"))
    await run_to_end(resumed)
    assert resumed.state.cursor == 720
    assert set(p for _s, p in resumed.portfolio.positions) == {"BTC/USD"}
    assert {o.pair for o in resumed.oms.orders.values()} == {"BTC/USD"}
    assert final_state(resumed) == final_state(straight)
