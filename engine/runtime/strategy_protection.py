"""What the engine does when a strategy's circuit breaker trips, and how breakers and position guards are shown.

The trader detects (:mod:`engine.risk.breakers` fed per event, :mod:`engine.risk.position_guards` per candle);
this module acts and reports: a breaker's trip disables its strategy through the facade (saved, audited and
answered like an ``disable_strategy`` call, so the stop survives a restart) and writes a ``breaker_tripped`` event
naming the rule and the figures; the strategy's guards still protect its open position (exits are never stopped
by a breaker) and enabling the strategy again re-arms its breakers. ``get_risk`` / ``bot://risk`` list each
breaker that is on and each guard of each open position with its level, where the market is, and the headroom.
"""

from decimal import Decimal
from typing import TYPE_CHECKING

from engine.domain.market_data import Candle
from engine.risk.breakers import Breakers, BreakerSettings
from engine.runtime.views import RiskRuleView

if TYPE_CHECKING:
    from engine.runtime.app import Engine
    from engine.runtime.config import Config

__all__ = [
    "BREAKER_RESETS_KV",
    "BREAKER_TRIPPED",
    "act_on_breakers",
    "breaker_views",
    "build_breakers",
    "check_stale",
    "guard_views",
]

BREAKER_TRIPPED = "breaker_tripped"
BREAKER_RESETS_KV = "breaker_resets"
"""kv: strategy -> how many round trips had closed when its breakers were last re-armed (enabled again)."""
_CENT = Decimal("0.01")


def build_breakers(config: "Config") -> Breakers | None:
    """The breakers ``[risk.breakers]`` and the strategies' own ``breakers`` ask for; None when every one is off."""
    default = config.risk.breakers
    own = {s.name: s.breakers for s in config.strategies if s.breakers is not None}
    settings: list[BreakerSettings] = [default, *own.values()]
    if not any(s.max_consecutive_losses or s.max_errors or s.stale_after_s for s in settings):
        return None
    return Breakers(default, own)


async def act_on_breakers(engine: "Engine") -> None:
    """Disable each strategy whose breaker tripped, with one event each (the trader collected the trips)."""
    from engine.runtime.facade import EngineFacade

    trader = engine.trader
    trips = list(trader.breaker_trips)
    trader.breaker_trips.clear()  # the market loop holds this list
    facade = EngineFacade(engine)
    for trip in trips:
        slot = trader.slot(trip.strategy)
        if slot is None:
            continue
        payload = {
            "strategy": trip.strategy,
            "pair": slot.pair,
            "rule": trip.rule,
            "detail": trip.detail,
            "action": "strategy disabled: no new entries; its position guards and exits still act; enable it to "
            "re-arm the breaker",
        }
        engine.journal.event(BREAKER_TRIPPED, f"risk:{trip.rule}", payload)
        await facade.set_strategy_enabled(trip.strategy, False, source=f"risk:{trip.rule}")


def check_stale(engine: "Engine") -> None:
    """Ask the breakers whether any strategy's pair has gone without data (the runtime's timer calls this)."""
    trader = engine.trader
    breakers = trader.breakers
    if breakers is None:
        return
    pairs = {slot.name: slot.pair for slot in trader.slots if slot.enabled and not slot.breaker}
    for pair, event in list(trader.last_event.items()):
        breakers.on_data(pair, event.close_ns if isinstance(event, Candle) else event.ts_ns)
    for trip in breakers.check_stale(engine.clock.now_ns(), pairs):
        trader._breaker_tripped(trip)


def breaker_views(engine: "Engine") -> list[RiskRuleView]:
    """Each breaker that is on, per strategy: threshold, value now, headroom, and whether it tripped."""
    breakers = engine.trader.breakers
    if breakers is None:
        return []
    pairs = {slot.name: slot.pair for slot in engine.trader.slots}
    views = []
    for row in breakers.snapshot(engine.clock.now_ns(), pairs):
        value = None if row.value is None else row.value.quantize(_CENT)
        shown = "n/a" if value is None else f"{value}"
        views.append(
            RiskRuleView(
                name=f"{row.strategy}: {row.rule}",
                threshold=row.threshold,
                cap=None,
                value=value,
                headroom=None if row.headroom is None else row.headroom.quantize(_CENT),
                unit=row.unit,
                tripped=row.tripped,
                summary=f"{row.strategy} {row.rule.replace('_', ' ')}: {shown} of {row.threshold} {row.unit}",
            )
        )
    return views


def guard_views(engine: "Engine") -> list[RiskRuleView]:
    """Each position guard of each open position: the trigger level, the mark, and the headroom in percent of the
    mark (how far the price may move before the guard triggers; the time stop in candles)."""
    views = []
    marks = engine.portfolio.marks
    for slot in engine.trader.slots:
        guard = slot.guard
        position = engine.portfolio.positions.get(slot.key)
        if guard is None or position is None or position.qty <= 0:
            continue
        mark = marks.get(slot.pair)
        for rule, level in guard.levels(position.avg_entry, slot.guard_state).items():
            if isinstance(level, int):
                views.append(
                    RiskRuleView(
                        name=f"{slot.name}: {rule}",
                        threshold=Decimal(guard.time_stop or 0),
                        cap=None,
                        value=Decimal(slot.guard_state.held),
                        headroom=Decimal(level),
                        unit="candles",
                        tripped=slot.guard_state.exit_rule == rule,
                        summary=f"{slot.name} {slot.pair} time stop: held {slot.guard_state.held} of "
                        f"{guard.time_stop} candles",
                    )
                )
                continue
            headroom = None if not mark else ((mark - level) / mark * 100).copy_abs().quantize(_CENT)
            views.append(
                RiskRuleView(
                    name=f"{slot.name}: {rule}",
                    threshold=level.quantize(_CENT),
                    cap=None,
                    value=None if mark is None else mark,
                    headroom=headroom,
                    unit="% of the mark",
                    tripped=slot.guard_state.exit_rule == rule,
                    summary=f"{slot.name} {slot.pair} {rule.replace('_pct', '').replace('_', ' ')} at "
                    f"{level.quantize(_CENT)} (mark {mark}, {headroom}% away)",
                )
            )
    return views
