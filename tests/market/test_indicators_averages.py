"""SMA and EMA against exact reference computations and TA-Lib's EMA seeding."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market import EMA, SMA, Indicator, IndicatorError

PRICES = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2)
SERIES = st.lists(PRICES, max_size=60)
PERIODS = st.integers(min_value=1, max_value=15)
TOLERANCE = Fraction(1, 10**20)


def _close(actual: Decimal | None, expected: Fraction) -> bool:
    assert actual is not None
    return abs(Fraction(actual) - expected) <= TOLERANCE * max(Fraction(1), abs(expected))


@settings(deadline=None)  # pure CPU work; a loaded CI box must not make it flaky
@given(SERIES, PERIODS)
def test_sma_matches_full_window_average(series: list[Decimal], period: int) -> None:
    sma = SMA(period)
    for i, x in enumerate(series):
        out = sma.update(x)
        if i + 1 < period:
            assert out is None and not sma.ready
        else:
            # Prices with two places sum exactly, so the running sum must equal the recomputed one exactly.
            assert out == sum(series[i + 1 - period : i + 1], Decimal(0)) / Decimal(period)
            assert sma.value == out and sma.ready


def _ema_reference(series: list[Decimal], period: int) -> list[Fraction | None]:
    """Closed form: after the SMA seed, outputs weigh the seed and later inputs by powers of (1 - alpha)."""
    alpha = Fraction(2, period + 1)
    out: list[Fraction | None] = [None] * min(len(series), period - 1)
    if len(series) < period:
        return out
    seed = sum((Fraction(x) for x in series[:period]), Fraction(0)) / period
    for m in range(len(series) - period + 1):
        later = series[period : period + m]
        value = (1 - alpha) ** m * seed + sum(
            (alpha * (1 - alpha) ** (m - 1 - j) * Fraction(x) for j, x in enumerate(later)), Fraction(0)
        )
        out.append(value)
    return out


@settings(deadline=None)  # pure CPU work; a loaded CI box must not make it flaky
@given(SERIES, PERIODS)
def test_ema_matches_closed_form(series: list[Decimal], period: int) -> None:
    ema = EMA(period)
    for out, expected in zip((ema.update(x) for x in series), _ema_reference(series, period), strict=True):
        if expected is None:
            assert out is None
        else:
            assert _close(out, expected)


def test_ema_seeds_with_sma_of_first_period_values_like_talib() -> None:
    # period 4: alpha = 2/5 = 0.4 exactly. Seed = (1+2+3+4)/4 = 2.5 at the 4th value;
    # then 2.5 + 0.4*(10-2.5) = 5.5; then 5.5 + 0.4*(0-5.5) = 3.3.
    ema = EMA(4)
    outs = [ema.update(Decimal(x)) for x in (1, 2, 3, 4, 10, 0)]
    assert outs == [None, None, None, Decimal("2.5"), Decimal("5.5"), Decimal("3.3")]
    assert ema.alpha == Decimal("0.4")
    assert ema.value == Decimal("3.3") and ema.ready and ema.period == 4


def test_ema_period_three_hand_example() -> None:
    # alpha = 0.5; seed (2+4+9)/3 = 5; 5 + 0.5*(1-5) = 3; 3 + 0.5*(7-3) = 5.
    ema = EMA(3)
    outs = [ema.update(Decimal(x)) for x in (2, 4, 9, 1, 7)]
    assert outs == [None, None, Decimal(5), Decimal(3), Decimal(5)]


def test_period_one_passes_values_through() -> None:
    sma, ema = SMA(1), EMA(1)
    for x in (Decimal("3.5"), Decimal("-1"), Decimal("7")):
        assert sma.update(x) == x
        assert ema.update(x) == x


@pytest.mark.parametrize("bad", [0, -3, True, 2.0, "5"])
def test_invalid_period_is_refused(bad: object) -> None:
    with pytest.raises(IndicatorError):
        SMA(bad)  # type: ignore[arg-type]
    with pytest.raises(IndicatorError):
        EMA(bad)  # type: ignore[arg-type]


def test_indicators_satisfy_the_protocol() -> None:
    indicators: list[Indicator] = [SMA(2), EMA(2)]
    for ind in indicators:
        assert ind.update(Decimal(1)) is None
        assert ind.update(Decimal(3)) == Decimal(2)
        assert ind.value == Decimal(2) and ind.ready and ind.period == 2
