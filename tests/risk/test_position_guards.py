"""The position guards, candle by candle, against a plain recomputation written here from the documented rules."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.risk.position_guards import (
    STOP_LOSS,
    TAKE_PROFIT,
    TIME_STOP,
    TRAILING_STOP,
    GuardState,
    PositionGuard,
)
from engine.risk.sizing import EntryPolicy, entry_budget
from engine.strategies import strategy_class

D = Decimal


def test_no_guard_enabled_costs_nothing_per_candle() -> None:
    assert PositionGuard.from_values(strategy_class("ema_cross")({}).values) is None
    assert PositionGuard.from_values({"time_stop_candles": 5}) is not None


def test_a_dip_through_the_stop_triggers_even_when_the_candle_closes_above_it() -> None:
    guard = PositionGuard(stop_loss_pct=D(2))
    state = GuardState()
    assert guard.check(D(101), D("98.01"), D(100), state) is None
    hit = guard.check(D(101), D(98), D(100), state)
    assert hit is not None and (hit.rule, hit.share, hit.level) == (STOP_LOSS, D(1), D(98))


def test_the_stop_beats_the_take_profit_on_the_same_candle() -> None:
    guard = PositionGuard(stop_loss_pct=D(1), take_profit_pct=D(1))
    hit = guard.check(D(110), D(90), D(100), GuardState())
    assert hit is not None and hit.rule == STOP_LOSS


def test_a_partial_take_profit_happens_once_and_a_whole_exit_latches() -> None:
    guard = PositionGuard(take_profit_pct=D(5), take_profit_share=D("0.25"), time_stop_candles=3)
    state = GuardState()
    first = guard.check(D(106), D(100), D(100), state)
    assert first is not None and (first.rule, first.share) == (TAKE_PROFIT, D("0.25")) and state.scaled_out
    assert guard.check(D(107), D(100), D(100), state) is None  # scaled out already
    third = guard.check(D(100), D(99), D(100), state)
    assert third is not None and third.rule == TIME_STOP and not third.repeat
    again = guard.check(D(120), D(119), D(100), state)
    assert again is not None and again.rule == TIME_STOP and again.repeat


def test_the_trailing_stop_follows_the_highs_of_earlier_candles_only() -> None:
    guard = PositionGuard(trailing_stop_pct=D(10))
    state = GuardState()
    assert guard.check(D(200), D(95), D(100), state) is None  # its own high comes after its low
    hit = guard.check(D(190), D(180), D(100), state)
    assert hit is not None and hit.rule == TRAILING_STOP and hit.level == D(180)
    assert guard.levels(D(100), GuardState(peak=D(200)))[TRAILING_STOP] == D(180)


prices = st.decimals(min_value=D(50), max_value=D(150), places=2)


@settings(max_examples=200, deadline=None)
@given(
    candles=st.lists(st.tuples(prices, prices), min_size=1, max_size=40),
    stop=st.sampled_from([D(0), D(3), D(10)]),
    take=st.sampled_from([D(0), D(5), D(20)]),
    share=st.sampled_from([D(1), D("0.5")]),
    trail=st.sampled_from([D(0), D(4), D(15)]),
    time_stop=st.sampled_from([0, 5, 30]),
)
def test_every_candle_agrees_with_a_plain_recomputation(
    candles: list[tuple[Decimal, Decimal]], stop: Decimal, take: Decimal, share: Decimal, trail: Decimal, time_stop: int
) -> None:
    entry = D(100)
    guard = PositionGuard(stop, take, share, trail, time_stop)
    state = GuardState()
    peak, scaled, latched = entry, False, ""
    for held, (a, b) in enumerate(candles, start=1):
        high, low = max(a, b), min(a, b)
        expected, expected_share = "", D(1)
        if latched:
            expected = latched
        elif stop and low <= entry - entry * stop / 100:
            expected = STOP_LOSS
        elif trail and low <= peak - peak * trail / 100:
            expected = TRAILING_STOP
        elif take and not scaled and high >= entry + entry * take / 100:
            expected, expected_share, scaled = TAKE_PROFIT, share, True
        peak = max(peak, high)
        if not expected and time_stop and held >= time_stop:
            expected = TIME_STOP
        if expected and expected_share == 1:
            latched = expected
        got = guard.check(high, low, entry, state)
        assert (got.rule if got else "", got.share if got else D(1)) == (expected, expected_share)


def test_sizing_by_equity_and_by_volatility_is_capped_by_the_order_notional_limit() -> None:
    fixed = entry_budget({}, D(1000), D(2), D(50000), D(100), None, D(10**6))
    assert fixed == (D(2000), "fixed amount")
    fraction, _ = entry_budget({"equity_fraction_pct": D(10)}, D(1000), D(1), D(50000), D(100), None, D(10**6))
    assert fraction == D(5000)
    # 1 % of 50,000 is 500 at risk; 2 ATR of 2.5 is a move of 5 per unit: 100 units at 100 = 10,000.
    vol, how = entry_budget({"risk_per_trade_pct": D(1)}, D(1000), D(1), D(50000), D(100), D("2.5"), D(10**6))
    assert vol == D(10000) and "ATR" in how
    capped, how = entry_budget({"risk_per_trade_pct": D(1)}, D(1000), D(1), D(50000), D(100), D("2.5"), D(2500))
    assert capped == D(2500) and "capped" in how
    assert entry_budget({"risk_per_trade_pct": D(1)}, D(1000), D(1), D(50000), D(100), None, D(10**6))[0] is None


def test_entry_policy_reads_the_parameters() -> None:
    assert EntryPolicy.from_values(strategy_class("ema_cross")({}).values).is_market
    policy = EntryPolicy.from_values({"entry_limit_bps": D(5), "entry_post_only": True, "entry_reprices": 2})
    assert (policy.limit_bps, policy.post_only, policy.reprices, policy.ttl_candles) == (D(5), True, 2, 3)
