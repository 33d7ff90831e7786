"""Retry and reconnect policies as pure functions: jittered exponential backoff, give-up rules, attempt window."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.exchanges.kraken.backoff import (
    DEFAULT_RECONNECT,
    MAINTENANCE_RECONNECT_S,
    AttemptWindow,
    Backoff,
    reconnect_delay,
)
from engine.exchanges.kraken.protocol.errors import KrakenFatalError, KrakenRetryableError


@given(attempt=st.integers(0, 10_000), rand=st.floats(0, 1, exclude_max=True))
def test_backoff_delays_stay_between_half_and_all_of_a_capped_ceiling(attempt: int, rand: float) -> None:
    policy = Backoff(initial=0.5, factor=2.0, cap=30.0)
    delay = policy.delay(attempt, rand)
    ceiling = min(30.0, 0.5 * 2.0 ** min(attempt, 64))
    assert delay is not None and ceiling / 2 <= delay <= ceiling


def test_backoff_grows_exponentially_until_the_cap() -> None:
    policy = Backoff(initial=1.0, factor=2.0, cap=8.0)
    assert [policy.ceiling(a) for a in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_backoff_gives_up_after_max_attempts() -> None:
    policy = Backoff(initial=1.0, max_attempts=2)
    assert policy.delay(1, 0.0) == 1.0 and policy.delay(2, 0.0) is None


def test_reconnect_gives_up_on_fatal_errors_only() -> None:
    assert reconnect_delay(0, KrakenFatalError("EAPI:Invalid key")) is None
    assert reconnect_delay(50, KrakenRetryableError("EService:Unavailable"), rand=0.0) == DEFAULT_RECONNECT.cap / 2
    assert reconnect_delay(3, None, rand=0.999) == pytest.approx(8.0, rel=1e-3)


def test_reconnect_after_maintenance_waits_at_least_five_seconds() -> None:
    assert reconnect_delay(0, OSError("refused"), rand=0.0, maintenance=True) == MAINTENANCE_RECONNECT_S
    assert reconnect_delay(0, OSError("refused"), rand=0.0) == 0.5


def test_the_attempt_window_holds_attempts_under_the_limit() -> None:
    window = AttemptWindow(limit=3, window_s=600.0)
    for t in (0.0, 10.0, 20.0):
        assert window.wait_time(t) == 0.0
        window.record(t)
    assert window.wait_time(30.0) == pytest.approx(570.0)
    assert window.wait_time(600.0) == 0.0
