"""Pacer: wall-clock waits from simulated timestamps."""

import math

import pytest

from engine.domain.market_data import NS_PER_SECOND
from engine.exchanges.replay import Pacer, ReplayConfigError

S = NS_PER_SECOND


def test_real_time_and_faster() -> None:
    assert Pacer(1).delay(0, 2 * S) == pytest.approx(2.0)
    assert Pacer(60.0).delay(10 * S, 70 * S) == pytest.approx(1.0)
    assert Pacer(0.5).delay(0, S) == pytest.approx(2.0)
    assert Pacer(2.0).speed == 2.0


def test_first_event_max_speed_and_non_advancing_time_wait_nothing() -> None:
    assert Pacer(1.0).delay(None, 5 * S) == 0.0
    assert Pacer(None).delay(0, 3600 * S) == 0.0
    assert Pacer(1.0).delay(5 * S, 5 * S) == 0.0
    assert Pacer(1.0).delay(5 * S, 4 * S) == 0.0


def test_max_delay_caps_long_holes() -> None:
    pacer = Pacer(1.0, max_delay_s=5.0)
    assert pacer.delay(0, 3600 * S) == 5.0
    assert pacer.delay(0, 2 * S) == pytest.approx(2.0)


def test_offset_from_start_avoids_drift() -> None:
    pacer = Pacer(10.0, max_delay_s=0.1)
    assert pacer.offset(100 * S, 160 * S) == pytest.approx(6.0)
    assert pacer.offset(100 * S, 90 * S) == 0.0
    assert Pacer(None).offset(0, 10**18) == 0.0


@pytest.mark.parametrize("speed", [0, -1.0, math.inf, math.nan])
def test_bad_speed_is_refused(speed: float) -> None:
    with pytest.raises(ReplayConfigError):
        Pacer(speed)
    with pytest.raises(ReplayConfigError):
        Pacer(1.0, max_delay_s=-1.0)
