"""Per-strategy circuit breakers (engine.risk.breakers): a run of losses, a burst of errors, stale data.

Every expectation is recounted here with plain lists, apart from the module's deques and latches.
"""

import re
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.risk.breakers import BreakerRow, Breakers, BreakerSettings, BreakerTrip

S = 1_000_000_000
D = Decimal
LOSS, WIN, EVEN = D("-12.5"), D("3.1"), D(0)


def test_consecutive_losses_trip_on_the_nth_and_a_win_or_break_even_starts_the_run_again() -> None:
    breakers = Breakers(BreakerSettings(max_consecutive_losses=3))
    assert breakers.on_trade_closed("ema", LOSS, 1) is None
    assert breakers.on_trade_closed("ema", LOSS, 2) is None
    assert breakers.on_trade_closed("ema", EVEN, 3) is None  # break-even is not a loss
    assert breakers.on_trade_closed("ema", LOSS, 4) is None
    assert breakers.on_trade_closed("ema", LOSS, 5) is None
    assert breakers.on_trade_closed("ema", WIN, 6) is None
    assert [breakers.on_trade_closed("ema", LOSS, 7 + i) for i in range(2)] == [None, None]
    trip = breakers.on_trade_closed("ema", D("-0.01"), 9)
    assert trip == BreakerTrip("ema", "max_consecutive_losses", "3 losing round trips in a row (limit 3)")
    assert breakers.tripped("ema") == trip
    assert breakers.tripped("other") is None


def test_a_tripped_strategy_reports_nothing_more_until_reset_which_starts_it_afresh() -> None:
    breakers = Breakers(BreakerSettings(max_consecutive_losses=2, max_errors=1))
    assert breakers.on_trade_closed("ema", LOSS, 1) is None
    assert breakers.on_trade_closed("ema", LOSS, 2) is not None
    assert breakers.on_trade_closed("ema", LOSS, 3) is None  # still tripped: reported once
    assert breakers.on_error("ema", 4) is None  # another rule while tripped: nothing more
    assert breakers.tripped("ema") is not None and breakers.tripped("ema").rule == "max_consecutive_losses"  # type: ignore[union-attr]
    breakers.reset("ema")
    assert breakers.tripped("ema") is None
    assert breakers.on_trade_closed("ema", LOSS, 5) is None  # the run starts at 0 again, not at 3
    assert breakers.on_trade_closed("ema", LOSS, 6) == BreakerTrip(
        "ema", "max_consecutive_losses", "2 losing round trips in a row (limit 2)"
    )


def test_errors_trip_within_the_window_and_one_exactly_a_window_old_is_out() -> None:
    breakers = Breakers(BreakerSettings(max_errors=3, error_window_s=60))
    assert breakers.on_error("a", 0) is None
    assert breakers.on_error("a", 30 * S) is None
    assert breakers.on_error("a", 60 * S) is None  # the error at 0 is exactly 60 s old: out of the window
    trip = breakers.on_error("a", 60 * S + 1)
    assert trip == BreakerTrip("a", "max_errors", "3 errors within 60 s (limit 3)")
    other = Breakers(BreakerSettings(max_errors=2, error_window_s=10))
    assert other.on_error("b", 0) is None
    assert other.on_error("b", 10 * S - 1) == BreakerTrip("b", "max_errors", "2 errors within 10 s (limit 2)")


def test_stale_data_trips_after_the_threshold_on_the_callers_clock() -> None:
    breakers = Breakers(BreakerSettings(stale_after_s=30))
    pairs = {"ema": "BTC/USD", "mr": "ETH/USD"}
    breakers.on_data("BTC/USD", 100 * S)
    breakers.on_data("BTC/USD", 90 * S)  # an older time changes nothing
    # ETH/USD has had no data: it is watched from this first check on.
    assert breakers.check_stale(129 * S, pairs) == []
    assert breakers.check_stale(130 * S - 1, pairs) == []
    assert breakers.check_stale(130 * S, pairs) == [
        BreakerTrip("ema", "stale_after_s", "no market data for BTC/USD for 30 s (limit 30 s)")
    ]
    assert breakers.check_stale(140 * S, pairs) == []  # ema already tripped; mr's pair watched since 129 s
    assert breakers.check_stale(159 * S, pairs) == [
        BreakerTrip("mr", "stale_after_s", "no market data for ETH/USD for 30 s (limit 30 s)")
    ]
    breakers.reset("ema")
    breakers.on_data("BTC/USD", 160 * S)
    assert breakers.check_stale(160 * S, pairs) == []  # data came back: the reset strategy stays running


def test_a_strategys_own_settings_replace_the_default_and_a_breaker_left_out_is_off() -> None:
    breakers = Breakers(BreakerSettings(max_consecutive_losses=5), {"fast": BreakerSettings(max_consecutive_losses=1)})
    assert breakers.on_trade_closed("slow", LOSS, 1) is None
    assert breakers.on_trade_closed("fast", LOSS, 1) == BreakerTrip(
        "fast", "max_consecutive_losses", "1 losing round trips in a row (limit 1)"
    )
    off = Breakers(BreakerSettings())
    assert [off.on_trade_closed("x", LOSS, t) for t in range(50)] == [None] * 50
    assert [off.on_error("x", t) for t in range(50)] == [None] * 50
    assert off.check_stale(10**6 * S, {"x": "BTC/USD"}) == []


def test_snapshot_shows_each_breaker_that_is_on_with_its_value_and_headroom() -> None:
    breakers = Breakers(BreakerSettings(max_consecutive_losses=4, max_errors=3, error_window_s=10, stale_after_s=60))
    breakers.on_trade_closed("ema", LOSS, 1)
    breakers.on_trade_closed("ema", LOSS, 2)
    breakers.on_error("ema", 1 * S)
    breakers.on_error("ema", 5 * S)
    breakers.on_data("BTC/USD", 2 * S)
    rows = breakers.snapshot(12 * S, {"ema": "BTC/USD"})
    assert rows == [
        BreakerRow("ema", "max_consecutive_losses", D(4), D(2), D(2), "losses", False),
        BreakerRow("ema", "max_errors", D(3), D(1), D(2), "errors", False),  # the error at 1 s left the window
        BreakerRow("ema", "stale_after_s", D(60), D(10), D(50), "s", False),
    ]
    assert breakers.snapshot(12 * S, {"ema": "BTC/USD"}) == rows  # reading changes nothing
    breakers.on_trade_closed("ema", LOSS, 3)
    breakers.on_trade_closed("ema", LOSS, 4)
    tripped = breakers.snapshot(12 * S, {})  # a strategy seen but not named is still shown (no pair: no age)
    assert [(r.rule, r.value, r.headroom, r.tripped) for r in tripped] == [
        ("max_consecutive_losses", D(4), D(0), True),
        ("max_errors", D(1), D(2), False),
        ("stale_after_s", None, None, False),
    ]


def test_bad_input_is_refused_in_one_sentence_and_counts_nothing() -> None:
    breakers = Breakers(BreakerSettings(max_consecutive_losses=1, max_errors=1))
    with pytest.raises(ValueError, match=re.escape("net_pnl must be a finite Decimal, got -1.5")):
        breakers.on_trade_closed("a", -1.5, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="net_pnl must be a finite Decimal"):
        breakers.on_trade_closed("a", D("NaN"), 1)
    with pytest.raises(ValueError, match=re.escape("a time must be an integer of nanoseconds, got 1.0")):
        breakers.on_error("a", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a time must be an integer"):
        breakers.check_stale(True, {"a": "BTC/USD"})
    assert breakers.tripped("a") is None
    assert breakers.snapshot(0, {"a": "BTC/USD"})[0].value == 0
    for bad in ({"max_errors": 0}, {"stale_after_s": -1}, {"max_consecutive_losses": 2.5}, {"typo": 1}):
        with pytest.raises(ValidationError):
            BreakerSettings.model_validate(bad)
    with pytest.raises(ValidationError):
        BreakerSettings().max_errors = 3  # type: ignore[misc]


# -- property: the breakers agree with a plain recount over random sequences ----------------------------------


@dataclass
class Recount:
    """The definitions, written out with lists: what should trip, and when."""

    settings: dict[str, BreakerSettings]
    losses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, list[int]] = field(default_factory=dict)
    last_data: dict[str, int] = field(default_factory=dict)
    first_check: dict[str, int] = field(default_factory=dict)
    tripped: dict[str, str] = field(default_factory=dict)

    def trip(self, strategy: str, rule: str) -> list[tuple[str, str]]:
        if strategy in self.tripped:
            return []
        self.tripped[strategy] = rule
        return [(strategy, rule)]

    def closed(self, strategy: str, pnl: Decimal) -> list[tuple[str, str]]:
        self.losses[strategy] = self.losses.get(strategy, 0) + 1 if pnl < 0 else 0
        most = self.settings[strategy].max_consecutive_losses
        return self.trip(strategy, "max_consecutive_losses") if most and self.losses[strategy] >= most else []

    def error(self, strategy: str, t: int) -> list[tuple[str, str]]:
        self.errors.setdefault(strategy, []).append(t)
        window = self.settings[strategy].error_window_s * S
        recent = [e for e in self.errors[strategy] if t - e < window]
        most = self.settings[strategy].max_errors
        return self.trip(strategy, "max_errors") if most and len(recent) >= most else []

    def check(self, now: int, pairs: dict[str, str]) -> list[tuple[str, str]]:
        out = []
        for strategy, pair in pairs.items():
            since = self.last_data[pair] if pair in self.last_data else self.first_check.setdefault(pair, now)
            after = self.settings[strategy].stale_after_s
            if after is not None and now - since >= after * S:
                out += self.trip(strategy, "stale_after_s")
        return out

    def reset(self, strategy: str) -> None:
        self.tripped.pop(strategy, None)
        self.losses[strategy] = 0
        self.errors[strategy] = []


optional_count = st.none() | st.integers(1, 4)
breaker_settings = st.builds(
    BreakerSettings,
    max_consecutive_losses=optional_count,
    max_errors=optional_count,
    error_window_s=st.integers(1, 8),
    stale_after_s=st.none() | st.integers(1, 8),
)
events = st.lists(
    st.tuples(
        st.sampled_from(["closed", "error", "data", "check", "reset"]),
        st.sampled_from(["a", "b"]),
        st.sampled_from([LOSS, LOSS, WIN, EVEN]),
        # Steps in whole seconds (often landing exactly on a window's edge) or a few nanoseconds.
        st.one_of(st.integers(0, 3).map(lambda k: k * S), st.integers(0, 3)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(a=breaker_settings, b=breaker_settings, plan=events)
def test_breakers_trip_exactly_when_a_plain_recount_says_and_once(
    a: BreakerSettings, b: BreakerSettings, plan: list[tuple[str, str, Decimal, int]]
) -> None:
    pairs = {"a": "BTC/USD", "b": "ETH/USD"}
    breakers = Breakers(a, {"b": b})
    recount = Recount({"a": a, "b": b})
    now = 0
    got: list[tuple[str, str]] = []
    want: list[tuple[str, str]] = []
    for kind, strategy, pnl, step in plan:
        now += step
        if kind == "closed":
            trip = breakers.on_trade_closed(strategy, pnl, now)
            got += [] if trip is None else [(trip.strategy, trip.rule)]
            want += recount.closed(strategy, pnl)
        elif kind == "error":
            trip = breakers.on_error(strategy, now)
            got += [] if trip is None else [(trip.strategy, trip.rule)]
            want += recount.error(strategy, now)
        elif kind == "data":
            breakers.on_data(pairs[strategy], now)
            recount.last_data[pairs[strategy]] = now
        elif kind == "check":
            got += [(t.strategy, t.rule) for t in breakers.check_stale(now, pairs)]
            want += recount.check(now, pairs)
        else:
            breakers.reset(strategy)
            recount.reset(strategy)
        assert got == want
    for name in pairs:
        trip = breakers.tripped(name)
        assert (None if trip is None else trip.rule) == recount.tripped.get(name)
    # The snapshot's counts are the recount's at the end.
    shown = {(r.strategy, r.rule): r for r in breakers.snapshot(now, pairs)}
    for name, own in (("a", a), ("b", b)):
        if own.max_consecutive_losses is not None:
            assert shown[name, "max_consecutive_losses"].value == recount.losses.get(name, 0)
        if own.max_errors is not None:
            window = own.error_window_s * S
            recent = [e for e in recount.errors.get(name, []) if now - e < window]
            assert shown[name, "max_errors"].value == len(recent)
            assert shown[name, "max_errors"].headroom == own.max_errors - len(recent)
