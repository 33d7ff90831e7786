"""Health checks of a running engine, each with a status, the evidence and a suggested fix.

Components: market data freshness, exchange connectivity, consistency of orders, fills and balances (the
in-memory books against the stored fills and against the venue), the database writer, event-loop lag, strategy
errors and refusals, and anomalies the order manager reported.
"""

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from engine.domain.balances import Balances
from engine.persistence import Store
from engine.runtime.clock import WallClock
from engine.runtime.views import CheckView

if TYPE_CHECKING:
    from engine.runtime.app import Engine

__all__ = ["run_checks"]

Status = Literal["ok", "warn", "fail"]
STALE_LIVE_S = 30.0


def _check(component: str, status: Status, evidence: str, suggestion: str = "") -> CheckView:
    return CheckView(component=component, status=status, evidence=evidence, suggestion=suggestion or "none needed")


def _market(engine: "Engine") -> CheckView:
    state = engine.state
    total = engine.source.total
    if state.finished:
        return _check("market_data", "ok", f"replay finished: all {total} events processed")
    health = engine.exchange.health()
    if engine.source.replayable:
        return _check(
            "market_data",
            "ok",
            f"replaying: {state.cursor} of {total} events, market time {engine.clock.now_ns()}",
        )
    last = health.last_message_ts_ns
    if last is None:
        return _check("market_data", "warn", "no market data received yet", "check the feed subscription")
    age = (WallClock().now_ns() - last) / 1e9
    if age > STALE_LIVE_S:
        return _check("market_data", "fail", f"last market data {age:.0f}s ago", "check connectivity; restart the feed")
    return _check("market_data", "ok", f"last market data {age:.1f}s ago")


def _exchange(engine: "Engine") -> CheckView:
    health = engine.exchange.health()
    if not health.connected:
        return _check("exchange", "fail", f"{health.venue}: disconnected {health.detail}", "check network and keys")
    return _check("exchange", "ok", f"{health.venue}: connected {health.detail}".strip())


async def _consistency(engine: "Engine") -> CheckView:
    fills = await engine.read(lambda s: s.load_fills())
    rebuilt = Balances(engine.state.opening_balances)
    for fill in fills:
        inst = engine.instruments[fill.pair]
        rebuilt.apply_fill(fill, inst.base, inst.quote)
    problems = []
    mine = engine.portfolio.balances
    for asset in set(rebuilt.assets()) | set(mine.assets()):
        if rebuilt.total(asset) != mine.total(asset):
            problems.append(f"{asset}: books {mine.total(asset)} vs stored fills {rebuilt.total(asset)}")
    venue = await engine.exchange.balances()
    for asset, amount in venue.items():
        if amount != mine.total(asset):
            problems.append(f"{asset}: books {mine.total(asset)} vs venue {amount}")
    order_fills: dict[str, Decimal] = {}
    for fill in fills:
        order_fills[fill.client_id] = order_fills.get(fill.client_id, Decimal(0)) + fill.qty
    for cid, order in engine.oms.orders.items():
        if order.filled_qty != order_fills.get(cid, Decimal(0)):
            problems.append(f"order {cid}: filled {order.filled_qty} but fills sum to {order_fills.get(cid, 0)}")
    if problems:
        return _check(
            "consistency",
            "fail",
            "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""),
            "pause trading, then restart the engine: it rebuilds balances from the stored fills and reconciles",
        )
    return _check(
        "consistency",
        "ok",
        f"{len(fills)} fills, {len(engine.oms.orders)} orders and balances agree (books, store, venue)",
    )


async def _database(engine: "Engine") -> CheckView:
    writer = engine.writer
    if writer.last_error is not None:
        return _check("database", "fail", f"writer error: {writer.last_error!r}", "check disk space and permissions")
    counts = await engine.read(lambda s: Store.counts(s))
    depth = writer.stats.queue_depth if hasattr(writer, "stats") else 0
    status: Status = "warn" if depth > 10000 else "ok"
    return _check(
        "database",
        status,
        f"writer healthy, queue depth {depth}; rows {counts}",
        "" if status == "ok" else "the disk is slow",
    )


def _loop(engine: "Engine") -> CheckView:
    lag = engine.state.loop_lag_s
    if lag > 1.0:
        return _check("event_loop", "fail", f"lag {lag * 1000:.0f} ms", "something blocks the event loop; check CPU")
    if lag > 0.1:
        return _check("event_loop", "warn", f"lag {lag * 1000:.0f} ms", "the engine is busy; consider a slower replay")
    return _check("event_loop", "ok", f"lag {lag * 1000:.1f} ms")


def _strategies(engine: "Engine") -> CheckView:
    errors = [f"{s.name}: {s.errors} errors, last {s.last_error}" for s in engine.slots if s.errors]
    if errors:
        return _check("strategies", "fail", "; ".join(errors), "inspect the strategy parameters or disable it")
    refusals = [f"{s.name}: {s.refusals} risk refusals (last: {s.last_refusal})" for s in engine.slots if s.refusals]
    if refusals:
        return _check("strategies", "warn", "; ".join(refusals), "review risk limits or strategy sizing")
    enabled = sum(1 for s in engine.slots if s.enabled)
    return _check("strategies", "ok", f"{enabled} of {len(engine.slots)} enabled, no errors")


def _anomalies(engine: "Engine") -> CheckView:
    journal = engine.journal
    if journal.anomalies:
        return _check(
            "order_events",
            "warn",
            f"{journal.anomalies} anomalies; last: {journal.last_anomaly}",
            "see bot://events",
        )
    return _check("order_events", "ok", "every venue event applied cleanly")


async def run_checks(
    engine: "Engine", progress: Callable[[float, float, str], Awaitable[None]] | None
) -> list[CheckView]:
    steps: list[tuple[str, Callable[[], Awaitable[CheckView]]]] = [
        ("market data", lambda: _wrap(_market(engine))),
        ("exchange", lambda: _wrap(_exchange(engine))),
        ("consistency", lambda: _consistency(engine)),
        ("database", lambda: _database(engine)),
        ("event loop", lambda: _wrap(_loop(engine))),
        ("strategies", lambda: _wrap(_strategies(engine))),
        ("order events", lambda: _wrap(_anomalies(engine))),
    ]
    results = []
    for index, (label, step) in enumerate(steps):
        if progress is not None:
            await progress(float(index), float(len(steps)), f"checking {label}")
        results.append(await step())
    if progress is not None:
        await progress(float(len(steps)), float(len(steps)), "done")
    return results


async def _wrap(value: CheckView) -> CheckView:
    return value
