"""StdDev, Bollinger bands and the z-score helper against full-window recomputation."""

import statistics
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market import Bollinger, IndicatorError, StdDev, zscore

PRICES = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2)
SERIES = st.lists(PRICES, max_size=60)
PERIODS = st.integers(min_value=1, max_value=15)
TOLERANCE = Fraction(1, 10**18)


def _close(actual: Decimal | None, expected: Decimal) -> bool:
    assert actual is not None
    return abs(Fraction(actual) - Fraction(expected)) <= TOLERANCE * max(Fraction(1), abs(Fraction(expected)))


@settings(deadline=None)  # pure CPU work; a loaded CI box must not make it flaky
@given(SERIES, PERIODS)
def test_stddev_matches_statistics_pstdev(series: list[Decimal], period: int) -> None:
    sd = StdDev(period)
    for i, x in enumerate(series):
        out = sd.update(x)
        if i + 1 < period:
            assert out is None and sd.mean is None and not sd.ready
            continue
        window = series[i + 1 - period : i + 1]
        assert _close(out, statistics.pstdev(window))
        assert sd.mean == sum(window, Decimal(0)) / Decimal(period)


@settings(deadline=None)  # pure CPU work; a loaded CI box must not make it flaky
@given(SERIES, PERIODS, st.sampled_from([Decimal(1), Decimal(2), Decimal("2.5")]))
def test_bollinger_bands_match_full_window(series: list[Decimal], period: int, k: Decimal) -> None:
    bb = Bollinger(period, k)
    for i, x in enumerate(series):
        out = bb.update(x)
        if i + 1 < period:
            assert out is None and bb.upper is None and bb.lower is None
            continue
        window = series[i + 1 - period : i + 1]
        mean = sum(window, Decimal(0)) / Decimal(period)
        stdev = statistics.pstdev(window)
        assert out == bb.middle == bb.value == mean
        assert _close(bb.stdev, stdev)
        assert _close(bb.upper, mean + k * stdev)
        assert _close(bb.lower, mean - k * stdev)


def test_bollinger_hand_example_uses_population_stdev() -> None:
    # Window 2, 4, 4, 4, 5, 5, 7, 9: mean 5, population variance 4, stdev 2 (sample stdev would be 2.138...).
    bb = Bollinger(8, 2)
    for x in (2, 4, 4, 4, 5, 5, 7, 9):
        bb.update(Decimal(x))
    assert (bb.middle, bb.stdev, bb.upper, bb.lower) == (Decimal(5), Decimal(2), Decimal(9), Decimal(1))
    assert bb.zscore(Decimal(8)) == Decimal("1.5")


def test_flat_window_has_zero_stdev_and_no_zscore() -> None:
    bb, sd = Bollinger(3), StdDev(3)
    for _ in range(4):
        bb.update(Decimal("101.5"))
        sd.update(Decimal("101.5"))
    assert bb.stdev == sd.value == 0
    assert bb.upper == bb.lower == Decimal("101.5")
    assert bb.zscore(Decimal(102)) is None
    assert sd.zscore(Decimal(102)) is None


def test_zscore_helper() -> None:
    assert zscore(Decimal(13), Decimal(10), Decimal(2)) == Decimal("1.5")
    assert zscore(Decimal(7), Decimal(10), Decimal(2)) == Decimal("-1.5")
    assert zscore(Decimal(7), Decimal(10), Decimal(0)) is None


def test_stddev_zscore_before_ready_is_none() -> None:
    sd = StdDev(3)
    sd.update(Decimal(1))
    assert sd.zscore(Decimal(1)) is None
    sd.update(Decimal(2))
    sd.update(Decimal(3))
    assert sd.mean == Decimal(2)
    assert sd.zscore(Decimal(2)) == 0


def test_bollinger_refuses_bad_k() -> None:
    with pytest.raises(IndicatorError):
        Bollinger(20, Decimal(-1))
    with pytest.raises(IndicatorError):
        Bollinger(20, Decimal("NaN"))
    with pytest.raises(IndicatorError):
        Bollinger(0)
