"""Kraken's rate counters, modelled locally so the client waits instead of being refused.

Both counters are pure: the caller passes the time (seconds, any monotonic origin). Counts are floats: they
only schedule requests and never touch money.

* :class:`RestCallCounter`: the per-API-key REST call counter (docs "spot-rest-ratelimits"). Each private
  call adds its cost (1; ledger/trade history 2, configurable because a newer copy of the docs says 4; order
  entry endpoints 0 because they use the trading limiter) and the counter decays at the tier's rate. A call
  that would push it above the tier maximum is refused with ``EAPI:Rate limit exceeded``.
* :class:`TradingRateCounter`: the per-pair matching-engine counter (docs "spot-ratelimits"): fixed costs
  plus costs that depend on the age of the order being amended, edited or canceled; refused above the tier
  threshold with ``EOrder:Rate limit exceeded``. Keep one per pair.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "REST_TIERS",
    "TRADING_TIERS",
    "RestCallCounter",
    "RestTier",
    "Tier",
    "TradingRateCounter",
    "TradingTier",
    "amend_cost",
    "batch_add_cost",
    "batch_cancel_cost",
    "cancel_cost",
    "edit_cost",
]

Tier = Literal["starter", "intermediate", "pro"]
_EPSILON = 1e-9  # float slack so that a counter sitting exactly at its limit is not seen as over it


@dataclass(frozen=True, slots=True)
class RestTier:
    max_count: float
    decay_per_s: float


@dataclass(frozen=True, slots=True)
class TradingTier:
    threshold: float
    decay_per_s: float
    max_open_orders: int


REST_TIERS: Mapping[Tier, RestTier] = {
    "starter": RestTier(15, 0.33),
    "intermediate": RestTier(20, 0.5),
    "pro": RestTier(20, 1.0),
}
TRADING_TIERS: Mapping[Tier, TradingTier] = {
    "starter": TradingTier(60, 1.0, 60),
    "intermediate": TradingTier(125, 2.34, 80),
    "pro": TradingTier(180, 3.75, 225),
}

HISTORY_ENDPOINTS = frozenset({"Ledgers", "QueryLedgers", "TradesHistory", "QueryTrades"})
# Order entry runs on the trading (per-pair) limiter, not the REST call counter. The docs name AddOrder and
# CancelOrder; the other order-entry calls are assumed to behave the same, so the dead man's switch is never
# delayed by history polling.
TRADING_ENDPOINTS = frozenset(
    {
        "AddOrder",
        "AddOrderBatch",
        "AmendOrder",
        "EditOrder",
        "CancelOrder",
        "CancelOrderBatch",
        "CancelAll",
        "CancelAllOrdersAfter",
    }
)
# Public endpoints are limited per IP, separately from the per-key counter.
PUBLIC_ENDPOINTS = frozenset(
    {"Time", "SystemStatus", "Assets", "AssetPairs", "Ticker", "OHLC", "Depth", "Trades", "Spread"}
)


class _Decaying:
    """A value that grows by recorded costs and decays linearly to zero."""

    __slots__ = ("_at", "_decay", "_value")

    def __init__(self, decay_per_s: float) -> None:
        self._decay = decay_per_s
        self._value = 0.0
        self._at: float | None = None

    def value(self, now_s: float) -> float:
        if self._at is None:
            return self._value
        # A clock that steps back must not make the counter grow.
        elapsed = max(0.0, now_s - self._at)
        return max(0.0, self._value - elapsed * self._decay)

    def add(self, cost: float, now_s: float) -> None:
        self._value = self.value(now_s) + cost
        self._at = now_s if self._at is None else max(self._at, now_s)

    def wait(self, cost: float, limit: float, now_s: float) -> float:
        excess = self.value(now_s) + cost - limit
        return 0.0 if excess <= _EPSILON else excess / self._decay


class RestCallCounter:
    """Kraken's per-key REST call counter.

    Args:
        tier: the account's verification tier.
        history_cost: the cost of ledger and trade-history calls (2 per the docs; one copy says 4).
        costs: per-endpoint overrides of the cost.
    """

    def __init__(self, tier: Tier = "starter", *, history_cost: int = 2, costs: Mapping[str, int] | None = None):
        self.tier = REST_TIERS[tier]
        self._history_cost = history_cost
        self._costs = dict(costs or {})
        self._counter = _Decaying(self.tier.decay_per_s)

    def cost_of(self, endpoint: str) -> int:
        """What a call to ``endpoint`` (``Balance``, ``TradesHistory``) adds to the counter."""
        if endpoint in self._costs:
            return self._costs[endpoint]
        if endpoint in HISTORY_ENDPOINTS:
            return self._history_cost
        if endpoint in TRADING_ENDPOINTS or endpoint in PUBLIC_ENDPOINTS:
            return 0
        return 1

    def value(self, now_s: float) -> float:
        """The counter at ``now_s``."""
        return self._counter.value(now_s)

    def would_exceed(self, endpoint: str, now_s: float) -> bool:
        """True when calling ``endpoint`` now would take the counter above the tier's maximum."""
        return self.wait_time(endpoint, now_s) > 0

    def wait_time(self, endpoint: str, now_s: float) -> float:
        """Seconds to wait before calling ``endpoint`` stays within the maximum (0.0 when it already does)."""
        return self._counter.wait(self.cost_of(endpoint), self.tier.max_count, now_s)

    def record(self, endpoint: str, now_s: float) -> None:
        """Count a call to ``endpoint`` made at ``now_s``."""
        self._counter.add(self.cost_of(endpoint), now_s)


# Decaying costs by order age: (age limit in seconds, cost) for ages below each limit.
_AMEND_DECAY = ((5.0, 3), (10.0, 2), (15.0, 1))
_EDIT_DECAY = ((5.0, 6), (10.0, 5), (15.0, 4), (45.0, 2), (90.0, 1))
_CANCEL_DECAY = ((5.0, 8), (10.0, 6), (15.0, 5), (45.0, 4), (90.0, 2), (300.0, 1))


def _by_age(table: tuple[tuple[float, int], ...], order_age_s: float) -> int:
    for limit, cost in table:
        if order_age_s < limit:
            return cost
    return 0


def amend_cost(order_age_s: float) -> float:
    """Amend: +1 fixed, +3/+2/+1 for orders younger than 5/10/15 s."""
    return 1 + _by_age(_AMEND_DECAY, order_age_s)


def edit_cost(order_age_s: float) -> float:
    """Edit: +1 fixed, +6/+5/+4/+2/+1 for orders younger than 5/10/15/45/90 s."""
    return 1 + _by_age(_EDIT_DECAY, order_age_s)


def cancel_cost(order_age_s: float) -> float:
    """Cancel: +8/+6/+5/+4/+2/+1 for orders younger than 5/10/15/45/90/300 s."""
    return float(_by_age(_CANCEL_DECAY, order_age_s))


def batch_add_cost(n_orders: int) -> float:
    """Batch add: +n/2."""
    return n_orders / 2


def batch_cancel_cost(order_ages_s: Iterable[float]) -> float:
    """Batch cancel: the cancel cost of each order by its age."""
    return float(sum(_by_age(_CANCEL_DECAY, age) for age in order_ages_s))


class TradingRateCounter:
    """Kraken's matching-engine rate counter for one pair.

    ``order_age_s`` is the time since the order was created or last amended. Each ``record_*`` returns the
    cost it added.
    """

    def __init__(self, tier: Tier = "starter") -> None:
        self.tier = TRADING_TIERS[tier]
        self._counter = _Decaying(self.tier.decay_per_s)

    def value(self, now_s: float) -> float:
        """The counter at ``now_s``."""
        return self._counter.value(now_s)

    def would_exceed(self, cost: float, now_s: float) -> bool:
        """True when adding ``cost`` now would take the counter above the tier's threshold."""
        return self.wait_time(cost, now_s) > 0

    def wait_time(self, cost: float, now_s: float) -> float:
        """Seconds until adding ``cost`` stays within the threshold (0.0 when it already does)."""
        return self._counter.wait(cost, self.tier.threshold, now_s)

    def _record(self, cost: float, now_s: float) -> float:
        self._counter.add(cost, now_s)
        return cost

    def record_add(self, now_s: float) -> float:
        return self._record(1.0, now_s)

    def record_amend(self, order_age_s: float, now_s: float) -> float:
        return self._record(amend_cost(order_age_s), now_s)

    def record_edit(self, order_age_s: float, now_s: float) -> float:
        return self._record(edit_cost(order_age_s), now_s)

    def record_cancel(self, order_age_s: float, now_s: float) -> float:
        return self._record(cancel_cost(order_age_s), now_s)

    def record_batch_add(self, n_orders: int, now_s: float) -> float:
        return self._record(batch_add_cost(n_orders), now_s)

    def record_batch_cancel(self, order_ages_s: Iterable[float], now_s: float) -> float:
        return self._record(batch_cancel_cost(order_ages_s), now_s)
