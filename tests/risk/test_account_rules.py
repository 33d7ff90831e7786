"""Account rules, sans-I/O: the guard trips when plain code on the same equity curve says it should, REDUCING
refuses buys and lets sells through, and no sequence of tightenings and restarts leaves a rule looser than its cap."""

import contextlib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.domain.orders import ClientOrderId, OrderSide, OrderType
from engine.errors import InvalidRequest, LimitExceeded
from engine.exchanges.catalog import default_instruments
from engine.exchanges.port import OrderRequest
from engine.risk.account_rules import (
    DAY_NS,
    AccountGuard,
    AccountRules,
    RulesState,
    choose_rules,
    looser_than_cap,
    propose_rules,
)
from engine.risk.checks import ExposureSnapshot, RiskEngine, TradingState
from engine.risk.limits import RiskLimits

HOUR_NS = 3600 * 10**9

# -- the guard against plain code ----------------------------------------------------------------------------------
curves = st.lists(st.integers(min_value=-300, max_value=300), min_size=1, max_size=120).map(
    lambda steps: [(i * 5 * HOUR_NS, Decimal(10000) + sum(steps[: i + 1]) * 7) for i in range(len(steps))]
)


def plain_trips(
    curve: list[tuple[int, Decimal]], dd: Decimal, reduce_at: Decimal, daily: Decimal
) -> list[tuple[int, str]]:
    """When each rule trips (the first time; daily loss once per day; REDUCING each time it is entered)."""
    out: list[tuple[int, str]] = []
    peak = None
    day: int | None = None
    start = Decimal(0)
    dd_done = reducing = daily_done = False
    for ts, eq in curve:
        if ts // DAY_NS != day:
            day, start, daily_done = ts // DAY_NS, eq, False
        peak = eq if peak is None or eq > peak else peak
        drawdown = (peak - eq) / peak * 100
        if not dd_done and drawdown >= dd:
            dd_done = True
            out.append((ts, "max_drawdown_pct"))
        if not daily_done and start - eq >= daily:
            daily_done = True
            out.append((ts, "max_daily_loss"))
        if not reducing and drawdown >= reduce_at:
            reducing = True
            out.append((ts, "reduce_at_drawdown_pct"))
        elif reducing and drawdown < reduce_at:
            reducing = False
    return out


@settings(max_examples=200, deadline=None)
@given(curves, st.integers(1, 30), st.integers(1, 30), st.integers(50, 3000))
# Exactly at each threshold: a rule trips when the figure reaches it, not only beyond it.
@example([(0, Decimal(10000)), (HOUR_NS, Decimal(9500)), (2 * HOUR_NS, Decimal(9000))], 10, 5, 1000)
def test_guard_trips_exactly_when_plain_code_says(
    curve: list[tuple[int, Decimal]], dd: int, reduce_at: int, daily: int
) -> None:
    rules = AccountRules(
        max_drawdown_pct=Decimal(dd), reduce_at_drawdown_pct=Decimal(reduce_at), max_daily_loss=Decimal(daily)
    )
    guard = AccountGuard(rules)
    seen = []
    for ts, eq in curve:
        for trip in guard.update(ts, eq) or []:
            if trip.kind in ("breach", "reduce"):
                seen.append((ts, trip.rule))
    assert seen == plain_trips(curve, Decimal(dd), Decimal(reduce_at), Decimal(daily))


def test_a_restart_mid_curve_trips_as_an_uninterrupted_run() -> None:
    curve = [(i * HOUR_NS, Decimal(v)) for i, v in enumerate([100, 120, 110, 118, 121, 105, 99, 96, 130])]
    rules = AccountRules(max_drawdown_pct=Decimal(20))
    straight = AccountGuard(rules)
    trips_straight = [(ts, t.rule) for ts, eq in curve for t in straight.update(ts, eq) or [] if t.kind == "breach"]
    first = AccountGuard(rules)
    for ts, eq in curve[:5]:
        first.update(ts, eq)
    # Saved only at the start (the kv knows no peak yet); the equity curve brings it back.
    second = AccountGuard(rules, RulesState.from_json(RulesState().to_json()))
    second.restore_from_curve(curve[:5])
    trips_resumed = [(ts, t.rule) for ts, eq in curve[5:] for t in second.update(ts, eq) or [] if t.kind == "breach"]
    assert trips_resumed == trips_straight == [(curve[7][0], "max_drawdown_pct")]


# -- REDUCING: exits only ----------------------------------------------------------------------------------------
def _request(side: OrderSide, qty: str) -> OrderRequest:
    return OrderRequest(ClientOrderId("c-1"), "BTC/USD", side, OrderType.MARKET, Decimal(qty), None, 0, "s")


def _exposure() -> ExposureSnapshot:
    return ExposureSnapshot(Decimal(0), Decimal(0), 0, Decimal(100000), Decimal("0.5"), Decimal("0.5"), "USD", None)


def test_reducing_refuses_buys_with_the_rule_named_and_lets_sells_through() -> None:
    btc = default_instruments()["BTC/USD"]
    risk = RiskEngine(RiskLimits(), RiskLimits())
    risk.state, risk.halt_reason = TradingState.REDUCING, "drawdown 11% (limit 10%)"
    refusal = risk.assess(_request(OrderSide.BUY, "0.01"), btc, Decimal(30000), _exposure())
    assert refusal is not None and refusal.rule == "reduce_at_drawdown_pct"
    assert "exits only" in refusal.reason and "limit 10%" in refusal.reason
    assert risk.assess(_request(OrderSide.SELL, "0.5"), btc, Decimal(30000), _exposure()) is None
    assert risk.may_trade
    # A sell still needs the asset.
    short = risk.assess(_request(OrderSide.SELL, "0.6"), btc, Decimal(30000), _exposure())
    assert short is not None and short.rule == "insufficient_funds"
    risk.state = TradingState.HALTED
    assert not risk.may_trade
    halted = risk.assess(_request(OrderSide.SELL, "0.5"), btc, Decimal(30000), _exposure())
    assert halted is not None and halted.rule == "trading_state"


# -- caps: tightening only, across restarts ------------------------------------------------------------------------
thresholds = st.none() | st.integers(1, 99).map(Decimal)
amounts = st.none() | st.integers(1, 5000).map(Decimal)
rule_sets = st.builds(
    AccountRules,
    max_drawdown_pct=thresholds,
    reduce_at_drawdown_pct=thresholds,
    max_daily_loss=amounts,
    flatten_on_drawdown=st.booleans(),
)
changes = st.dictionaries(
    st.sampled_from(["max_drawdown_pct", "reduce_at_drawdown_pct", "max_daily_loss", "flatten_on_drawdown"]),
    st.none() | st.integers(-5, 6000) | st.booleans() | st.sampled_from(["abc", "12.5", "1e3"]),
    min_size=1,
)
Step = tuple[str, Any, AccountRules, bool]
steps = st.lists(
    st.tuples(st.just("tighten"), changes, rule_sets, st.just(False))
    | st.tuples(st.just("restart"), rule_sets, rule_sets, st.booleans()),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(rule_sets, steps)
def test_no_tightenings_and_restarts_leave_a_rule_looser_than_its_cap(caps: AccountRules, plan: list[Step]) -> None:
    configured = caps  # the operator's config is within the caps (Config refuses otherwise)
    current, saved_configured = configured, configured.model_dump(mode="json")
    for step in plan:
        if step[0] == "tighten":
            with contextlib.suppress(InvalidRequest, LimitExceeded):  # refused: nothing changed
                current = propose_rules(current, caps, step[1])
        else:
            # A restart, maybe with new caps and a new [risk.rules] (kept within the new caps, as Config does).
            # Keeping the configuration while the caps change is the case the clamp is for: the client may have
            # set a rule anywhere up to the old cap, which the new cap may be below.
            new_caps, keep = step[1], step[3]
            if not keep or looser_than_cap(configured, new_caps):
                fresh = step[2].model_dump()
                fresh.update({n: getattr(new_caps, n) for n in looser_than_cap(step[2], new_caps)})
                configured = AccountRules.model_validate(fresh)
            caps = new_caps
            current, _ = choose_rules(configured, caps, current.model_dump(mode="json"), saved_configured)
            saved_configured = configured.model_dump(mode="json")
        assert looser_than_cap(current, caps) == []


def test_loosening_beyond_the_cap_is_refused_in_one_sentence() -> None:
    caps = AccountRules(max_drawdown_pct=Decimal(20), max_daily_loss=Decimal(500))
    current = AccountRules(max_drawdown_pct=Decimal(15), max_daily_loss=Decimal(300))
    with pytest.raises(LimitExceeded, match="max_drawdown_pct 25 is looser than the operator's cap 20"):
        propose_rules(current, caps, {"max_drawdown_pct": 25})
    with pytest.raises(LimitExceeded, match="max_daily_loss"):
        propose_rules(current, caps, {"max_daily_loss": None})  # turning a capped rule off loosens it
    with pytest.raises(InvalidRequest, match="unknown risk rule"):
        propose_rules(current, caps, {"max_loss": 1})
    assert propose_rules(current, caps, {"max_daily_loss": "250.5"}).max_daily_loss == Decimal("250.5")
