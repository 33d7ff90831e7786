"""The engine's side of the account rules (:mod:`engine.risk.account_rules`): restore them, act on their trips
(halt, flatten, exits only, the next day's resume), save their state, and report them.

Every trip writes one event naming the rule, the figures and what the engine did: ``risk_rule_tripped`` when a
rule acts, ``risk_rule_cleared`` when its effect ends (REDUCING left, a daily-loss halt lifted by the new day).
The halts are the operator's kind (``halted_by = "operator"``): an MCP client cannot lift them.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.risk.account_rules import (
    MAX_DAILY_LOSS,
    MAX_DRAWDOWN,
    REDUCE_AT_DRAWDOWN,
    AccountGuard,
    AccountRules,
    RulesState,
    Trip,
    choose_rules,
)
from engine.risk.checks import TradingState
from engine.runtime.views import RiskRuleView

if TYPE_CHECKING:
    from engine.runtime.app import Engine
    from engine.runtime.facade import EngineFacade

__all__ = [
    "RULES_KV",
    "RULES_STATE_KV",
    "act_on_trips",
    "after_operator_resume",
    "restore_guard",
    "rule_views",
    "save_guard",
]

RULES_STATE_KV = "account_rules_state"
RULES_KV = "account_rules"
CONFIGURED_RULES_KV = "configured_account_rules"


def restore_guard(
    configured: AccountRules, caps: AccountRules, kv: Mapping[str, Any], curve: list[tuple[int, Decimal]]
) -> tuple[AccountGuard, list[str]]:
    """The guard after a restart: the rules in force (:func:`choose_rules`), their saved state brought up to the
    saved equity curve, and notes to log."""
    rules, notes = choose_rules(configured, caps, kv.get(RULES_KV), kv.get(CONFIGURED_RULES_KV))
    guard = AccountGuard(rules, RulesState.from_json(kv.get(RULES_STATE_KV)))
    guard.restore_from_curve(curve)
    state = guard.state
    if kv.get("trading_state") != "halted" and (state.halt_rule or state.drawdown_tripped or state.daily_tripped):
        # The halt was lifted while no engine ran (`trading-mcp resume` on a stopped engine): as a resume does,
        # the rules start afresh from the last saved equity (else a tripped rule would stay disarmed).
        last_ts, last_equity = curve[-1] if curve else (0, None)
        guard.start_afresh(last_equity, last_ts)
        notes.append("a rule's halt was lifted while the engine was stopped: the rules start afresh from here")
    return guard, notes


def start_values(engine: "Engine") -> dict[str, object]:
    """What a start saves about the rules (with the limits, in one unit of work)."""
    return {
        RULES_KV: engine.account_guard.rules.model_dump(mode="json"),
        CONFIGURED_RULES_KV: engine.config.risk.rules.model_dump(mode="json"),
        RULES_STATE_KV: engine.account_guard.state.to_json(),
    }


def save_guard(engine: "Engine") -> None:
    engine.journal.set_kv(RULES_STATE_KV, engine.account_guard.state.to_json())
    engine.journal.mark_dirty("risk", "status")


def _reason(trip: Trip, currency: str) -> str:
    f = trip.figures()
    if trip.rule == MAX_DAILY_LOSS:
        return (
            f"max_daily_loss: equity {f['equity']} {currency} is {f['value']} below the day's start "
            f"{f['reference']} (limit {f['threshold']} {currency})"
        )
    return (
        f"{trip.rule}: equity {f['equity']} {currency} is {f['value']}% below its peak {f['reference']} "
        f"(limit {f['threshold']}%)"
    )


async def act_on_trips(engine: "Engine", trips: list[Trip]) -> None:
    """Do what the rules' trips ask, write one event each, keep REDUCING in step, and save the rules' state."""
    from engine.runtime.facade import EngineFacade

    facade = EngineFacade(engine)
    for trip in trips:
        await _act(engine, facade, trip)
    guard, risk = engine.account_guard, engine.risk
    if guard.state.reducing and risk.state is TradingState.ACTIVE:
        # Someone resumed while the drawdown still stands: exits only again, quietly (the trip is logged once).
        facade._set_state(TradingState.REDUCING, risk.halt_reason or "reduce_at_drawdown_pct still exceeded", "client")
    if trips:
        save_guard(engine)
        if engine.options.durable_intents:  # a run: acknowledged means on disk (a backtest writes at its end)
            await engine.writer.flush()


async def _act(engine: "Engine", facade: "EngineFacade", trip: Trip) -> None:
    guard, risk, currency = engine.account_guard, engine.risk, engine.config.quote_currency
    payload: dict[str, object] = {"rule": trip.rule, **trip.figures(), "currency": currency}
    source = f"risk:{trip.rule}"
    if trip.kind == "new_day":
        if guard.state.halt_rule == MAX_DAILY_LOSS and risk.state is TradingState.HALTED:
            guard.state.halt_rule = ""
            await facade.resume(source=source, by="operator")
            payload["action"] = "a new UTC day began: trading resumed"
            engine.journal.event("risk_rule_cleared", source, payload)
        return
    if trip.kind == "recovered":
        if risk.state is TradingState.REDUCING:
            facade._set_state(TradingState.ACTIVE, "", "client")
        payload["action"] = f"drawdown back below {trip.figures()['threshold']}%: trading is {risk.state.value}"
        engine.journal.event("risk_rule_cleared", source, payload)
        return
    reason = _reason(trip, currency)
    if trip.kind == "reduce":
        if risk.state is TradingState.ACTIVE:
            facade._set_state(TradingState.REDUCING, reason, "client")
            payload["action"] = "exits only (reducing): buys refused, sells allowed"
        else:
            payload["action"] = f"recorded; trading is {risk.state.value}"
        engine.journal.event("risk_rule_tripped", source, payload)
        return
    # A halting rule's breach.
    if trip.rule == MAX_DAILY_LOSS and risk.state is TradingState.HALTED:
        payload["action"] = f"already halted ({risk.halt_reason or risk.halted_by})"
        engine.journal.event("risk_rule_tripped", source, payload)
        return
    flatten = trip.rule == MAX_DRAWDOWN and guard.rules.flatten_on_drawdown
    guard.state.halt_rule = trip.rule
    engine.journal.event(
        "risk_rule_tripped",
        source,
        {
            **payload,
            "action": "halted and flattening every position"
            if flatten
            else (
                "halted until the next UTC day or `trading-mcp resume`"
                if trip.rule == MAX_DAILY_LOSS
                else "halted until `trading-mcp resume`"
            ),
        },
    )
    save_guard(engine)
    await facade.emergency_stop(flatten=flatten, source=source, reason=reason, by="operator")


def after_operator_resume(engine: "Engine") -> None:
    """A resume lifted a rule's halt: the rules start afresh from the equity now (else the same drawdown would
    trip again at the next candle), and that is saved."""
    guard = engine.account_guard
    state = guard.state
    if state.halt_rule or state.drawdown_tripped or state.daily_tripped:
        guard.start_afresh(engine.portfolio.equity(), engine.clock.now_ns())
        save_guard(engine)


def rule_views(engine: "Engine") -> list[RiskRuleView]:
    """Each enabled rule with its threshold, where the account stands, and the headroom."""
    guard = engine.account_guard
    caps = engine.config.risk.rule_caps
    currency = engine.config.quote_currency
    tripped = {
        MAX_DRAWDOWN: guard.state.drawdown_tripped,
        MAX_DAILY_LOSS: guard.state.daily_tripped,
        REDUCE_AT_DRAWDOWN: guard.state.reducing,
    }
    views = []
    for name, threshold, value, headroom, unit in guard.rows(engine.portfolio.equity()):
        unit = unit or currency
        label = {MAX_DRAWDOWN: "drawdown", REDUCE_AT_DRAWDOWN: "drawdown (reduce at)", MAX_DAILY_LOSS: "daily loss"}
        shown = "n/a" if value is None else f"{value:.2f}"
        pct = "%" if unit == "%" else ""
        summary = f"{label[name]} {shown}{pct} of {threshold:.2f}{pct or ' ' + unit}"
        views.append(
            RiskRuleView(
                name=name,
                threshold=threshold,
                cap=getattr(caps, name),
                value=None if value is None else value.quantize(Decimal("0.01")),
                headroom=None if headroom is None else headroom.quantize(Decimal("0.01")),
                unit=unit,
                tripped=tripped[name],
                summary=summary,
            )
        )
    return views
