"""EMASpread gives exactly EMA(fast) - EMA(slow), digit for digit (a crossover strategy's results hang on it)."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market import EMA, EMASpread

PRICES = st.sampled_from([0, 1, 2, 8]).flatmap(
    lambda places: st.decimals(min_value=Decimal(1).scaleb(-places), max_value=Decimal("100000"), places=places)
)


@settings(deadline=None)
@given(st.lists(PRICES, max_size=80), st.integers(1, 12), st.integers(1, 30))
def test_spread_is_the_difference_of_two_emas(series: list[Decimal], fast: int, slow: int) -> None:
    spread, f, s = EMASpread(fast, slow), EMA(fast), EMA(slow)
    assert spread.periods == (fast, slow)
    for x in series:
        got = spread.update(x)
        a, b = f.update(x), s.update(x)
        assert (spread.fast, spread.slow) == (a, b)
        want = None if a is None or b is None else a - b
        assert got == want and str(got) == str(want)
        assert spread.value == got and spread.ready == (got is not None)
