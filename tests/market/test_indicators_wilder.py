"""RSI and ATR (Wilder smoothing, TA-Lib conventions) against independent direct formulas."""

import itertools
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market import ATR, RSI

PRICES = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2)
SERIES = st.lists(PRICES, max_size=60)
PERIODS = st.integers(min_value=1, max_value=15)
TOLERANCE = Fraction(1, 10**18)

# The closes of the RSI worked example in StockCharts' "Relative Strength Index (RSI)" article (period 14).
_TEXTBOOK_TEXT = (
    "44.34 44.09 44.15 43.61 44.33 44.83 45.10 45.42 45.84 46.08 45.89 46.03 45.61 46.28 46.28 "
    "46.00 46.03 46.41 46.22 45.64 46.21 46.25 45.71 46.45 45.78 45.35 44.03 44.18 44.22 44.57 "
    "43.42 42.66 43.13"
)
TEXTBOOK_CLOSES = [Decimal(s) for s in _TEXTBOOK_TEXT.split()]


def _close(actual: Decimal | None, expected: Fraction) -> bool:
    assert actual is not None
    return abs(Fraction(actual) - expected) <= TOLERANCE * max(Fraction(1), abs(expected))


def _wilder(inputs: list[Fraction], period: int) -> list[Fraction]:
    """Expanded Wilder average: the seed and each later input weighted by powers of (n-1)/n."""
    keep = Fraction(period - 1, period)
    seed = sum(inputs[:period], Fraction(0)) / period
    out = []
    for m in range(len(inputs) - period + 1):
        later = inputs[period : period + m]
        out.append(keep**m * seed + sum((keep ** (m - 1 - j) * x / period for j, x in enumerate(later)), Fraction(0)))
    return out


def _rsi_reference(closes: list[Decimal], period: int) -> list[Fraction | None]:
    """Textbook RSI = 100 - 100 / (1 + RS), RS = avg gain / avg loss (0 when both are 0, as TA-Lib)."""
    changes = [Fraction(b) - Fraction(a) for a, b in itertools.pairwise(closes)]
    lead: list[Fraction | None] = [None] * min(len(closes), period)
    if len(changes) < period:
        return lead
    gains = _wilder([max(c, Fraction(0)) for c in changes], period)
    losses = _wilder([max(-c, Fraction(0)) for c in changes], period)
    out: list[Fraction | None] = []
    for g, lo in zip(gains, losses, strict=True):
        if lo == 0:
            out.append(Fraction(100) if g else Fraction(0))
        else:
            out.append(100 - Fraction(100) / (1 + g / lo))
    return lead + out


@settings(deadline=None)  # pure CPU work; a loaded CI box must not make it flaky
@given(SERIES, PERIODS)
def test_rsi_matches_textbook_formula(series: list[Decimal], period: int) -> None:
    rsi = RSI(period)
    for out, expected in zip((rsi.update(x) for x in series), _rsi_reference(series, period), strict=True):
        if expected is None:
            assert out is None
        else:
            assert _close(out, expected)


def test_rsi_textbook_example() -> None:
    rsi = RSI(14)
    outs = [rsi.update(x) for x in TEXTBOOK_CLOSES]
    # First output at the 15th close (14 changes): gains sum 3.34, losses sum 1.40 -> 100 * 3.34 / 4.74.
    assert outs[:14] == [None] * 14
    assert _close(outs[14], Fraction(334, 474) * 100)
    assert round(outs[14] or 0, 2) == Decimal("70.46")
    expected = _rsi_reference(TEXTBOOK_CLOSES, 14)
    for out, exp in zip(outs[14:], expected[14:], strict=True):
        assert exp is not None and _close(out, exp)
    assert round(outs[-1] or 0, 2) == Decimal("37.79")
    assert rsi.ready and rsi.period == 14
    assert rsi.avg_gain is not None and rsi.avg_loss is not None


def test_rsi_flat_series_is_zero_and_monotonic_rise_is_hundred() -> None:
    flat, rising = RSI(3), RSI(3)
    for i in range(6):
        flat.update(Decimal(5))
        rising.update(Decimal(i))
    assert flat.value == 0
    assert rising.value == 100


BARS = st.lists(
    st.tuples(PRICES, PRICES, PRICES).map(lambda t: (max(t), min(t), sorted(t)[1])),  # high, low, close
    max_size=50,
)


@settings(deadline=None)  # pure CPU work; a loaded CI box must not make it flaky
@given(BARS, PERIODS)
def test_atr_matches_wilder_of_true_range(bars: list[tuple[Decimal, Decimal, Decimal]], period: int) -> None:
    atr = ATR(period)
    outs = [atr.update_bar(h, lo, c) for h, lo, c in bars]
    true_ranges = [
        max(h - lo, abs(h - prev_c), abs(lo - prev_c))
        for (h, lo, _), (_, _, prev_c) in zip(bars[1:], bars, strict=False)
    ]
    warm = min(len(bars), period)
    assert outs[:warm] == [None] * warm
    if len(true_ranges) >= period:
        expected = _wilder([Fraction(tr) for tr in true_ranges], period)
        for out, exp in zip(outs[period:], expected, strict=True):
            assert _close(out, exp)
        assert atr.true_range == true_ranges[-1]
    else:
        assert all(o is None for o in outs) and not atr.ready


def test_atr_hand_example() -> None:
    atr = ATR(2)
    assert atr.update_bar(Decimal(10), Decimal(8), Decimal(9)) is None
    # TR = max(12, 9) - min(9, 9) = 3 (gap up from the previous close).
    assert atr.update_bar(Decimal(12), Decimal(10), Decimal(11)) is None
    # TR = max(11, 11) - min(7, 11) = 4; seed = (3 + 4) / 2.
    assert atr.update_bar(Decimal(11), Decimal(7), Decimal(8)) == Decimal("3.5")
    # TR = 2 (inside bar); (3.5 * 1 + 2) / 2.
    assert atr.update_bar(Decimal(9), Decimal(7), Decimal(8)) == Decimal("2.75")
    assert atr.true_range == 2 and atr.ready and atr.period == 2
