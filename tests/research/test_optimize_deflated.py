"""The deflated Sharpe ratio against a plain reimplementation of Bailey and López de Prado (2014) on fixed numbers,
and the return moments it is fed against a plain computation."""

import math
from decimal import Decimal

import pytest

from engine.research.deflated import deflated_sharpe, expected_max_sharpe, probabilistic_sharpe
from engine.research.objective import ReturnStats


def plain_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def plain_inverse_cdf(p: float) -> float:
    """The standard normal quantile by bisection on the CDF (independent of statistics.NormalDist)."""
    low, high = -40.0, 40.0
    for _ in range(200):
        mid = (low + high) / 2
        if plain_cdf(mid) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def plain_dsr(sharpe: float, returns: int, skew: float, kurt: float, trials: list[float]) -> tuple[float, float]:
    n = len(trials)
    mean = sum(trials) / n
    variance = sum((s - mean) ** 2 for s in trials) / (n - 1)
    gamma = 0.5772156649015329
    sr0 = math.sqrt(variance) * (
        (1 - gamma) * plain_inverse_cdf(1 - 1 / n) + gamma * plain_inverse_cdf(1 - 1 / (n * math.e))
    )
    z = (sharpe - sr0) * math.sqrt(returns - 1) / math.sqrt(1 - skew * sharpe + (kurt - 1) / 4 * sharpe**2)
    return plain_cdf(z), sr0


TRIALS = [0.021, -0.013, 0.047, 0.002, 0.115, -0.031, 0.064, 0.009, 0.038, -0.002, 0.071, 0.026]


@pytest.mark.parametrize(
    ("sharpe", "returns", "skew", "kurt"),
    [(0.115, 365, -0.8, 6.5), (0.115, 2000, 0.3, 3.0), (0.05, 730, -2.5, 12.0), (0.2, 120, 1.1, 4.2)],
)
def test_the_deflated_sharpe_ratio_matches_a_plain_reimplementation(
    sharpe: float, returns: int, skew: float, kurt: float
) -> None:
    result = deflated_sharpe(sharpe, returns, skew, kurt, TRIALS)
    assert result is not None
    expected, sr0 = plain_dsr(sharpe, returns, skew, kurt, TRIALS)
    assert result.benchmark == pytest.approx(sr0, abs=1e-12)
    assert result.value == pytest.approx(expected, abs=1e-9)
    assert result.trials == len(TRIALS)
    assert result.significant == (expected >= 0.95)


def test_more_trials_raise_the_bar_and_deflate_the_same_sharpe_ratio() -> None:
    assert expected_max_sharpe(1, 0.01) == 0.0 and expected_max_sharpe(10, 0.0) == 0.0
    bars = [expected_max_sharpe(n, 0.001) for n in (2, 10, 100, 1000)]
    assert bars == sorted(bars) and bars[0] > 0
    values = [probabilistic_sharpe(0.1, bar, 500, 0.0, 3.0) for bar in bars]
    assert all(v is not None for v in values)
    assert values == sorted(values, key=lambda v: -(v or 0.0))
    # With one trial nothing was selected: the DSR is the plain PSR against zero.
    single = deflated_sharpe(0.1, 500, 0.0, 3.0, [0.1])
    assert single is not None and single.benchmark == 0.0
    assert single.value == pytest.approx(plain_cdf(0.1 * math.sqrt(499) / math.sqrt(1 + 0.5 * 0.01)), abs=1e-12)


def test_undefined_inputs_give_no_deflated_sharpe_ratio() -> None:
    assert deflated_sharpe(None, 500, 0.0, 3.0, TRIALS) is None
    assert deflated_sharpe(0.1, 1, 0.0, 3.0, TRIALS) is None
    # a non-positive term under the square root: 1 - 5 * 0.5 + (3 - 1) / 4 * 0.25 < 0
    assert deflated_sharpe(0.5, 500, 5.0, 3.0, TRIALS) is None


def test_return_moments_match_a_plain_computation() -> None:
    returns = [Decimal(x) for x in ("0.01", "-0.02", "0.005", "0.03", "-0.001", "0.0", "0.012", "-0.04", "0.02")]
    stats = ReturnStats.of(returns)
    r = [float(x) for x in returns]
    n = len(r)
    mean = sum(r) / n
    m2 = sum((x - mean) ** 2 for x in r) / n
    m3 = sum((x - mean) ** 3 for x in r) / n
    m4 = sum((x - mean) ** 4 for x in r) / n
    sample_std = math.sqrt(sum((x - mean) ** 2 for x in r) / (n - 1))
    assert stats.count == n
    assert stats.sharpe == pytest.approx(mean / sample_std, rel=1e-12)
    assert stats.skew == pytest.approx(m3 / m2**1.5, rel=1e-12)
    assert stats.kurtosis == pytest.approx(m4 / m2**2, rel=1e-12)
    assert ReturnStats.of([Decimal("0.01")] * 5) == ReturnStats(5)  # no deviation: undefined
    assert ReturnStats.of([]) == ReturnStats(0)
