"""The deflated Sharpe ratio: how likely the best of N trials has a true Sharpe ratio above zero, once the luck of
picking the best of N is taken out (D. H. Bailey and M. López de Prado, "The Deflated Sharpe Ratio: Correcting
for Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40 (5), 2014).

With the selected trial's per-period (not annualised) Sharpe ratio ``SR``, its ``T`` returns, their skew ``g3``
and kurtosis ``g4`` (3 for a normal distribution), and the per-period Sharpe ratios ``SR_n`` of all ``N`` trials::

    SR0 = sqrt(V[SR_n]) * ((1 - gamma) * Z^-1(1 - 1/N) + gamma * Z^-1(1 - 1/(N e)))

    DSR = Z( (SR - SR0) * sqrt(T - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR^2) )

where ``Z`` is the standard normal CDF, ``Z^-1`` its inverse, ``gamma`` the Euler-Mascheroni constant and ``e``
Euler's number: ``SR0`` is the expected maximum Sharpe ratio of ``N`` independent trials whose true Sharpe ratio is
zero (the paper's eq. 6 with the variance of the trials' estimates), and the DSR the probabilistic Sharpe ratio
(PSR) of the selected trial against that benchmark instead of against zero.

Conventions here: ``V`` is the sample variance (n - 1) of the defined ``SR_n``; ``N`` counts those trials (the
trials of a search are treated as independent, which makes the correction, if anything, generous); with fewer than
two trials ``SR0 = 0`` (nothing was selected) and the DSR is the plain PSR. Undefined (``None``): fewer than two
returns, no defined Sharpe ratio, or a non-positive variance term under the square root.

A DSR below :data:`DSR_CONFIDENCE` (0.95) means the best trial's Sharpe ratio is not significant after that many
trials: a warning that the in-sample optimum is likely overfit.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = [
    "DSR_CONFIDENCE",
    "EULER_GAMMA",
    "DeflatedSharpe",
    "deflated_sharpe",
    "expected_max_sharpe",
    "probabilistic_sharpe",
]

EULER_GAMMA = 0.5772156649015329
DSR_CONFIDENCE = 0.95
_NORMAL = NormalDist()


def expected_max_sharpe(trials: int, variance: float) -> float:
    """``SR0``: the expected maximum of ``trials`` Sharpe ratio estimates of variance ``variance`` whose true value
    is zero (0 for fewer than two trials or no variance)."""
    if trials < 2 or variance <= 0.0:
        return 0.0
    quantile = (1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / trials)
    quantile += EULER_GAMMA * _NORMAL.inv_cdf(1.0 - 1.0 / (trials * math.e))
    return math.sqrt(variance) * quantile


def probabilistic_sharpe(sharpe: float, benchmark: float, returns: int, skew: float, kurtosis: float) -> float | None:
    """PSR: the probability that the true per-period Sharpe ratio exceeds ``benchmark`` (``None`` if undefined)."""
    spread = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if returns < 2 or spread <= 0.0:
        return None
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(returns - 1) / math.sqrt(spread))


@dataclass(frozen=True, slots=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio of a selected trial and what it was computed from (all per period)."""

    value: float
    sharpe: float
    benchmark: float
    trials: int
    variance: float
    returns: int
    skew: float
    kurtosis: float

    @property
    def significant(self) -> bool:
        return self.value >= DSR_CONFIDENCE

    def to_json(self) -> dict[str, float | int | bool]:
        return {
            "dsr": round(self.value, 6),
            "sharpe_per_period": round(self.sharpe, 6),
            "expected_max_sharpe": round(self.benchmark, 6),
            "trials": self.trials,
            "sharpe_variance": self.variance,
            "returns": self.returns,
            "skew": round(self.skew, 6),
            "kurtosis": round(self.kurtosis, 6),
            "significant": self.significant,
        }


def deflated_sharpe(
    sharpe: float | None, returns: int, skew: float | None, kurtosis: float | None, trial_sharpes: Sequence[float]
) -> DeflatedSharpe | None:
    """The DSR of a trial with per-period ``sharpe`` over ``returns`` returns of that ``skew`` and ``kurtosis``,
    selected among trials whose per-period Sharpe ratios are ``trial_sharpes`` (the selected one included)."""
    if sharpe is None or skew is None or kurtosis is None:
        return None
    estimates = np.asarray(list(trial_sharpes), dtype=np.float64)
    count = int(estimates.size)
    variance = float(np.var(estimates, ddof=1)) if count >= 2 else 0.0
    benchmark = expected_max_sharpe(count, variance)
    value = probabilistic_sharpe(sharpe, benchmark, returns, skew, kurtosis)
    if value is None:
        return None
    return DeflatedSharpe(value, sharpe, benchmark, count, variance, returns, skew, kurtosis)
